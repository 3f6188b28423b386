"""`ImageDataGenerator.fit`: featurewise statistics in one streamed pass (sums, float64)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from batchfit.transforms._image import (
    AugmentConfig,
    FittedStats,
    augment_batch,
    draw_parameters,
    to_last,
)
from batchfit.transforms._stats import (
    Moments,
    available_memory_bytes,
    for_this_rank,
    merge_ranks,
    zca_matrix,
)

__all__ = ["check_images", "fit_statistics", "format_bytes"]

# Copies of the d x d matrix alive at once: the sums, the second moment, eigh's output.
_ZCA_MATRIX_COPIES = 3


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def check_images(x: np.ndarray, data_format: str, where: str) -> None:
    """Raise unless `x` is a rank-4 batch; warn, as Keras does, unless it has 1, 3 or 4
    channels on the channel axis (often a channels-last array given as channels-first)."""
    layout = "(N, H, W, C)" if data_format == "channels_last" else "(N, C, H, W)"
    if x.ndim != 4:
        raise ValueError(
            f"{where} expects a batch of images of rank 4 {layout}, got shape {x.shape}"
        )
    channels = x.shape[3 if data_format == "channels_last" else 1]
    if channels not in (1, 3, 4):
        warnings.warn(
            f"{where} expects 1, 3 or 4 channels on the channel axis of {layout} "
            f"({data_format}), got shape {x.shape} ({channels} channels); going on with "
            f"{channels} channels as Keras does. Check data_format if this is not meant.",
            stacklevel=3,
        )


def _chunks(x: Any, batch_size: int) -> Iterator[np.ndarray]:
    if isinstance(x, (str, os.PathLike)):
        raise TypeError(
            f"fit() got the path {os.fspath(x)!r}: pass a source with the image size, e.g. "
            f"batchfit.data.images({os.fspath(x)!r}, target_size=(224, 224), class_mode=None)"
        )
    if hasattr(x, "shape") and hasattr(x, "__getitem__") and not hasattr(x, "_iter_epoch"):
        arr = x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else x
        if np.ndim(arr) != 4:
            raise ValueError(
                f"fit() expects images of rank 4, got an array of shape {np.shape(arr)}"
            )
        for start in range(0, len(arr), batch_size):
            yield np.asarray(arr[start : start + batch_size])
        return
    for batch in x:
        chunk = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(chunk, dict):
            raise TypeError("fit() needs image batches, got a dict of named inputs")
        yield np.asarray(chunk)


def fit_statistics(
    config: AugmentConfig, x: Any, augment: bool, rounds: int, seed: int | None, batch_size: int
) -> FittedStats:
    """Stream `x` once: the mean, std and ZCA matrix `config` asks for (others None)."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    pixels: Moments | None = None
    features: Moments | None = None
    shape: tuple[int, ...] | None = None
    rng = np.random.default_rng(seed)
    x, split = for_this_rank(x)  # under torchrun each rank reads a part; sums merge below
    for chunk in _chunks(x, batch_size):
        check_images(chunk, config.data_format, "fit()")
        last = to_last(config.data_format, chunk).astype(config.dtype, copy=True)
        if shape is None:
            shape = last.shape[1:]
            pixels = Moments.empty(shape[-1])
            if config.zca_whitening:
                _check_zca_memory(shape)
                features = Moments.empty(int(np.prod(shape)), outer=True)
        elif last.shape[1:] != shape:
            raise ValueError(
                f"fit() got images of shape {last.shape[1:]} after images of shape {shape}"
            )
        if config.rescale:
            last *= config.dtype.type(config.rescale)
        views = [last]
        if augment:
            views = []
            for _ in range(rounds):
                params = draw_parameters(config, rng, *last.shape[:3])
                views.append(augment_batch(config, FittedStats(), last.copy(), params, False))
        for view in views:
            assert pixels is not None  # set with the first chunk
            pixels.update(view.reshape(-1, view.shape[-1]))
            if features is not None:
                features.update(view.reshape(view.shape[0], -1))
    if split:
        from batchfit import distributed

        pixels, features = merge_ranks(pixels), merge_ranks(features)
        # a rank whose part was empty learns the image shape from the others
        shape = next((s for s in distributed.gather_objects(shape) if s is not None), None)
    if pixels is None or shape is None:
        raise ValueError("fit() got no images: the data is empty")
    channels = shape[-1]
    keras_shape = (1, 1, channels) if config.data_format == "channels_last" else (channels, 1, 1)
    mean, dtype = pixels.mean, config.dtype
    zca = None
    if features is not None:
        about = np.tile(mean, int(np.prod(shape[:-1])))  # Keras centres by the channel mean
        zca = zca_matrix(features.second_moment(about), config.zca_epsilon).astype(dtype)
    return FittedStats(
        mean=mean.astype(dtype).reshape(keras_shape) if config.featurewise_center else None,
        std=(
            pixels.std.astype(dtype).reshape(keras_shape)
            if config.featurewise_std_normalization
            else None
        ),
        zca_whitening_matrix=zca,
    )


def _check_zca_memory(shape: tuple[int, ...]) -> None:
    dim = int(np.prod(shape))
    matrix = dim * dim * 8
    needed = matrix * _ZCA_MATRIX_COPIES
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise MemoryError(
            f"zca_whitening on images of shape {tuple(shape)} needs a {dim} x {dim} float64 "
            f"matrix ({format_bytes(matrix)}; about {format_bytes(needed)} with its "
            f"eigendecomposition), but only {format_bytes(available)} is available. Use smaller "
            "images (e.g. target_size=(32, 32)) or drop zca_whitening."
        )
