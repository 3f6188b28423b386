"""Keras' image resize and affine transform on channels-last torch tensors.

NOTE [ Keras' affine transform ]
A transform is 8 numbers `[a0, a1, a2, b0, b1, b2, c0, c1]` per image mapping
an *output* pixel `(x, y)` to the *input* point it samples:
`x_in = a0 x + a1 y + a2`, `y_in = b0 x + b1 y + b2` (Keras' torch backend
leaves `c0, c1` out of the division, so only affine maps are exact). The
input is sampled at that point by nearest (`round`, half to even) or bilinear
interpolation. Outside the image, `fill_mode` decides:
'constant' (every corner outside counts as `fill_value`), 'nearest' (edge
pixel), 'wrap', 'mirror' (`d c b | a b c d | c b a`) and 'reflect'
(`d c b a | a b c d | d c b a`), as `scipy.ndimage`/Keras' `map_coordinates`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["FILL_MODES", "INTERPOLATIONS", "affine_transform", "resize"]

FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")
INTERPOLATIONS = ("nearest", "bilinear")
_RESIZE_MODES = {"bilinear": "bilinear", "nearest": "nearest-exact", "bicubic": "bicubic"}


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    period = size - 1
    if period == 0:
        return torch.zeros_like(index)
    return ((index + period) % (2 * period) - period).abs()


def _fix(index: torch.Tensor, size: int, fill_mode: str) -> torch.Tensor:
    if fill_mode == "wrap":
        return index % size
    if fill_mode == "mirror":
        return _mirror(index, size)
    if fill_mode == "reflect":
        return torch.div(_mirror(2 * index + 1, 2 * size + 1) - 1, 2, rounding_mode="floor")
    return index.clamp(0, size - 1)  # 'nearest', and 'constant' (masked by the caller)


def affine_transform(
    images: torch.Tensor,
    transform: torch.Tensor,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> torch.Tensor:
    """Resample `(N, H, W, C)` images through `(N, 8)` transforms.

    See NOTE [ Keras' affine transform ]. Returns float images of the same shape
    (integer images come back as float32).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    n, height, width, channels = images.shape
    dtype = images.dtype if images.is_floating_point() else torch.float32
    t = transform.to(device=images.device, dtype=dtype).reshape(n, 8, 1, 1)
    ys = torch.arange(height, device=images.device, dtype=dtype).view(1, height, 1)
    xs = torch.arange(width, device=images.device, dtype=dtype).view(1, 1, width)
    x_in = t[:, 0] * xs + t[:, 1] * ys + t[:, 2]  # (N, H, W)
    y_in = t[:, 3] * xs + t[:, 4] * ys + t[:, 5]
    flat = images.reshape(n, height * width, channels).to(dtype)

    corners: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
    if interpolation == "nearest":
        corners = [(torch.round(y_in), torch.round(x_in), None)]
    else:
        y0, x0 = torch.floor(y_in), torch.floor(x_in)
        wy, wx = y_in - y0, x_in - x0
        corners = [
            (y0, x0, (1 - wy) * (1 - wx)),
            (y0, x0 + 1, (1 - wy) * wx),
            (y0 + 1, x0, wy * (1 - wx)),
            (y0 + 1, x0 + 1, wy * wx),
        ]
    out = torch.zeros(n, height, width, channels, device=images.device, dtype=dtype)
    for y, x, weight in corners:
        yi, xi = y.long(), x.long()
        index = _fix(yi, height, fill_mode) * width + _fix(xi, width, fill_mode)
        values = flat.gather(1, index.view(n, -1, 1).expand(-1, -1, channels))
        values = values.view(n, height, width, channels)
        if fill_mode == "constant":
            inside = ((yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)).unsqueeze(-1)
            values = torch.where(inside, values, torch.full_like(values, fill_value))
        out = out + (values if weight is None else weight.unsqueeze(-1) * values)
    return out


def resize(
    images: torch.Tensor,
    height: int,
    width: int,
    interpolation: str = "bilinear",
    crop_to_aspect_ratio: bool = False,
    antialias: bool = False,
) -> torch.Tensor:
    """Keras' `ops.image.resize` on `(N, H, W, C)`.

    With `crop_to_aspect_ratio`, first the largest centred window of the target's ratio.
    """
    if interpolation not in _RESIZE_MODES:
        raise ValueError(
            f"interpolation must be one of {tuple(_RESIZE_MODES)}, got {interpolation!r}"
        )
    images = images if images.is_floating_point() else images.float()
    in_h, in_w = images.shape[1], images.shape[2]
    if crop_to_aspect_ratio:
        crop_h = max(min(in_h, int(float(in_w * height) / width)), 1)
        crop_w = max(min(in_w, int(float(in_h * width) / height)), 1)
        top, left = int(float(in_h - crop_h) / 2), int(float(in_w - crop_w) / 2)
        images = images[:, top : top + crop_h, left : left + crop_w]
    mode = _RESIZE_MODES[interpolation]
    smooth = mode in ("bilinear", "bicubic")
    resized = F.interpolate(
        images.permute(0, 3, 1, 2),
        size=(height, width),
        mode=mode,
        align_corners=False if smooth else None,
        antialias=antialias and smooth,
    )
    return resized.permute(0, 2, 3, 1)
