"""1-D pooling, global 1-D pooling, up-sampling, zero-padding and cropping (channels-last)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from batchfit.layers._base import Layer, Shape, register_layer
from batchfit.layers._conv import _same_pads, average_pool_same

__all__ = [
    "AveragePooling1D",
    "Cropping1D",
    "Cropping2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "MaxPooling1D",
    "UpSampling1D",
    "UpSampling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
]


def _channels_last(layer: Layer, data_format: str | None) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{layer.name}: only data_format='channels_last' is supported, got {data_format!r}"
        )


def _check_rank(layer: Layer, shape: Sequence[int | None], rank: int) -> None:
    if len(shape) != rank:
        expected = {
            3: "(batch, steps, channels)",
            4: "(batch, height, width, channels)",
            5: "(batch, depth, height, width, channels)",
        }[rank]
        raise ValueError(
            f"{layer.name}: expected channels-last input {expected}, got shape {tuple(shape)}"
        )


def _pair_of_pairs(
    value: Any, what: str, layer: str, count: int = 2
) -> tuple[tuple[int, int], ...]:
    """Keras' int | (sym_h, sym_w) | ((top, bottom), (left, right)) for 2-D padding/cropping.

    `count=3` reads the 3-D forms: int | (d, h, w) | three (before, after) pairs.
    """
    shapes = f"an int, {count} ints or {count} pairs"
    if isinstance(value, int):
        return ((value, value),) * count
    items = list(value)
    if len(items) != count:
        raise ValueError(f"{layer}: {what} must be {shapes}, got {value!r}")
    out = []
    for item in items:
        if isinstance(item, int):
            out.append((item, item))
        else:
            pair = tuple(int(v) for v in item)
            if len(pair) != 2:
                raise ValueError(f"{layer}: {what} must be {shapes}, got {value!r}")
            out.append((pair[0], pair[1]))
    return tuple(out)


def _one_pair(value: int | Sequence[int], what: str, layer: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{layer}: {what} must be an int or (before, after), got {value!r}")
    return (pair[0], pair[1])


class _Pooling1D(Layer):
    def __init__(
        self,
        pool_size: int = 2,
        strides: int | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.pool_size = int(pool_size[0] if isinstance(pool_size, (list, tuple)) else pool_size)
        stride = strides[0] if isinstance(strides, (list, tuple)) else strides
        self.strides = self.pool_size if stride is None else int(stride)
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{self.name}: padding must be 'valid' or 'same', got {padding!r}")

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 3)
        super().build(input_shape)

    def _pad(self, x: torch.Tensor, value: float) -> torch.Tensor:
        if self.padding == "valid":
            return x
        before, after = _same_pads(x.shape[-1], self.pool_size, self.strides)
        return F.pad(x, (before, after), value=value) if before or after else x

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
        }


@register_layer
class MaxPooling1D(_Pooling1D):
    """Max over windows of `pool_size` steps: `(N, steps, C)`."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        x = self._pad(x.transpose(1, 2), -math.inf)
        return F.max_pool1d(x, self.pool_size, self.strides).transpose(1, 2)


@register_layer
class AveragePooling1D(_Pooling1D):
    """Mean over windows; 'same' as Keras' torch backend.

    See NOTE [ Average pooling with 'same' padding ] in `_conv.py`.
    """

    def call(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        if self.padding == "valid":
            return F.avg_pool1d(x, self.pool_size, self.strides).transpose(1, 2)
        return average_pool_same(x, (self.pool_size,), (self.strides,)).transpose(1, 2)


class _GlobalPooling1D(Layer):
    def __init__(
        self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.keepdims = bool(keepdims)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 3)
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


@register_layer
class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over steps: `(N, steps, C) -> (N, C)` (`(N, 1, C)` with `keepdims`)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1, keepdim=self.keepdims)


@register_layer
class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over steps: `(N, steps, C) -> (N, C)` (`(N, 1, C)` with `keepdims`)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=1, keepdim=self.keepdims)


@register_layer
class UpSampling1D(Layer):
    """Repeats each step `size` times: `(N, steps, C) -> (N, steps * size, C)`."""

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.size, dim=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "size": self.size}


@register_layer
class UpSampling2D(Layer):
    """Scales images by `size`: repeated pixels ('nearest') or Keras' resize ('bilinear').

    'bilinear' is `torch.nn.functional.interpolate(align_corners=False)`, the
    resize Keras' torch backend uses (half-pixel centres, no antialiasing).
    """

    def __init__(
        self,
        size: int | Sequence[int] = (2, 2),
        data_format: str | None = None,
        interpolation: str = "nearest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.size = _one_pair(size, "size", self.name)
        if interpolation not in ("nearest", "bilinear", "bicubic"):
            raise ValueError(
                f"{self.name}: interpolation must be 'nearest', 'bilinear' or 'bicubic', "
                f"got {interpolation!r}"
            )
        self.interpolation = interpolation

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 4)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        if self.interpolation == "nearest":
            return x.repeat_interleave(self.size[0], dim=1).repeat_interleave(self.size[1], dim=2)
        y = F.interpolate(
            x.permute(0, 3, 1, 2),
            size=(x.shape[1] * self.size[0], x.shape[2] * self.size[1]),
            mode=self.interpolation,
            align_corners=False,
        )
        return y.permute(0, 2, 3, 1)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "size": list(self.size),
            "data_format": "channels_last",
            "interpolation": self.interpolation,
        }


@register_layer
class ZeroPadding1D(Layer):
    """Adds zero steps before and after: `padding` is an int or (before, after)."""

    def __init__(self, padding: int | Sequence[int] = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = _one_pair(padding, "padding", self.name)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, *self.padding))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": list(self.padding)}


@register_layer
class ZeroPadding2D(Layer):
    """Adds zero rows and columns: int, (rows, cols) or ((top, bottom), (left, right))."""

    def __init__(
        self, padding: Any = (1, 1), data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.padding = _pair_of_pairs(padding, "padding", self.name)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self.padding
        return F.pad(x, (0, 0, left, right, top, bottom))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "padding": [list(p) for p in self.padding],
            "data_format": "channels_last",
        }


@register_layer
class Cropping1D(Layer):
    """Removes steps at the start and end: `cropping` is an int or (start, end)."""

    def __init__(self, cropping: int | Sequence[int] = (1, 1), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cropping = _one_pair(cropping, "cropping", self.name)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 3)
        steps = input_shape[1]
        if steps is not None and sum(self.cropping) >= steps:
            raise ValueError(
                f"{self.name}: cropping {self.cropping} leaves nothing of {steps} steps"
            )
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        start, end = self.cropping
        return x[:, start : x.shape[1] - end]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cropping": list(self.cropping)}


@register_layer
class Cropping2D(Layer):
    """Removes rows and columns: int, (rows, cols) or ((top, bottom), (left, right))."""

    def __init__(
        self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _channels_last(self, data_format)
        self.cropping = _pair_of_pairs(cropping, "cropping", self.name)

    def build(self, input_shape: Shape) -> None:
        _check_rank(self, input_shape, 4)
        for size, crop, what in zip(input_shape[1:3], self.cropping, ("height", "width")):
            if size is not None and sum(crop) >= size:
                raise ValueError(f"{self.name}: cropping {crop} leaves nothing of {what} {size}")
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self.cropping
        return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "cropping": [list(c) for c in self.cropping],
            "data_format": "channels_last",
        }
