"""BatchNormalization with Keras defaults over the last (channel) axis."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit.layers._base import Layer, Shape, register_layer

__all__ = ["BatchNormalization"]


@register_layer
class BatchNormalization(Layer):
    """Normalises each feature (last axis) with batch statistics while training.

    Keras' `momentum=0.99` is the weight of the old moving average, i.e. torch's
    `momentum=0.01`. Weights in Keras order: gamma, beta, moving mean, moving
    variance. The moving variance follows the biased batch variance, as in
    Keras (torch's BatchNorm uses the unbiased one, n/(n-1) times larger), so
    weights trained here and in Keras give the same inference outputs.
    A frozen layer (`trainable = False`) runs in inference mode, as in Keras:
    it normalises with the moving statistics and does not update them.
    """

    moving_mean: torch.Tensor
    moving_variance: torch.Tensor

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"{self.name}: only axis=-1 (channels last) is supported, got {axis}")
        self.axis = axis
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.gamma: nn.Parameter | None = None
        self.beta: nn.Parameter | None = None
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"{self.name}: the feature dimension must be known")
        if self.scale:
            self.gamma = nn.Parameter(torch.ones(features))
        if self.center:
            self.beta = nn.Parameter(torch.zeros(features))
        self.register_buffer("moving_mean", torch.zeros(features))
        self.register_buffer("moving_variance", torch.ones(features))
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        moved = x.movedim(-1, 1) if x.dim() > 2 else x
        if self.training and self._trainable:  # frozen: inference mode, as Keras
            # the batch statistics come back with the output: no second pass for the update
            y, mean, invstd = torch.native_batch_norm(
                moved, self.gamma, self.beta, None, None, True, 0.0, self.epsilon
            )
            with torch.no_grad():
                keep = self.moving_mean.dtype
                variance = invstd.to(keep).pow(-2).sub_(self.epsilon).clamp_(min=0.0)
                self.moving_mean.lerp_(mean.to(keep), 1.0 - self.momentum)
                self.moving_variance.lerp_(variance, 1.0 - self.momentum)
        else:
            y = F.batch_norm(
                moved,
                self.moving_mean,
                self.moving_variance,
                self.gamma,
                self.beta,
                False,
                0.0,
                self.epsilon,
            )
        return y.movedim(1, -1) if x.dim() > 2 else y

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }
