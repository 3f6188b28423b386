"""Batched affine resampling: one matrix per image, one resample per image.

NOTE [ Affine conventions ]
Every geometric augmentation of an image (rotation, shift, shear, zoom,
flips) is folded into ONE 2x3 matrix `M` per image that maps an OUTPUT pixel
to the INPUT pixel it reads, in pixel coordinates `(x, y) = (column, row)`:

    input_xy = M[:, :2] @ output_xy + M[:, 2]

so the image is resampled once (bilinear), never once per transform. Points
that fall outside the image read the fill mode, defined as `np.pad` defines
it (what the tests compare against), except "constant", which is Keras'
(scipy.ndimage's): an output pixel whose source point lies beyond the edge
pixels' centres IS cval, with no blending across the edge (Keras' rotated
image of ones has corners of exactly 0, not 0.17):

    constant  cval where the source is outside [0, w-1] x [0, h-1]
    nearest   the edge pixel repeated         np.pad(mode="edge")
    reflect   mirrored about the edge (dcba|abcd|dcba)  np.pad(mode="symmetric")
    wrap      periodic (abcd|abcd|abcd)       np.pad(mode="wrap")

Two resamplers implement this and agree on integer-valued maps exactly:
OpenCV `warpAffine` per image in a thread pool (it releases the GIL; fastest
on CPU, see benchmarks/RESULTS_images.md) and one batched torch
`grid_sample` (any device; used on GPU tensors and when OpenCV is missing).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from batchfit.data._threads import num_threads, parallel_chunks

__all__ = [
    "FILL_MODES",
    "affine_matrices",
    "default_backend",
    "num_threads",
    "parallel_chunks",
    "warp_affine",
]

FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def default_backend(x: Any) -> str:
    """`"torch"` for torch tensors (batched on their device), else OpenCV when installed."""
    if not isinstance(x, np.ndarray):
        return "torch"
    return "opencv" if _cv2() is not None else "torch"


def affine_matrices(
    height: int,
    width: int,
    theta: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    shear: np.ndarray,
    zx: np.ndarray,
    zy: np.ndarray,
    flip_horizontal: np.ndarray,
    flip_vertical: np.ndarray,
) -> np.ndarray:
    """Fold per-image Keras transform parameters into `(N, 2, 3)` output->input maps.

    The composition is Keras': rotation, then shift, shear and zoom about the
    image centre (each maps output to input), then the flips, which Keras
    applies to the result. Angles are in degrees; `tx`/`ty` are pixels along
    columns/rows (input = output + shift, so a positive `tx` moves content left).

    Args:
        height: image rows.
        width: image columns.
        theta, tx, ty, shear, zx, zy: arrays of shape `(N,)` (Keras' meaning).
        flip_horizontal, flip_vertical: boolean arrays of shape `(N,)`.

    Returns:
        float64 array `(N, 2, 3)` in the convention of NOTE [ Affine conventions ].
    """
    n = len(theta)
    t = np.deg2rad(np.asarray(theta, np.float64))
    s = np.deg2rad(np.asarray(shear, np.float64))
    cos, sin = np.cos(t), np.sin(t)
    sin_s, cos_s = np.sin(s), np.cos(s)
    zx = np.asarray(zx, np.float64)
    zy = np.asarray(zy, np.float64)
    # R @ Shear @ Zoom on the 2x2 part (a shift commutes into the offset: R @ t).
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear_zoom = np.zeros((n, 2, 2))
    shear_zoom[:, 0, 0] = zx
    shear_zoom[:, 0, 1] = -sin_s * zy
    shear_zoom[:, 1, 1] = cos_s * zy
    linear = rot @ shear_zoom
    shift = (rot @ np.stack([tx, ty], -1).astype(np.float64)[..., None])[..., 0]
    flips = np.ones((n, 2))
    flips[:, 0] = np.where(np.asarray(flip_horizontal, bool), -1.0, 1.0)
    flips[:, 1] = np.where(np.asarray(flip_vertical, bool), -1.0, 1.0)
    linear = linear * flips[:, None, :]
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    offset = centre + shift - linear @ centre
    # Snap float noise (cos 90 = 6e-17) so integer maps stay exactly integer.
    linear = np.where(np.abs(linear) < 1e-12, 0.0, linear)
    return np.concatenate([linear, offset[..., None]], -1)


def warp_affine(
    images: Any,
    matrices: np.ndarray,
    *,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    backend: str | None = None,
    out: np.ndarray | None = None,
    threads: int | None = None,
    order: int = 1,
) -> Any:
    """Resample each image of a channels-last batch through its affine map.

    Args:
        images: `(N, H, W, C)` float32 NumPy array or torch tensor.
        matrices: `(N, 2, 3)` output->input maps (NOTE [ Affine conventions ]).
        fill_mode: "constant", "nearest", "reflect" or "wrap".
        cval: value outside the image for "constant".
        backend: "opencv", "torch" or None (`default_backend`).
        out: optional NumPy output buffer (OpenCV path).
        threads: CPU threads; defaults to `torch.get_num_threads()`.
        order: interpolation order: 0 nearest, 1 bilinear (default), 3 bicubic.

    Returns:
        The warped batch, same type and shape as `images`.
    """
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    if order not in (0, 1, 3):
        raise ValueError(f"interpolation order must be 0, 1 or 3, got {order!r}")
    backend = backend or default_backend(images)
    # constant: resample with the edge repeated, then put cval where the source is outside
    sample_mode = "nearest" if fill_mode == "constant" else fill_mode
    if backend == "opencv":
        warped = _warp_opencv(np.asarray(images), matrices, sample_mode, cval, out, threads, order)
    elif backend == "torch":
        warped = _warp_torch(images, matrices, sample_mode, cval, order)
    else:
        raise ValueError(f"backend must be 'opencv' or 'torch', got {backend!r}")
    if fill_mode == "constant":
        _fill_outside(warped, matrices, cval)
    return warped


def _fill_outside(warped: Any, matrices: np.ndarray, cval: float) -> None:
    """Set cval where an output pixel's source point lies outside the image (scipy's
    legacy "constant" mode, which Keras' ImageDataGenerator uses)."""
    _, h, w, _ = warped.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    m = matrices.astype(np.float64)
    src_x = m[:, 0, 0, None, None] * xs + m[:, 0, 1, None, None] * ys + m[:, 0, 2, None, None]
    src_y = m[:, 1, 0, None, None] * xs + m[:, 1, 1, None, None] * ys + m[:, 1, 2, None, None]
    eps = 1e-6
    outside = (src_x < -eps) | (src_x > w - 1 + eps) | (src_y < -eps) | (src_y > h - 1 + eps)
    if not outside.any():
        return
    if isinstance(warped, np.ndarray):
        warped[outside] = cval
    else:
        import torch

        warped[torch.from_numpy(outside).to(warped.device)] = cval


def _warp_opencv(
    images: np.ndarray,
    matrices: np.ndarray,
    fill_mode: str,
    cval: float,
    out: np.ndarray | None,
    threads: int | None,
    order: int,
) -> np.ndarray:
    cv2 = _cv2()
    if cv2 is None:
        raise ImportError("backend='opencv' needs opencv-python-headless (pip install it)")
    border = {
        "constant": cv2.BORDER_CONSTANT,
        "nearest": cv2.BORDER_REPLICATE,
        "reflect": cv2.BORDER_REFLECT,
        "wrap": cv2.BORDER_WRAP,
    }[fill_mode]
    interpolation = {0: cv2.INTER_NEAREST, 1: cv2.INTER_LINEAR, 3: cv2.INTER_CUBIC}[order]
    flags = interpolation | cv2.WARP_INVERSE_MAP
    n, h, w, c = images.shape
    if out is None:
        out = np.empty(images.shape, np.float32)
    mats = matrices.astype(np.float64)
    border_value = (float(cval),) * 4
    groups = [slice(k, min(k + 4, c)) for k in range(0, c, 4)]  # OpenCV caps at 4 channels

    def work(start: int, stop: int) -> None:
        for i in range(start, stop):
            if c == 1:
                out[i, :, :, 0] = cv2.warpAffine(
                    images[i, :, :, 0],
                    mats[i],
                    (w, h),
                    flags=flags,
                    borderMode=border,
                    borderValue=border_value,
                )
            elif c <= 4:
                cv2.warpAffine(
                    images[i],
                    mats[i],
                    (w, h),
                    dst=out[i],
                    flags=flags,
                    borderMode=border,
                    borderValue=border_value,
                )
            else:
                for g in groups:
                    out[i, :, :, g] = cv2.warpAffine(
                        np.ascontiguousarray(images[i, :, :, g]),
                        mats[i],
                        (w, h),
                        flags=flags,
                        borderMode=border,
                        borderValue=border_value,
                    ).reshape(h, w, -1)

    parallel_chunks(n, work, threads)
    return out


def _warp_torch(images: Any, matrices: np.ndarray, fill_mode: str, cval: float, order: int) -> Any:
    """One batched `grid_sample`; wrap is done by taking coordinates modulo the size."""
    import torch
    import torch.nn.functional as F

    mode = {0: "nearest", 1: "bilinear", 3: "bicubic"}[order]
    is_numpy = isinstance(images, np.ndarray)
    x = torch.from_numpy(images) if is_numpy else images
    _, h, w, _ = x.shape
    x = x.permute(0, 3, 1, 2).float()
    m = torch.as_tensor(matrices, dtype=torch.float32, device=x.device)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=x.device),
        torch.arange(w, dtype=torch.float32, device=x.device),
        indexing="ij",
    )
    src_x = m[:, 0, 0, None, None] * xs + m[:, 0, 1, None, None] * ys + m[:, 0, 2, None, None]
    src_y = m[:, 1, 0, None, None] * xs + m[:, 1, 1, None, None] * ys + m[:, 1, 2, None, None]
    if fill_mode == "wrap":
        # Periodic: fold coordinates into [0, size) and pad the image periodically
        # by 2 pixels so the interpolation kernel across the seam reads the far edge.
        p = 2
        src_x = torch.remainder(src_x, w) + p
        src_y = torch.remainder(src_y, h) + p
        x = torch.cat([x[:, :, -p:], x, x[:, :, :p]], 2)
        x = torch.cat([x[:, :, :, -p:], x, x[:, :, :, :p]], 3)
        grid = torch.stack([2 * src_x / (w + 2 * p - 1) - 1, 2 * src_y / (h + 2 * p - 1) - 1], -1)
        result = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=True)
    else:
        grid = torch.stack([(2 * src_x + 1) / w - 1, (2 * src_y + 1) / h - 1], -1)
        padding = {"constant": "zeros", "nearest": "border", "reflect": "reflection"}[fill_mode]
        if fill_mode == "constant" and cval != 0:
            # grid_sample pads with zeros; shifting by cval makes the padding cval exactly.
            result = F.grid_sample(x - cval, grid, mode, "zeros", align_corners=False) + cval
        else:
            result = F.grid_sample(x, grid, mode, padding, align_corners=False)
    result = result.permute(0, 2, 3, 1)
    if is_numpy:
        return result.contiguous().numpy()
    return result.contiguous()


def default_threads() -> int:
    """CPU count visible to this process (for documentation and benchmarks)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
