"""Permute, RepeatVector, spatial/Gaussian dropout and noise, ActivityRegularization,
Identity and Lambda.

The random layers draw from torch's global generator while training (as
`Dropout`), so `keras.utils.set_random_seed` makes them repeatable and a
resumed run continues the same stream; `seed=` is accepted for Keras
compatibility. Outside training they return their input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from batchfit.layers._base import Layer, Shape, register_layer

__all__ = [
    "ActivityRegularization",
    "GaussianDropout",
    "GaussianNoise",
    "Identity",
    "Lambda",
    "Permute",
    "RepeatVector",
    "SpatialDropout1D",
    "SpatialDropout2D",
]


@register_layer
class Permute(Layer):
    """Reorders the sample axes: `dims` is a permutation of 1..rank (1-based, as Keras)."""

    def __init__(self, dims: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"{self.name}: dims must be a permutation of 1..{len(self.dims)}, got {dims!r}"
            )

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) - 1 != len(self.dims):
            raise ValueError(
                f"{self.name}: dims {self.dims} need samples of rank {len(self.dims)}, "
                f"got input shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *self.dims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dims": list(self.dims)}


@register_layer
class RepeatVector(Layer):
    """Repeats each vector `n` times: `(N, features) -> (N, n, features)`."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"{self.name}: n must be a positive integer, got {n!r}")
        self.n = n

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 2:
            raise ValueError(
                f"{self.name}: expected input (batch, features), got shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).expand(-1, self.n, -1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


def _check_rate(layer: Layer, rate: float) -> float:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{layer.name}: rate must be in [0, 1), got {rate}")
    return float(rate)


class _SpatialDropout(Layer):
    rank = 3

    def __init__(
        self, rate: float, seed: int | None = None, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"{self.name}: only data_format='channels_last' is supported, got {data_format!r}"
            )
        self.rate = _check_rate(self, rate)
        del seed  # see the module docstring

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != self.rank:
            raise ValueError(
                f"{self.name}: expected rank-{self.rank} channels-last input, "
                f"got shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        shape = (x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1])  # one draw per channel
        keep = torch.rand(shape, device=x.device) >= self.rate
        return x * keep.to(x.dtype) / (1.0 - self.rate)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


@register_layer
class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of `(N, steps, C)` while training (one draw per sample and channel)."""

    rank = 3


@register_layer
class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of `(N, H, W, C)` while training."""

    rank = 4


@register_layer
class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of `stddev` while training."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(f"{self.name}: stddev must be >= 0, got {stddev}")
        self.stddev = float(stddev)
        del seed  # see the module docstring

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.stddev == 0.0:
            return x
        return x + torch.randn_like(x) * self.stddev

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stddev": self.stddev}


@register_layer
class GaussianDropout(Layer):
    """Multiplies by noise of mean 1 and std `sqrt(rate / (1 - rate))` while training."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = _check_rate(self, rate)
        del seed  # see the module docstring

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return x * (1.0 + torch.randn_like(x) * stddev)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


@register_layer
class Identity(Layer):
    """Returns its input unchanged (any structure)."""

    def forward(self, x: Any) -> Any:
        self.built = True
        return x


@register_layer
class ActivityRegularization(Layer):
    """Returns its input and adds `(l1 * sum|x| + l2 * sum x^2) / batch size` to the loss.

    Keras 3 divides the activity penalty by the batch size (`Layer.__call__`), so its
    strength does not depend on the batch size.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if l1 < 0 or l2 < 0:
            raise ValueError(f"{self.name}: l1 and l2 must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.built = True
        if self.l1 or self.l2:
            penalty = x.new_zeros(())
            if self.l1:
                penalty = penalty + self.l1 * x.abs().sum()
            if self.l2:
                penalty = penalty + self.l2 * x.square().sum()
            self.add_loss(penalty / x.shape[0] if x.dim() > 0 else penalty)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}


class Lambda(Layer):
    """Wraps a Python function as a layer: `function(inputs, **arguments)`.

    It runs in this process like any user code, but a model holding one cannot
    be saved: the function is code, and batchfit's files store data only.
    Write a `Layer` subclass with `get_config` and load it with `custom_objects`.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        output_shape: Any = None,
        mask: Any = None,
        arguments: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(
                f"{self.name}: function must be callable, got {type(function).__name__}"
            )
        self.function = function
        self.output_shape = output_shape
        self.mask = mask
        self.arguments = dict(arguments or {})

    def forward(self, x: Any) -> Any:
        self.built = True
        return self.function(x, **self.arguments)

    def get_config(self) -> dict[str, Any]:
        name = getattr(self.function, "__name__", type(self.function).__name__)
        raise ValueError(
            f"Lambda layer {self.name!r} wraps the Python function {name!r}, which cannot be "
            "saved: batchfit model files hold data, never code. Replace the Lambda by a Layer "
            "subclass with get_config() and load it with custom_objects={...}, or save the "
            "weights only (model.save_weights)."
        )
