"""Keras 3 image preprocessing layers (channels-last): Rescaling, Resizing, CenterCrop.

They apply in training and inference alike; the augmentation layers, which act
only while training, are in `_augment_layers.py`.
"""

from __future__ import annotations

from typing import Any

import torch

from batchfit.layers._base import Layer, Shape, register_layer
from batchfit.layers._image_ops import resize

__all__ = ["CenterCrop", "Rescaling", "Resizing"]


class _ImageLayer(Layer):
    """Batched `(N, H, W, C)` or single `(H, W, C)` channels-last images; ints become float32."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"{self.name}: only data_format='channels_last' is supported, got {data_format!r}"
            )

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) not in (3, 4):
            raise ValueError(
                f"{self.name}: expected images (batch, height, width, channels), "
                f"got input shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        x = x if x.is_floating_point() else x.float()
        if x.dim() == 3:
            return self.images(x.unsqueeze(0)).squeeze(0)
        if x.dim() != 4:
            raise ValueError(
                f"{self.name}: expected images (batch, height, width, channels), "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        return self.images(x)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@register_layer
class Rescaling(Layer):
    """`x * scale + offset` (e.g. `Rescaling(1 / 255)`); integer inputs become float32."""

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        x = x if x.is_floating_point() else x.float()
        return x * self.scale + self.offset

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@register_layer
class Resizing(_ImageLayer):
    """Resizes images to `(height, width)` as Keras' torch backend does (`F.interpolate`).

    Args:
        height, width: output size.
        interpolation: 'bilinear' (half-pixel centres), 'nearest' or 'bicubic'.
        crop_to_aspect_ratio: first crop the largest centred window of the target's ratio.
    """

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        antialias: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        if interpolation not in ("bilinear", "nearest", "bicubic"):
            raise ValueError(
                f"{self.name}: interpolation must be 'bilinear', 'nearest' or 'bicubic', "
                f"got {interpolation!r}"
            )
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.antialias = bool(antialias)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return resize(
            x,
            self.height,
            self.width,
            self.interpolation,
            self.crop_to_aspect_ratio,
            self.antialias,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "antialias": self.antialias,
        }


@register_layer
class CenterCrop(_ImageLayer):
    """The centred `(height, width)` window; a smaller image is resized as Keras' `smart_resize`."""

    def __init__(self, height: int, width: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        h_diff, w_diff = x.shape[1] - self.height, x.shape[2] - self.width
        if h_diff >= 0 and w_diff >= 0:
            top, left = h_diff // 2, w_diff // 2
            return x[:, top : top + self.height, left : left + self.width]
        return resize(x, self.height, self.width, "bilinear", crop_to_aspect_ratio=True)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "height": self.height, "width": self.width}
