"""Keras' 3-D reshaping layers on channels-last volumes (batch, depth, height, width, ch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from batchfit.layers._base import Layer, Shape, register_layer
from batchfit.layers._reshaping import _channels_last, _check_rank, _pair_of_pairs

__all__ = ["Cropping3D", "UpSampling3D", "ZeroPadding3D"]

_AXES = ("depth", "height", "width")


def _triple(value: int | Sequence[int], what: str, layer: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        return (value, value, value)
    triple = tuple(int(v) for v in value)
    if len(triple) != 3:
        raise ValueError(f"{layer}: {what} must be an int or 3 ints, got {value!r}")
    return (triple[0], triple[1], triple[2])


@register_layer
class UpSampling3D(Layer):
    """Repeats each voxel `size` times along depth, height and width (Keras' only mode)."""

    def __init__(
        self, size: int | Sequence[int] = (2, 2, 2), data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.size = _triple(size, "size", self.name)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 5)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        for axis, times in enumerate(self.size, start=1):
            x = x.repeat_interleave(times, dim=axis)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": list(self.size), "data_format": "channels_last"}


@register_layer
class ZeroPadding3D(Layer):
    """Adds zero planes: int, (d, h, w) or three (before, after) pairs."""

    def __init__(
        self, padding: Any = (1, 1, 1), data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.padding = _pair_of_pairs(padding, "padding", self.name, count=3)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 5)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        (front, back), (top, bottom), (left, right) = self.padding
        return F.pad(x, (0, 0, left, right, top, bottom, front, back))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "padding": [list(p) for p in self.padding],
            "data_format": "channels_last",
        }


@register_layer
class Cropping3D(Layer):
    """Removes planes: int, (d, h, w) or three (before, after) pairs."""

    def __init__(
        self,
        cropping: Any = ((1, 1), (1, 1), (1, 1)),
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.cropping = _pair_of_pairs(cropping, "cropping", self.name, count=3)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 5)
        for size, crop, what in zip(input_shape[1:4], self.cropping, _AXES, strict=True):
            if size is not None and sum(crop) >= size:
                raise ValueError(f"{self.name}: cropping {crop} leaves nothing of {what} {size}")
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        (d0, d1), (h0, h1), (w0, w1) = self.cropping
        return x[:, d0 : x.shape[1] - d1, h0 : x.shape[2] - h1, w0 : x.shape[3] - w1]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "cropping": [list(c) for c in self.cropping],
            "data_format": "channels_last",
        }
