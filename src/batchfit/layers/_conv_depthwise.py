"""DepthwiseConv2D and SeparableConv2D, in Keras' weight layout (see `_conv_extra.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit import constraints
from batchfit.layers._base import (
    Shape,
    _serialize_regularizer,
    attach_constraint,
    losses_used,
    register_layer,
)
from batchfit.layers._conv_extra import Activation, _ConvBase, _pad_for

__all__ = ["DepthwiseConv2D", "SeparableConv2D"]


class _Depthwise(_ConvBase):
    """The depthwise step shared by DepthwiseConv2D and SeparableConv2D."""

    depth_multiplier: int
    depthwise_initializer: str

    def _make_depthwise(self, channels: int) -> None:
        kh, kw = self.kernel_size
        self.kernel = self._make(
            (kh, kw, channels, self.depth_multiplier), self.depthwise_initializer,
            kh * kw, kh * kw * self.depth_multiplier,
        )  # fmt: skip  # Keras' fans of a (kh, kw, in, multiplier) kernel

    def _depthwise(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        kh, kw, channels, multiplier = self.kernel.shape
        weight = self.kernel.reshape(kh, kw, channels * multiplier).permute(2, 0, 1).unsqueeze(1)
        x = _pad_for(x, self.padding, self.kernel_size, self.strides, self.dilation_rate)
        return F.conv2d(x, weight, bias, self.strides, 0, self.dilation_rate, channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for what in ("regularizer", "constraint"):  # Keras' name of this kernel
            config[f"depthwise_{what}"] = config.pop(f"kernel_{what}")
        return {
            **config,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": self.depthwise_initializer,
        }


@register_layer
class DepthwiseConv2D(_Depthwise):
    """Per-channel 2-D convolution; kernel `(kh, kw, in_channels, depth_multiplier)`.

    Output channel `c * depth_multiplier + m` comes from input channel `c`, as in Keras.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = (1, 1),
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = (1, 1),
        activation: Activation = None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, depthwise_regularizer, bias_regularizer, activity_regularizer,
            depthwise_constraint, bias_constraint, **kwargs,
        )  # fmt: skip
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = depthwise_initializer
        self.kernel: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        channels = self._channels(input_shape)
        self._make_depthwise(channels)
        kh, kw = self.kernel_size
        self._make_bias(channels * self.depth_multiplier, kh * kw, kh * kw * self.depth_multiplier)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self._finish(self._depthwise(x.permute(0, 3, 1, 2), self.bias))


@register_layer
class SeparableConv2D(_Depthwise):
    """Depthwise convolution, then a 1x1 convolution to `filters` channels.

    Weights in Keras order: depthwise kernel `(kh, kw, in, depth_multiplier)`,
    pointwise kernel `(1, 1, in * depth_multiplier, filters)`, bias `(filters,)`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = (1, 1),
        depth_multiplier: int = 1,
        activation: Activation = None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        pointwise_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, depthwise_regularizer, bias_regularizer, activity_regularizer,
            depthwise_constraint, bias_constraint, **kwargs,
        )  # fmt: skip
        from batchfit import regularizers

        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        if self.pointwise_regularizer is not None:
            losses_used[0] = True
        self.filters = int(filters)
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.kernel: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        self.pointwise_kernel: nn.Parameter = None  # type: ignore[assignment]
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        channels = self._channels(input_shape)
        middle = channels * self.depth_multiplier
        self._make_depthwise(channels)
        self.pointwise_kernel = self._make(
            (1, 1, middle, self.filters), self.pointwise_initializer, middle, self.filters
        )
        self._make_bias(self.filters, middle, self.filters)
        super().build(input_shape)
        if self.pointwise_regularizer is not None:
            self.__dict__["_weight_regularizers"].append(
                (self.pointwise_kernel, self.pointwise_regularizer)
            )
        attach_constraint(self.pointwise_kernel, self.pointwise_constraint)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        y = self._depthwise(x.permute(0, 3, 1, 2), None)
        y = F.conv2d(y, self.pointwise_kernel.permute(3, 2, 0, 1), self.bias)
        return self._finish(y)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "pointwise_initializer": self.pointwise_initializer,
            "pointwise_regularizer": _serialize_regularizer(self.pointwise_regularizer, self.name),
            "pointwise_constraint": constraints.serialize(self.pointwise_constraint),
        }
