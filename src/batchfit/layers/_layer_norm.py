"""`LayerNormalization` with Keras' defaults (note `epsilon=1e-3`, not torch's 1e-5)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit.layers._base import Layer, Shape, register_layer

__all__ = ["LayerNormalization"]


@register_layer
class LayerNormalization(Layer):
    """Normalises each sample over its last axis: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    The variance is the biased one, as Keras'. Weights in Keras order: gamma, beta.

    Args:
        axis: -1 (the last axis; Keras' other choices are not supported).
        epsilon: added to the variance; Keras' default 1e-3.
        center: learn beta; scale: learn gamma.
    """

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if axis != -1 and not isinstance(axis, int):
            raise ValueError(f"{self.name}: axis must be -1 (the last axis), got {axis!r}")
        if beta_initializer != "zeros" or gamma_initializer != "ones":
            raise ValueError(
                f"{self.name}: only beta_initializer='zeros' and gamma_initializer='ones' are "
                f"supported, got {beta_initializer!r} and {gamma_initializer!r}"
            )
        self.axis = axis
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.gamma: nn.Parameter | None = None
        self.beta: nn.Parameter | None = None
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        rank = len(input_shape)
        if self.axis not in (-1, rank - 1):
            raise ValueError(
                f"{self.name}: only the last axis (-1 or {rank - 1}) can be normalised, got "
                f"axis={self.axis} for input shape {tuple(input_shape)}"
            )
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"{self.name}: the last input dimension must be known")
        if self.scale:
            self.gamma = nn.Parameter(torch.ones(features))
        if self.center:
            self.beta = nn.Parameter(torch.zeros(features))
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.gamma, self.beta, self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }
