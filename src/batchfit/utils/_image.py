"""Keras' image helpers: `load_img`, `img_to_array`, `array_to_img`, `save_img` (PIL)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img"]

_MODES = {"rgb": "RGB", "rgba": "RGBA", "grayscale": "L"}


def _check_format(data_format: str | None) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"batchfit images are channels_last; got data_format={data_format!r}")


def load_img(
    path: str | os.PathLike[str],
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Any:
    """Open an image file as a PIL image in `color_mode`, resized to `target_size` (h, w).

    With `keep_aspect_ratio=True` the largest centred crop of the target's
    aspect ratio is taken before resizing, as Keras does.
    """
    from PIL import Image

    from batchfit.data._images import _centre_crop, _pil_filter

    if color_mode not in _MODES:
        raise ValueError(f"color_mode must be one of {tuple(_MODES)}, got {color_mode!r}")
    with Image.open(path) as opened:
        img = opened.convert(_MODES[color_mode])
    if target_size is not None:
        height, width = int(target_size[0]), int(target_size[1])
        if img.size != (width, height):
            if keep_aspect_ratio:
                img = _centre_crop(img, (height, width))
            img = img.resize((width, height), _pil_filter(Image, interpolation))
    return img


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A PIL image as an array `(height, width, channels)` (float32 unless `dtype`)."""
    _check_format(data_format)
    x = np.asarray(img, dtype=dtype or "float32")
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"img_to_array: expected an image, got an array of shape {x.shape}")
    return x


def array_to_img(
    x: Any, data_format: str | None = None, scale: bool = True, dtype: Any = None
) -> Any:
    """An array `(height, width, channels)` as a PIL image; `scale` maps its range to 0-255."""
    from PIL import Image

    _check_format(data_format)
    arr = np.asarray(x, dtype=dtype or "float32")
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"array_to_img: expected (height, width, 1, 3 or 4 channels), got shape {arr.shape}"
        )
    if scale:
        arr = arr - arr.min()
        top = arr.max()
        if top != 0:
            arr = arr / top
        arr = arr * 255
    pixels = np.clip(arr, 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        return Image.fromarray(pixels[:, :, 0], "L")
    return Image.fromarray(pixels, "RGB" if pixels.shape[-1] == 3 else "RGBA")


def save_img(
    path: str | os.PathLike[str],
    x: Any,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Save an array as an image file (`array_to_img`, then PIL's `save`)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    fmt = (file_format or os.path.splitext(str(path))[1].lstrip(".")).lower()
    if img.mode == "RGBA" and fmt in ("jpg", "jpeg"):
        img = img.convert("RGB")  # JPEG has no alpha channel
    img.save(path, format=file_format, **kwargs)
