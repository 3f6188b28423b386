"""Channels-last convolution and pooling layers (Keras layout at the boundary).

NOTE [ Channels-last without copies ]
Inputs arrive as `(N, H, W, C)`. `x.permute(0, 3, 1, 2)` is a view whose memory
is torch's `channels_last` format, which the CPU (oneDNN) and CUDA kernels take
as is, so convolution and pooling run without transposing data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from batchfit import activations, initializers
from batchfit.layers._base import Layer, Regularized, Shape, register_layer

__all__ = [
    "AveragePooling2D",
    "Conv2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "MaxPooling2D",
]


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise ValueError(f"{what} must be an int or a pair, got {value!r}")
    return (pair[0], pair[1])


def _check_padding(padding: str, name: str) -> str:
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding: output ceil(size / stride), extra on the far side."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: torch.Tensor,
    kernel: tuple[int, int],
    strides: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> torch.Tensor:
    top, bottom = _same_pads(x.shape[2], kernel[0], strides[0], dilation[0])
    left, right = _same_pads(x.shape[3], kernel[1], strides[1], dilation[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _check_rank4(layer: Layer, input_shape: Shape) -> None:
    if len(input_shape) != 4:
        raise ValueError(
            f"{layer.name}: expected channels-last images (batch, height, width, channels), "
            f"got input shape {tuple(input_shape)}"
        )


@register_layer
class Conv2D(Regularized, Layer):
    """2-D convolution over channels-last images.

    `kernel_regularizer`, `bias_regularizer` and `activity_regularizer` take Keras
    regularizers, added to the training loss; `kernel_constraint`/`bias_constraint`
    Keras constraints, applied after each update (kernel in Keras' `(kh, kw, in, out)`).

    Args:
        filters: output channels.
        kernel_size: int or (height, width).
        strides: int or pair.
        padding: 'valid' or 'same' (TensorFlow's asymmetric 'same').
        dilation_rate: int or pair.
        activation: Keras activation name or callable.
    """

    @staticmethod
    def _keras_kernel(w: torch.Tensor) -> torch.Tensor:
        return w.permute(2, 3, 1, 0)  # torch (out, in, kh, kw) -> Keras (kh, kw, in, out)

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = (1, 1),
        activation: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_regularizers(kernel_regularizer, bias_regularizer, activity_regularizer)
        self._set_constraints(kernel_constraint, bias_constraint)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self.name}: only data_format='channels_last' is supported")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _check_padding(padding, self.name)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        self.bias: nn.Parameter | None = None
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        _check_rank4(self, input_shape)
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel dimension must be known")
        kh, kw = self.kernel_size
        fan_in, fan_out = kh * kw * channels, kh * kw * self.filters
        kernel = torch.empty(self.filters, channels, kh, kw)
        initializers.get(self.kernel_initializer)(kernel, fan_in, fan_out)
        self.kernel = nn.Parameter(kernel)
        if self.use_bias:
            bias = torch.empty(self.filters)
            initializers.get(self.bias_initializer)(bias, fan_in, fan_out)
            self.bias = nn.Parameter(bias)
        self._register_weight_penalties()
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        y = self._convolve(x)
        if self.activity_regularizer is not None:
            self._activity_penalty(y)
        return y

    def _convolve(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(
                f"{self.name}: expected channels-last images (batch, height, width, channels), "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        x = x.permute(0, 3, 1, 2)  # see NOTE [ Channels-last without copies ]
        padding: Any = 0
        if self.padding == "same":
            symmetric = all(
                (k - 1) * d % 2 == 0 for k, d in zip(self.kernel_size, self.dilation_rate)
            )
            if self.strides == (1, 1) and symmetric:
                padding = "same"
            else:
                x = _pad_same(x, self.kernel_size, self.strides, self.dilation_rate)
        y = F.conv2d(x, self.kernel, self.bias, self.strides, padding, self.dilation_rate)
        if self.activation is not None:
            y = self.activation(y)
        return y.permute(0, 2, 3, 1)

    def get_weights(self) -> list[np.ndarray]:
        """Kernel in Keras layout `(kh, kw, in, out)`, then the bias."""
        weights = super().get_weights()
        weights[0] = np.ascontiguousarray(weights[0].transpose(2, 3, 1, 0))
        return weights

    def set_weights(self, weights: Sequence[Any]) -> None:
        weights = list(weights)
        if weights:
            weights[0] = np.asarray(weights[0]).transpose(3, 2, 0, 1)
        super().set_weights(weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.name_of(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            **self._regularizer_config(),
            **self._constraint_config(),
        }


class _Pooling2D(Layer):
    def __init__(
        self,
        pool_size: int | Sequence[int] = (2, 2),
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self.name}: only data_format='channels_last' is supported")
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides") if strides is not None else self.pool_size
        self.padding = _check_padding(padding, self.name)

    def build(self, input_shape: Shape) -> None:
        _check_rank4(self, input_shape)
        super().build(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


@register_layer
class MaxPooling2D(_Pooling2D):
    """Max pooling over channels-last images."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        if self.padding == "same":
            x = _pad_same(x, self.pool_size, self.strides, value=-math.inf)
        return F.max_pool2d(x, self.pool_size, self.strides).permute(0, 2, 3, 1)


def average_pool_same(
    x: torch.Tensor, pool_size: Sequence[int], strides: Sequence[int]
) -> torch.Tensor:
    """Keras' torch-backend 'same' average pooling of a channels-first tensor.

    NOTE [ Average pooling with 'same' padding ]
    Keras 3's torch backend (`_apply_same_padding`, `average_pool`) passes
    symmetric padding to torch with `count_include_pad=False` (padded cells not
    counted), but for asymmetric padding (the odd cell at the end) it pads by
    *replicating* the edge and counts those cells. The TensorFlow backend never
    counts them; the two differ only in windows that cross the far edge. We
    match the torch backend, the reference of these tests.
    """
    pads = [_same_pads(x.shape[2 + i], k, s) for i, (k, s) in enumerate(zip(pool_size, strides))]
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[len(pads)]
    if all(before == after for before, after in pads):
        padding = [before for before, _ in pads]
        return pool(x, pool_size, strides, padding, count_include_pad=False)  # type: ignore[arg-type]
    flat = [p for before_after in reversed(pads) for p in before_after]
    return pool(F.pad(x, flat, mode="replicate"), pool_size, strides)  # type: ignore[arg-type]


@register_layer
class AveragePooling2D(_Pooling2D):
    """Average pooling; 'same' padding as Keras' torch backend (NOTE in `average_pool_same`)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        if self.padding == "valid":
            return F.avg_pool2d(x, self.pool_size, self.strides).permute(0, 2, 3, 1)
        return average_pool_same(x, self.pool_size, self.strides).permute(0, 2, 3, 1)


class _GlobalPooling2D(Layer):
    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{self.name}: only data_format='channels_last' is supported")
        self.keepdims = bool(keepdims)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "keepdims": self.keepdims}


@register_layer
class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width: `(N, H, W, C) -> (N, C)` (`(N, 1, 1, C)` with `keepdims`)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2), keepdim=self.keepdims)


@register_layer
class GlobalMaxPooling2D(_GlobalPooling2D):
    """Max over height and width: `(N, H, W, C) -> (N, C)` (`(N, 1, 1, C)` with `keepdims`)."""

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(1, 2), keepdim=self.keepdims)
