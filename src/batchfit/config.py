"""Keras' `keras.config`: global settings, fixed where batchfit has one way.

batchfit computes in float32 with channels-last images; the setters accept
those values (so Keras programs that set them run) and refuse the others with
a clear error instead of silently ignoring them. Importing this module is
light: it does not import torch.
"""

from __future__ import annotations

__all__ = [
    "backend",
    "epsilon",
    "floatx",
    "image_data_format",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
]

_EPSILON = 1e-7


def backend() -> str:
    """The name of the backend: always `"torch"`."""
    return "torch"


def floatx() -> str:
    """The default float type: `"float32"`."""
    return "float32"


def set_floatx(value: str) -> None:
    """Accepts `"float32"` only (mixed precision: `compile(precision="bf16")`)."""
    if value != "float32":
        raise ValueError(
            f"batchfit computes in float32; got floatx {value!r} (for mixed precision use "
            "model.compile(..., precision='bf16' or 'fp16'))"
        )


def epsilon() -> float:
    """The fuzz factor Keras uses in numeric expressions (default 1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the value `epsilon()` returns (batchfit's losses keep Keras' 1e-7)."""
    global _EPSILON
    _EPSILON = float(value)


def image_data_format() -> str:
    """The image layout: `"channels_last"` (`(N, H, W, C)`), as Keras' default."""
    return "channels_last"


def set_image_data_format(data_format: str) -> None:
    """Accepts `"channels_last"` only: batchfit's image layers take `(N, H, W, C)`."""
    if data_format != "channels_last":
        raise ValueError(
            f"batchfit's image layers are channels-last (N, H, W, C); got {data_format!r}"
        )
