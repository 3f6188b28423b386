"""One augmented batch: a single warp per image, intensity changes, standardisation.

Runs in contiguous chunks of the batch on the shared thread pool: each chunk
is warped (OpenCV releases the GIL) and then standardised while it is still
in cache. With the torch backend the whole batch is warped by one
`grid_sample` first (the path for GPU tensors).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batchfit.transforms._affine import (
    affine_matrices,
    default_backend,
    parallel_chunks,
    warp_affine,
)

__all__ = ["augment_batch", "channel_affine"]

_GEOMETRIC = ("theta", "tx", "ty", "shear")


def augment_batch(gen: Any, batch: np.ndarray, params: dict, standardize: bool) -> np.ndarray:
    """Augment a channels-last batch of `ImageDataGenerator` `gen` with `params` (in place)."""
    n, h, w, _ = batch.shape
    geometric = any(np.any(params[k] != 0) for k in _GEOMETRIC) or any(
        np.any(params[k] != 1) for k in ("zx", "zy")
    )
    backend = gen.backend or default_backend(batch)
    mats = affine_matrices(h, w, **{k: params[k] for k in _MATRIX_KEYS}) if geometric else None
    if mats is not None and backend == "torch":
        # One batched grid_sample over the whole batch (the path for GPUs).
        batch = warp_affine(
            batch,
            mats,
            fill_mode=gen.fill_mode,
            cval=gen.cval,
            backend="torch",
            order=gen.interpolation_order,
        ).astype(gen.dtype, copy=False)
    warp_here = mats is not None and backend != "torch"
    out = np.empty_like(batch) if warp_here else batch

    def work(start: int, stop: int) -> None:
        part = slice(start, stop)
        if warp_here:
            assert mats is not None  # set together with warp_here
            warp_affine(
                batch[part],
                mats[part],
                fill_mode=gen.fill_mode,
                cval=gen.cval,
                backend="opencv",
                out=out[part],
                threads=1,
                order=gen.interpolation_order,
            )
        elif mats is None:  # flips only: exact and cheaper as slicing
            _flip_in_place(
                out[part], params["flip_horizontal"][part], params["flip_vertical"][part]
            )
        _intensity(out[part], params, part)
        if standardize:
            out[part] = gen._standardize_last(out[part], zca=False)

    parallel_chunks(n, work)
    if standardize and gen.zca_whitening:
        out = gen._zca(out)
    return out


_MATRIX_KEYS = ("theta", "tx", "ty", "shear", "zx", "zy", "flip_horizontal", "flip_vertical")


def _flip_in_place(x: np.ndarray, horizontal: np.ndarray, vertical: np.ndarray) -> None:
    for i in np.flatnonzero(horizontal):
        x[i] = x[i, :, ::-1].copy()
    for i in np.flatnonzero(vertical):
        x[i] = x[i, ::-1].copy()


def _intensity(x: np.ndarray, params: dict, part: slice) -> None:
    """Keras' channel shift then brightness, per image, in place."""
    shift = params.get("channel_shift_intensity")
    brightness = params.get("brightness")
    if shift is None and brightness is None:
        return
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    if shift is not None:
        # Keras: add the intensity, clipped to the image's own range.
        np.clip(x + shift[part].reshape(-1, 1, 1, 1).astype(x.dtype), lo, hi, out=x)
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        hi = x.max(axis=(1, 2, 3), keepdims=True)
    if brightness is not None:
        factor = brightness[part].reshape(-1, 1, 1, 1).astype(x.dtype)
        # Keras goes through an 8-bit PIL image: within [0, 255] it scales and
        # clips at 0..255; data outside that range is scaled about its minimum.
        in_byte_range = (lo >= 0) & (hi <= 255)
        scaled = np.where(
            in_byte_range, np.clip(x * factor, 0, 255), lo + np.clip((x - lo) * factor, 0, hi - lo)
        )
        x[...] = scaled


def channel_affine(batch: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> None:
    """`batch = batch * scale + offset` per channel, in place, on a channels-last batch.

    Broadcasting over a last axis of 3 runs NumPy's inner loop 3 elements at a
    time; viewing rows as `W * C` and tiling the vectors makes it ~10x faster.
    """
    n, h, w, c = batch.shape
    rows = batch.reshape(n * h, w * c)
    rows *= np.tile(scale, w).astype(batch.dtype)
    rows += np.tile(offset, w).astype(batch.dtype)
