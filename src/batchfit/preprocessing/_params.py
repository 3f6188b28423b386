"""Random augmentation parameters for a whole batch, drawn from one generator.

Keras draws each image's parameters from NumPy's global RNG; here a batch's
parameters come from `np.random.default_rng((seed, epoch, batch_index))`, so
an epoch is reproducible and a resumed epoch redraws exactly what it skipped.
The distributions are Keras' (see `ImageDataGenerator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from batchfit.transforms._affine import FILL_MODES

__all__ = ["check_arguments", "draw_parameters", "parse_shift_range", "parse_zoom_range"]

ShiftRange = float | int | Sequence[float]


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


def _shifts(rng: np.random.Generator, spec: ShiftRange, n: int, size: int) -> np.ndarray:
    """Keras' shift draw: int: whole pixels in (-k, k); list: +/- an element; float: uniform."""
    if (isinstance(spec, float) and spec == 0.0) or (isinstance(spec, int) and spec == 0):
        return np.zeros(n)
    if isinstance(spec, float):
        shift = rng.uniform(-spec, spec, n)
        largest = spec
    else:
        choices = np.arange(spec) if isinstance(spec, int) else np.asarray(spec, np.float64)
        shift = rng.choice(choices, n) * rng.choice([-1.0, 1.0], n)
        largest = float(np.max(choices))
    if largest < 1:  # Keras: values below 1 are fractions of the image size
        shift = shift * size
    return np.asarray(shift, np.float64)


def draw_parameters(
    gen: Any, rng: np.random.Generator, n: int, height: int, width: int
) -> dict[str, np.ndarray | None]:
    """Transform parameters of `n` images for the `ImageDataGenerator` `gen`.

    Returns a dict of `(n,)` arrays with Keras' keys: theta, tx, ty, shear,
    zx, zy, flip_horizontal, flip_vertical, channel_shift_intensity and
    brightness (the last two None when disabled).
    """
    zeros = np.zeros(n)
    theta = rng.uniform(-gen.rotation_range, gen.rotation_range, n) if gen.rotation_range else zeros
    tx = _shifts(rng, gen.width_shift_range, n, width)
    ty = _shifts(rng, gen.height_shift_range, n, height)
    shear = rng.uniform(-gen.shear_range, gen.shear_range, n) if gen.shear_range else zeros
    low, high = gen.zoom_range
    if low == 1 and high == 1:
        zx = zy = np.ones(n)
    else:
        zoom = rng.uniform(low, high, (n, 2))
        zx, zy = zoom[:, 0], zoom[:, 1]
    flip_h = (rng.random(n) < 0.5) & bool(gen.horizontal_flip)
    flip_v = (rng.random(n) < 0.5) & bool(gen.vertical_flip)
    channel_shift = None
    if gen.channel_shift_range:
        channel_shift = rng.uniform(-gen.channel_shift_range, gen.channel_shift_range, n)
    brightness = None
    if gen.brightness_range is not None:
        brightness = rng.uniform(gen.brightness_range[0], gen.brightness_range[1], n)
    return {
        "theta": theta,
        "tx": tx,
        "ty": ty,
        "shear": shear,
        "zx": zx,
        "zy": zy,
        "flip_horizontal": flip_h,
        "flip_vertical": flip_v,
        "channel_shift_intensity": channel_shift,
        "brightness": brightness,
    }


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
