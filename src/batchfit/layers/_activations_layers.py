"""Activation layers with arguments: ReLU, LeakyReLU, PReLU, ELU, Softmax (Keras 3 formulas)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit import initializers
from batchfit.layers._base import Layer, Shape, register_layer

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]


@register_layer
class ReLU(Layer):
    """Keras' ReLU: `x` above `threshold` (capped), else `negative_slope * (x - threshold)`.

    As Keras 3's `activations.relu`: at or below the threshold the result is
    `-negative_slope * (threshold - x)`; above it, `x`, clipped to `[0, max_value]`.

    Args:
        max_value: upper cap, or None for none.
        negative_slope: slope below the threshold.
        threshold: values at or below it take the negative branch.
    """

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"{self.name}: max_value must be >= 0 or None, got {max_value}")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(f"{self.name}: negative_slope must be >= 0, got {negative_slope}")
        if threshold is None or threshold < 0.0:
            raise ValueError(f"{self.name}: threshold must be >= 0, got {threshold}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope = float(negative_slope)
        self.threshold = float(threshold)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        slope, cap, threshold = self.negative_slope, self.max_value, self.threshold
        if slope and cap is None and threshold == 0.0:
            return F.leaky_relu(x, slope)
        kept = x * (x > threshold) if threshold != 0.0 else torch.relu(x)
        if cap is not None:
            kept = kept.clamp(0.0, cap)
        if slope:
            kept = kept - slope * torch.relu(threshold - x)
        return kept

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


@register_layer
class LeakyReLU(Layer):
    """`x` for `x >= 0`, else `negative_slope * x`.

    Keras 3's default slope 0.3; Keras 2's `alpha=` is accepted with a warning.
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "LeakyReLU: argument `alpha` is deprecated (Keras 2); use `negative_slope`",
                DeprecationWarning,
                stacklevel=2,
            )
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(f"{self.name}: negative_slope must be >= 0, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


@register_layer
class PReLU(Layer):
    """Leaky ReLU with a learned slope `alpha` per input cell: `relu(x) - alpha * relu(-x)`.

    `alpha` has the sample shape, with size 1 along each of `shared_axes`
    (1-based, as Keras; e.g. `[1, 2]` shares over height and width).
    """

    def __init__(
        self,
        alpha_initializer: str = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: int | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if alpha_regularizer is not None or alpha_constraint is not None:
            raise ValueError(
                f"{self.name}: alpha_regularizer and alpha_constraint are not supported yet"
            )
        self.alpha_initializer = alpha_initializer
        if shared_axes is None:
            self.shared_axes: tuple[int, ...] = ()
        elif isinstance(shared_axes, int):
            self.shared_axes = (shared_axes,)
        else:
            self.shared_axes = tuple(int(a) for a in shared_axes)
        self.alpha: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        shape = list(input_shape[1:])
        for axis in self.shared_axes:
            if not 1 <= axis <= len(shape):
                raise ValueError(
                    f"{self.name}: shared axis {axis} is outside the input's axes 1..{len(shape)}"
                )
            shape[axis - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(
                f"{self.name}: unknown sizes {tuple(input_shape)} need shared_axes covering them"
            )
        alpha = torch.empty([int(d) for d in shape if d is not None])
        initializers.get(self.alpha_initializer)(alpha, 1, 1)
        self.alpha = nn.Parameter(alpha)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) - self.alpha * torch.relu(-x)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "alpha_initializer": self.alpha_initializer,
            "shared_axes": list(self.shared_axes) or None,
        }


@register_layer
class ELU(Layer):
    """`x` for `x > 0`, else `alpha * (exp(x) - 1)`."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


@register_layer
class Softmax(Layer):
    """Softmax over `axis` (an int or a tuple of axes); `mask` False entries get ~0 weight.

    As Keras, a mask adds a large negative number (-1e9) to masked logits.
    """

    def __init__(self, axis: int | Sequence[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis: int | tuple[int, ...] = axis if isinstance(axis, int) else tuple(axis)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not self.built:
            self.build((None, *x.shape[1:]))
        if mask is not None:
            x = x + (1.0 - mask.to(x.dtype)) * -1e9
        if isinstance(self.axis, int):
            return torch.softmax(x, dim=self.axis)
        return torch.exp(x - torch.logsumexp(x, dim=self.axis, keepdim=True))

    def get_config(self) -> dict[str, Any]:
        axis = self.axis if isinstance(self.axis, int) else list(self.axis)
        return {**super().get_config(), "axis": axis}
