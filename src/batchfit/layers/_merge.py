"""Merge layers: `Concatenate`, `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`.

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
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
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
