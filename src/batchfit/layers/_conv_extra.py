"""Conv1D and the transposed convolutions (depthwise/separable ones: `_conv_depthwise.py`).

Weights are stored in Keras' layout, so `get_weights()` is Keras' order and
shapes as they are; `call` hands torch a permuted view (a copy of the small
kernel per call, not of the data). Inputs are channels-last; see
NOTE [ Channels-last without copies ] in `_conv.py`.

NOTE [ Keras' 'same' and transposed lengths ]
'same' pads `max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)` in total,
the odd cell at the end (TensorFlow's rule, which Keras' torch backend copies
in `_compute_padding_length`). A transposed convolution is computed in full
(`(n - 1) * s + (k - 1) * d + 1` cells) and then cut to Keras' length:
'valid' keeps it, 'same' keeps `n * s` cells; with `output_padding` the
length is Keras' `deconv_output_length`. 'same' starts at the padding a
forward 'same' convolution from that length back to `n` would put in front
(`max(full - length, 0) // 2`, as TensorFlow). Cells past the full result hold
the bias only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit import activations, initializers
from batchfit.layers._base import Layer, Regularized, Shape, register_layer
from batchfit.layers._conv import _same_pads

__all__ = ["Conv1D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]

Activation = str | Callable[[torch.Tensor], torch.Tensor] | None


def _tuple(value: int | Sequence[int], rank: int, what: str, layer: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    values = tuple(int(v) for v in value)
    if len(values) != rank:
        raise ValueError(f"{layer}: {what} must be an int or {rank} ints, got {value!r}")
    return values


def _optional_tuple(
    value: int | Sequence[int] | None, rank: int, what: str, layer: str
) -> tuple[int, ...] | None:
    return None if value is None else _tuple(value, rank, what, layer)


def _pad_for(
    x: torch.Tensor,
    padding: str,
    kernel: tuple[int, ...],
    strides: tuple[int, ...],
    dil: tuple[int, ...],
) -> torch.Tensor:
    """Pad the spatial dims of a channels-first tensor for 'same' or 'causal'."""
    if padding == "valid":
        return x
    pads: list[int] = []
    for axis in reversed(range(len(kernel))):  # F.pad lists the last dimension first
        size = x.shape[2 + axis]
        if padding == "causal":
            pads += [(kernel[axis] - 1) * dil[axis], 0]
        else:
            pads += list(_same_pads(size, kernel[axis], strides[axis], dil[axis]))
    return F.pad(x, pads) if any(pads) else x


class _ConvBase(Regularized, Layer):
    """Shared arguments, checks and config of the convolutions here.

    Every convolution takes Keras' `kernel_regularizer`, `bias_regularizer`,
    `activity_regularizer`, `kernel_constraint` and `bias_constraint` (the
    depthwise ones spell the kernel's `depthwise_...`), applied to the kernel in
    Keras' layout.
    """

    rank = 2
    paddings: tuple[str, ...] = ("valid", "same")

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        activation: Activation = None,
        use_bias: bool = True,
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
            raise ValueError(
                f"{self.name}: only data_format='channels_last' is supported, got {data_format!r}"
            )
        self.kernel_size = _tuple(kernel_size, self.rank, "kernel_size", self.name)
        self.strides = _tuple(strides, self.rank, "strides", self.name)
        self.padding = str(padding).lower()
        if self.padding not in self.paddings:
            raise ValueError(
                f"{self.name}: padding must be one of {self.paddings}, got {padding!r}"
            )
        self.dilation_rate = _tuple(dilation_rate, self.rank, "dilation_rate", self.name)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{self.name}: strides > 1 together with dilation_rate > 1 is not supported "
                f"(as in Keras), got strides={self.strides}, dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = bias_initializer
        self.bias: nn.Parameter | None = None

    def build(self, input_shape: Shape) -> None:
        self._register_weight_penalties()  # the subclass made its weights first
        super().build(input_shape)

    def _channels(self, input_shape: Shape) -> int:
        if len(input_shape) != self.rank + 2:
            expected = {
                1: "(batch, steps, channels)",
                2: "(batch, height, width, channels)",
                3: "(batch, depth, height, width, channels)",
            }[self.rank]
            raise ValueError(
                f"{self.name}: expected channels-last input {expected}, "
                f"got input shape {tuple(input_shape)}"
            )
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel dimension must be known")
        return int(channels)

    def _make(
        self, shape: tuple[int, ...], initializer: str, fan_in: int, fan_out: int
    ) -> nn.Parameter:
        value = torch.empty(shape)
        initializers.get(initializer)(value, fan_in, fan_out)
        return nn.Parameter(value)

    def _make_bias(self, units: int, fan_in: int, fan_out: int) -> None:
        if self.use_bias:
            self.bias = self._make((units,), self.bias_initializer, fan_in, fan_out)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != self.rank + 2:
            raise ValueError(
                f"{self.name}: expected a rank-{self.rank + 2} channels-last tensor, "
                f"got shape {tuple(x.shape)}"
            )

    def _finish(self, y: torch.Tensor) -> torch.Tensor:
        y = y.movedim(1, -1)
        y = y if self.activation is None else self.activation(y)
        if self.activity_regularizer is not None:
            self._activity_penalty(y)
        return y

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.name_of(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": self.bias_initializer,
            **self._regularizer_config(),
            **self._constraint_config(),
        }


@register_layer
class Conv1D(_ConvBase):
    """1-D convolution over `(batch, steps, channels)`.

    Kernel in Keras layout `(kernel_size, in_channels // groups, filters)`.

    Args:
        filters: output channels.
        kernel_size: window length.
        strides: step between windows.
        padding: 'valid', 'same' (TensorFlow's, extra cell at the end) or
            'causal' (`(kernel_size - 1) * dilation_rate` zeros in front).
        dilation_rate: spacing of kernel taps.
        groups: channel groups convolved separately.
    """

    rank = 1
    paddings = ("valid", "same", "causal")

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
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
        if self.filters % self.groups:
            raise ValueError(
                f"{self.name}: filters ({self.filters}) must be divisible by groups ({self.groups})"
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
        k = self.kernel_size[0]
        per_group = channels // self.groups
        fan_in, fan_out = k * per_group, k * self.filters // self.groups
        self.kernel = self._make(
            (k, per_group, self.filters), self.kernel_initializer, fan_in, fan_out
        )
        self._make_bias(self.filters, fan_in, fan_out)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = _pad_for(
            x.transpose(1, 2), self.padding, self.kernel_size, self.strides, self.dilation_rate
        )
        weight = self.kernel.permute(2, 1, 0)
        y = F.conv1d(x, weight, self.bias, self.strides, 0, self.dilation_rate, self.groups)
        return self._finish(y)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": self.kernel_initializer,
        }


class _ConvTranspose(_ConvBase):
    """Transposed convolution; kernel in Keras layout `(*kernel_size, filters, in_channels)`."""

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        output_padding: int | Sequence[int] | None = None,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
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
        self.output_padding = _optional_tuple(
            output_padding, self.rank, "output_padding", self.name
        )
        if self.output_padding is not None and any(
            p >= s for p, s in zip(self.output_padding, self.strides)
        ):
            raise ValueError(
                f"{self.name}: output_padding {self.output_padding} must be smaller than "
                f"strides {self.strides}"
            )
        self.kernel_initializer = kernel_initializer
        self.kernel: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        channels = self._channels(input_shape)
        size = 1
        for k in self.kernel_size:
            size *= k
        fan_in, fan_out = size * self.filters, size * channels  # Keras' fans for (…, out, in)
        self.kernel = self._make(
            (*self.kernel_size, self.filters, channels), self.kernel_initializer, fan_in, fan_out
        )
        self._make_bias(self.filters, fan_in, fan_out)
        super().build(input_shape)

    def _target(self, axis: int, size: int) -> tuple[int, int]:
        """(first cell kept, length) of the full result.

        See NOTE [ Keras' 'same' and transposed lengths ].
        """
        k, s, d = self.kernel_size[axis], self.strides[axis], self.dilation_rate[axis]
        effective = (k - 1) * d + 1
        full = (size - 1) * s + effective
        if self.output_padding is None:
            length = full if self.padding == "valid" else size * s
        else:
            pad = 0 if self.padding == "valid" else effective // 2
            length = full - 2 * pad + self.output_padding[axis]
        start = 0 if self.padding == "valid" else max(full - length, 0) // 2
        return start, length

    def call(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = x.movedim(-1, 1)
        order = (self.rank + 1, self.rank, *range(self.rank))  # (in, out, *kernel) for torch
        weight = self.kernel.permute(*order)
        conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self.rank - 1]
        y = conv(x, weight, None, self.strides, 0, 0, 1, self.dilation_rate)
        for axis in range(self.rank):
            start, length = self._target(axis, x.shape[2 + axis])
            dim = 2 + axis
            missing = start + length - y.shape[dim]
            if missing > 0:
                pads = [0, 0] * (self.rank - 1 - axis) + [0, missing]
                y = F.pad(y, pads)
            y = y.narrow(dim, start, length)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * self.rank))
        return self._finish(y)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "kernel_initializer": self.kernel_initializer,
        }


@register_layer
class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution over `(batch, steps, channels)`."""

    rank = 1


@register_layer
class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution over channels-last images (Keras' output sizes)."""

    rank = 2


@register_layer
class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution over channels-last volumes (Keras' output sizes)."""

    rank = 3
