"""Volumes: `Conv3D`, `MaxPooling3D`, `AveragePooling3D`, `GlobalAveragePooling3D`,
`GlobalMaxPooling3D`, channels-last `(batch, depth, height, width, channels)`.

The kernel is stored in Keras' layout `(kd, kh, kw, in // groups, filters)`, as
Conv1D's (`_conv_extra.py`); 'same' padding is Keras' torch backend's (see
NOTE [ Keras' 'same' and transposed lengths ] and, for average pooling,
NOTE [ Average pooling with 'same' padding ] in `_conv.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit.layers._base import Layer, Shape, _fans, register_layer
from batchfit.layers._conv import _same_pads, average_pool_same
from batchfit.layers._conv_extra import Activation, _ConvBase, _pad_for, _tuple

__all__ = [
    "AveragePooling3D",
    "Conv3D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling3D",
    "MaxPooling3D",
]


@register_layer
class Conv3D(_ConvBase):
    """3-D convolution over channels-last volumes `(batch, depth, height, width, channels)`.

    Kernel in Keras layout `(kd, kh, kw, in_channels // groups, filters)`, then the bias.

    Args:
        filters: output channels.
        kernel_size: int or three ints.
        strides: int or three ints.
        padding: 'valid' or 'same' (TensorFlow's, the odd cell at the end).
        dilation_rate: int or three ints.
        groups: channel groups convolved separately.
        kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
            bias_constraint: as Conv2D's.
    """

    rank = 3

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = (1, 1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = (1, 1, 1),
        groups: int = 1,
        activation: Activation = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, **kwargs,
        )  # fmt: skip
        self.filters = int(filters)
        self.groups = int(groups)
        if self.filters < 1 or self.groups < 1 or self.filters % self.groups:
            raise ValueError(
                f"{self.name}: filters ({filters}) must be a positive multiple of groups ({groups})"
            )
        self.kernel_initializer = kernel_initializer
        self.kernel: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        channels = self._channels(input_shape)
        if channels % self.groups:
            raise ValueError(
                f"{self.name}: input channels ({channels}) must be divisible by groups "
                f"({self.groups})"
            )
        shape = (*self.kernel_size, channels // self.groups, self.filters)
        fan_in, fan_out = _fans(shape)
        self.kernel = self._make(shape, self.kernel_initializer, fan_in, fan_out)
        self._make_bias(self.filters, fan_in, fan_out)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = _pad_for(
            x.movedim(-1, 1), self.padding, self.kernel_size, self.strides, self.dilation_rate
        )
        weight = self.kernel.permute(4, 3, 0, 1, 2)  # torch's (out, in, kd, kh, kw)
        y = F.conv3d(x, weight, self.bias, self.strides, 0, self.dilation_rate, self.groups)
        return self._finish(y)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": self.kernel_initializer,
        }


def _check_volume(layer: Layer, shape: Sequence[int | None]) -> None:
    if len(shape) != 5:
        raise ValueError(
            f"{layer.name}: expected channels-last volumes (batch, depth, height, width, "
            f"channels), got input shape {tuple(shape)}"
        )


class _Pooling3D(Layer):
    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2, 2),
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"{self.name}: only data_format='channels_last' is supported, got {data_format!r}"
            )
        self.pool_size = _tuple(pool_size, 3, "pool_size", self.name)
        self.strides = (
            self.pool_size if strides is None else _tuple(strides, 3, "strides", self.name)
        )
        self.padding = str(padding).lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{self.name}: padding must be 'valid' or 'same', got {padding!r}")

    def build(self, input_shape: Shape) -> None:
        _check_volume(self, input_shape)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        _check_volume(self, x.shape)
        return self.pool(x.movedim(-1, 1)).movedim(1, -1)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": "channels_last",
        }


@register_layer
class MaxPooling3D(_Pooling3D):
    """Max pooling over channels-last volumes ('same' pads with -inf, so edges are never
    beaten by padding)."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            pads: list[int] = []
            for axis in reversed(range(3)):
                pads += _same_pads(x.shape[2 + axis], self.pool_size[axis], self.strides[axis])
            if any(pads):
                x = F.pad(x, pads, value=-math.inf)
        return F.max_pool3d(x, self.pool_size, self.strides)


@register_layer
class AveragePooling3D(_Pooling3D):
    """Average pooling over channels-last volumes; 'same' as Keras' torch backend."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "valid":
            return F.avg_pool3d(x, self.pool_size, self.strides)
        return average_pool_same(x, self.pool_size, self.strides)


class _GlobalPooling3D(Layer):
    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"{self.name}: only data_format='channels_last' is supported, got {data_format!r}"
            )
        self.keepdims = bool(keepdims)

    def build(self, input_shape: Shape) -> None:
        _check_volume(self, input_shape)
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


@register_layer
class GlobalAveragePooling3D(_GlobalPooling3D):
    """Mean over depth, height and width: `(N, D, H, W, C) -> (N, C)` (`keepdims`: 5-D)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3), keepdim=self.keepdims)


@register_layer
class GlobalMaxPooling3D(_GlobalPooling3D):
    """Max over depth, height and width: `(N, D, H, W, C) -> (N, C)` (`keepdims`: 5-D)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(1, 2, 3), keepdim=self.keepdims)
