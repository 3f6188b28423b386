"""Keras 3 image augmentation layers: active only while training, identity otherwise.

They transform inside `fit` or when called with `training=True` (a layer
called on its own is in training mode, as a torch module), and return their
input in inference (`predict`, `evaluate`, `training=False`), as in Keras.

NOTE [ Random draws of augmentation layers ]
Each random layer draws its parameters per image (Keras' distributions:
uniform over the factor's range, flips with probability 1/2; RandomCrop one
offset per batch, as Keras) from torch's global generator, like `Dropout`:
`keras.utils.set_random_seed` makes a run repeatable and batchfit's resume
state restores the stream. `seed=` is accepted for Keras compatibility. The
exact numbers Keras draws cannot be reproduced across backends; the transform
applied for given parameters is Keras' (see NOTE [ Keras' affine transform ]
in `_image_ops.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from batchfit.layers._base import Layer, register_layer
from batchfit.layers._image_layers import _ImageLayer
from batchfit.layers._image_ops import INTERPOLATIONS, affine_transform, resize

LAYER_FILL_MODES = ("reflect", "wrap", "constant", "nearest")  # Keras' layers take these

__all__ = [
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
]


def _range(layer: Layer, factor: float | Sequence[float], what: str) -> tuple[float, float]:
    """Keras' factor: `f` means `(-f, f)`; a pair is `(lower, upper)`."""
    if isinstance(factor, (int, float)):
        low, high = -abs(float(factor)), abs(float(factor))
    else:
        values = [float(v) for v in factor]
        if len(values) != 2:
            raise ValueError(f"{layer.name}: {what} must be a number or a pair, got {factor!r}")
        low, high = values
    if low > high:
        raise ValueError(f"{layer.name}: {what} lower bound {low} exceeds upper bound {high}")
    return low, high


def _uniform(n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low


class _RandomLayer(_ImageLayer):
    """Identity outside training; see NOTE [ Random draws of augmentation layers ]."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return super().call(x) if self.training else x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


@register_layer
class RandomFlip(_RandomLayer):
    """Flips each image with probability 1/2 while training.

    'horizontal_and_vertical' flips both ways or neither (one draw per image, as Keras).
    """

    def __init__(
        self, mode: str = "horizontal_and_vertical", seed: int | None = None, **kwargs: Any
    ):
        super().__init__(seed=seed, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(
                f"{self.name}: mode must be 'horizontal', 'vertical' or "
                f"'horizontal_and_vertical', got {mode!r}"
            )
        self.mode = mode

    def images(self, x: torch.Tensor) -> torch.Tensor:
        flip = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) <= 0.5).to(x.dtype)
        dims = {"horizontal": [2], "vertical": [1], "horizontal_and_vertical": [1, 2]}[self.mode]
        return flip * x.flip(dims) + (1 - flip) * x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}


@register_layer
class RandomCrop(_RandomLayer):
    """Crops a random `(height, width)` window while training (one offset per batch, as Keras).

    In inference, and in training when the image is not larger than the target,
    the largest centred window of the target's aspect ratio is resized to it
    (Keras' documented behaviour; Keras 3.15's torch backend instead returns
    the image uncropped in inference).
    """

    def __init__(self, height: int, width: int, seed: int | None = None, **kwargs: Any):
        super().__init__(seed=seed, **kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return _ImageLayer.call(self, x)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        in_h, in_w = x.shape[1], x.shape[2]
        if self.training and in_h > self.height and in_w > self.width:
            top = int(torch.randint(0, in_h - self.height + 1, ()))
            left = int(torch.randint(0, in_w - self.width + 1, ()))
            return x[:, top : top + self.height, left : left + self.width]
        return resize(x, self.height, self.width, "bilinear", crop_to_aspect_ratio=True)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width}


class _AffineLayer(_RandomLayer):
    """Shared `fill_mode`/`interpolation`/`fill_value` of the geometric augmentations."""

    def __init__(
        self,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if fill_mode not in LAYER_FILL_MODES:
            raise ValueError(
                f"{self.name}: fill_mode must be one of {LAYER_FILL_MODES}, got {fill_mode!r}"
            )
        if interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"{self.name}: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}"
            )
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = float(fill_value)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        transform = self.transforms(x.shape[0], x.shape[1], x.shape[2], x.device)
        return affine_transform(x, transform, self.interpolation, self.fill_mode, self.fill_value)

    def transforms(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


def rotation_transforms(degrees: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Keras' transforms rotating each image by `degrees` about its centre."""
    angle = degrees * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
    zero = torch.zeros_like(angle)
    a2 = cx - cx * cos + cy * sin
    b2 = cy - cx * sin - cy * cos
    return torch.stack([cos, -sin, a2, sin, cos, b2, zero, zero], dim=1)


@register_layer
class RandomRotation(_AffineLayer):
    """Rotates by a uniform angle in `factor * 360` degrees (`f` means `(-f, f)`) while training."""

    def __init__(
        self,
        factor: float | Sequence[float],
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _range(self, factor, "factor")

    def transforms(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        degrees = _uniform(n, self.factor[0] * 360.0, self.factor[1] * 360.0, device)
        return rotation_transforms(degrees, height, width)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": list(self.factor)}


def zoom_transforms(
    zoom_x: torch.Tensor, zoom_y: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Keras' zoom about the centre: factors above 1 zoom out, below 1 zoom in."""
    zero = torch.zeros_like(zoom_x)
    x_offset = (width - 1) / 2.0 * (1.0 - zoom_x)
    y_offset = (height - 1) / 2.0 * (1.0 - zoom_y)
    return torch.stack([zoom_x, zero, x_offset, zero, zoom_y, y_offset, zero, zero], dim=1)


@register_layer
class RandomZoom(_AffineLayer):
    """Zooms by `1 + u`, `u` uniform in `height_factor` (positive: out) while training.

    The width zooms by the same factor unless `width_factor` is given.
    """

    def __init__(
        self,
        height_factor: float | Sequence[float],
        width_factor: float | Sequence[float] | None = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _range(self, height_factor, "height_factor")
        self.width_factor = (
            None if width_factor is None else _range(self, width_factor, "width_factor")
        )
        for low, _ in filter(None, (self.height_factor, self.width_factor)):
            if low < -1.0:
                raise ValueError(f"{self.name}: zoom factors must be >= -1, got {low}")

    def transforms(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        zoom_y = 1.0 + _uniform(n, *self.height_factor, device)
        zoom_x = (
            zoom_y if self.width_factor is None else 1.0 + _uniform(n, *self.width_factor, device)
        )
        return zoom_transforms(zoom_x, zoom_y, height, width)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": None if self.width_factor is None else list(self.width_factor),
        }


def translation_transforms(dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Keras' transforms shifting each image by `(dx, dy)` pixels (right and down)."""
    zero, one = torch.zeros_like(dx), torch.ones_like(dx)
    return torch.stack([one, zero, -dx, zero, one, -dy, zero, zero], dim=1)


@register_layer
class RandomTranslation(_AffineLayer):
    """Shifts by uniform fractions of the height and width (`f` means `(-f, f)`) while training."""

    def __init__(
        self,
        height_factor: float | Sequence[float],
        width_factor: float | Sequence[float],
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _range(self, height_factor, "height_factor")
        self.width_factor = _range(self, width_factor, "width_factor")

    def transforms(self, n: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        dy = _uniform(n, *self.height_factor, device) * height
        dx = _uniform(n, *self.width_factor, device) * width
        return translation_transforms(dx, dy)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height_factor": list(self.height_factor),
            "width_factor": list(self.width_factor),
        }


@register_layer
class RandomContrast(_RandomLayer):
    """`(x - mean) * c + mean` per image and channel while training.

    `c` is uniform in `[1 - lower, 1 + upper]` (`f` means both are `f`); the
    result is clipped to `value_range`.
    """

    def __init__(
        self,
        factor: float | Sequence[float],
        value_range: Sequence[float] = (0, 255),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        if isinstance(factor, (int, float)):
            self.factor = (float(factor), float(factor))  # distances below and above 1
        else:
            self.factor = _range(self, factor, "factor")
        if min(self.factor) < 0 or self.factor[0] > 1:
            raise ValueError(f"{self.name}: factor must be in [0, 1], got {factor!r}")
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def images(self, x: torch.Tensor) -> torch.Tensor:
        c = _uniform(x.shape[0], 1.0 - self.factor[0], 1.0 + self.factor[1], x.device)
        mean = x.mean(dim=(1, 2), keepdim=True)
        out = (x - mean) * c.view(-1, 1, 1, 1) + mean
        return out.clamp(*self.value_range)

    def get_config(self) -> dict[str, Any]:
        factor = self.factor[0] if self.factor[0] == self.factor[1] else list(self.factor)
        return {**super().get_config(), "factor": factor, "value_range": list(self.value_range)}


@register_layer
class RandomBrightness(_RandomLayer):
    """Adds `u * (max - min)` per image while training, clipped to `value_range`.

    `u` is uniform in the factor's range (`f` means `(-f, f)`).
    """

    def __init__(
        self,
        factor: float | Sequence[float],
        value_range: Sequence[float] = (0, 255),
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self.factor = _range(self, factor, "factor")
        if self.factor[0] < -1.0 or self.factor[1] > 1.0:
            raise ValueError(f"{self.name}: factor must be within [-1, 1], got {factor!r}")
        self.value_range = (float(value_range[0]), float(value_range[1]))

    def images(self, x: torch.Tensor) -> torch.Tensor:
        span = self.value_range[1] - self.value_range[0]
        delta = _uniform(x.shape[0], *self.factor, x.device) * span
        return (x + delta.view(-1, 1, 1, 1)).clamp(*self.value_range)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "factor": list(self.factor),
            "value_range": list(self.value_range),
        }
