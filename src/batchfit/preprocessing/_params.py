"""Keras' `ImageDataGenerator` arguments: parsed and checked when it is made.

The random parameters they describe are drawn by
`batchfit.transforms._image.draw_parameters` (NOTE [ Image augmentation ]):
Keras draws each image's parameters from NumPy's global RNG; here a batch's
come from `np.random.default_rng((seed, epoch, batch_index))`, so an epoch is
reproducible and a resumed epoch redraws exactly what it skipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batchfit.transforms._affine import FILL_MODES

__all__ = ["check_arguments", "parse_shift_range", "parse_zoom_range"]

from batchfit.transforms._image import ShiftRange


def parse_zoom_range(zoom_range: Any) -> tuple[float, float]:
    """Keras' zoom: a float `z` means `[1 - z, 1 + z]`; a pair is `[lower, upper]`."""
    if isinstance(zoom_range, (int, float, np.integer, np.floating)):
        z = float(zoom_range)
        return (1.0 - z, 1.0 + z)
    if (
        isinstance(zoom_range, (list, tuple))
        and len(zoom_range) == 2
        and all(isinstance(v, (int, float, np.integer, np.floating)) for v in zoom_range)
    ):
        return (float(zoom_range[0]), float(zoom_range[1]))
    raise ValueError(f"zoom_range should be a float or a pair of floats, got {zoom_range!r}")


def parse_shift_range(value: Any, name: str) -> ShiftRange:
    """Validate a Keras shift range: a float (fraction if < 1, else pixels), an int, or a list."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number or a list of numbers, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    try:
        values = [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a list of numbers, got {value!r}") from None
    if not values:
        raise ValueError(f"{name} must not be an empty list")
    return values


def check_arguments(
    *,
    data_format: str,
    fill_mode: str,
    validation_split: float,
    brightness_range: Any,
    interpolation_order: int,
    backend: str | None,
    ranges: tuple[float, float, float],
) -> None:
    """Refuse bad `ImageDataGenerator` arguments when it is made, naming the argument."""
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f'data_format must be "channels_last" or "channels_first", got {data_format!r}'
        )
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split!r}")
    if brightness_range is not None and (
        not isinstance(brightness_range, (tuple, list)) or len(brightness_range) != 2
    ):
        raise ValueError(f"brightness_range must be a pair of floats, got {brightness_range!r}")
    if interpolation_order not in (0, 1, 3):
        raise ValueError(f"interpolation_order must be 0, 1 or 3, got {interpolation_order!r}")
    if backend not in (None, "opencv", "torch"):
        raise ValueError(f"backend must be None, 'opencv' or 'torch', got {backend!r}")
    if min(ranges) < 0:
        raise ValueError("rotation_range, shear_range and channel_shift_range must be >= 0")
