"""Merge layers: `Concatenate`, `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
`Dot`.

Each takes a list of tensors (the inputs of a multi-input functional model
meet here); the lower-case functions are Keras' shorthands,
`concatenate([a, b])` = `Concatenate()([a, b])`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

import torch

from batchfit.layers._base import Layer, register_layer

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]


class _Merge(Layer):
    """Base of merge layers: `forward` takes a list of tensors."""

    min_inputs = 2

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self.min_inputs:
            got = len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(
                f"{self.name}: expects a list of at least {self.min_inputs} tensors, got {got}"
            )
        if not self.built:
            self.built = True
            self.input_shape_ = (None, *inputs[0].shape[1:])
        return self.merge(list(inputs))

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


@register_layer
class Concatenate(_Merge):
    """Concatenates a list of tensors along `axis` (default the last)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(inputs, dim=self.axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


@register_layer
class Add(_Merge):
    """Element-wise sum of a list of tensors."""

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return reduce(torch.add, inputs)


@register_layer
class Subtract(_Merge):
    """`inputs[0] - inputs[1]` (exactly two tensors)."""

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != 2:
            raise ValueError(f"{self.name}: Subtract takes exactly 2 tensors, got {len(inputs)}")
        return inputs[0] - inputs[1]


@register_layer
class Multiply(_Merge):
    """Element-wise product of a list of tensors."""

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return reduce(torch.mul, inputs)


@register_layer
class Average(_Merge):
    """Element-wise mean of a list of tensors."""

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return reduce(torch.add, inputs) / len(inputs)


@register_layer
class Maximum(_Merge):
    """Element-wise maximum of a list of tensors."""

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return reduce(torch.maximum, inputs)


@register_layer
class Minimum(_Merge):
    """Element-wise minimum of a list of tensors."""

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return reduce(torch.minimum, inputs)


@register_layer
class Dot(_Merge):
    """Dot product of two batched tensors along `axes`, as Keras' `batch_dot`.

    For `x` of shape `(N, *a, k, *b)` and `y` of shape `(N, *c, k, *d)` (the `k`
    axes named by `axes`), the output is `(N, *a, *b, *c, *d)`: `x`'s other axes
    first, then `y`'s; two vectors give `(N, 1)`.

    Args:
        axes: one axis for both inputs, or a pair `(axis_of_x, axis_of_y)`; not 0
            (the batch). Negative axes count from the end.
        normalize: L2-normalise both inputs along their axis first, so the output is
            the cosine similarity (`x * min(1 / ||x||, 1e7)`, Keras' `normalize`).
    """

    def __init__(self, axes: int | Sequence[int], normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axes, int):
            self.axes: int | tuple[int, int] = axes
        else:
            pair = tuple(axes)
            if len(pair) != 2 or not all(isinstance(a, int) for a in pair):
                raise ValueError(
                    f"{self.name}: axes must be an int or a pair of ints, got {axes!r}"
                )
            self.axes = (int(pair[0]), int(pair[1]))
        self.normalize = bool(normalize)

    def _axes(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        a, b = pair[0] % x.dim(), pair[1] % y.dim()
        if a == 0 or b == 0:
            raise ValueError(f"{self.name}: cannot take the dot product over the batch axis 0")
        if x.shape[a] != y.shape[b]:
            raise ValueError(
                f"{self.name}: the axes have different sizes: x.shape[{a}] = {x.shape[a]}, "
                f"y.shape[{b}] = {y.shape[b]} (shapes {tuple(x.shape)} and {tuple(y.shape)})"
            )
        return a, b

    def merge(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) != 2:
            raise ValueError(f"{self.name}: Dot takes exactly 2 tensors, got {len(inputs)}")
        x, y = inputs
        if x.dim() < 2 or y.dim() < 2:
            raise ValueError(
                f"{self.name}: Dot needs inputs of rank 2 or more, got shapes "
                f"{tuple(x.shape)} and {tuple(y.shape)}"
            )
        a, b = self._axes(x, y)
        if self.normalize:
            x, y = _l2_normalize(x, a), _l2_normalize(y, b)
        x, y = x.movedim(a, -1), y.movedim(b, 1)
        n, k = x.shape[0], x.shape[-1]
        out = torch.bmm(x.reshape(n, -1, k), y.reshape(n, k, -1))
        out = out.reshape(n, *x.shape[1:-1], *y.shape[2:])
        return out.unsqueeze(-1) if out.dim() == 1 else out

    def get_config(self) -> dict[str, Any]:
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}


def _l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Keras' `ops.normalize`: `x * min(rsqrt(sum(x**2)), 1 / epsilon)`."""
    return x * torch.rsqrt(x.square().sum(axis, keepdim=True)).clamp_max(1e7)


def dot(
    inputs: Sequence[Any], axes: int | Sequence[int] = -1, normalize: bool = False, **kwargs: Any
) -> Any:
    """`Dot(axes, normalize)(inputs)`."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """`Concatenate(axis)(inputs)`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """`Add()(inputs)`."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """`Subtract()(inputs)`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """`Multiply()(inputs)`."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """`Average()(inputs)`."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """`Maximum()(inputs)`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """`Minimum()(inputs)`."""
    return Minimum(**kwargs)(inputs)
