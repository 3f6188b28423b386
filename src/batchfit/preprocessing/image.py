"""Keras' `ImageDataGenerator`, batched, reproducible, with streamed statistics.

Existing Keras code runs with only its import changed. What differs, on purpose:

- `flow(...)` and `flow_from_directory(...)` return finite one-pass sources:
  a `for` loop ends after one epoch (Keras' never ends); `model.fit(flow,
  epochs=10)` reshuffles every epoch; `next(flow)` still runs on endlessly.
- `fit(data)` streams: arrays, an image folder or any batch source, in one
  pass and memory independent of the number of images; the statistics are
  exact over all of it, not a sample.
- Featurewise options used before `fit` raise instead of warning.
- Randomness is owned by each flow (`seed`, epoch, batch index), never the
  global NumPy RNG, so epochs are reproducible and resumable.
- Augmentation folds the geometry into one affine map per image and resamples
  once (OpenCV on CPU when installed, batched torch otherwise; see
  NOTE [ Affine conventions ] in `batchfit.transforms._affine`).
- Keras' legacy code shifts along the other axis than a shift range's name
  says and centres non-square images half a pixel-difference off; here
  `width_shift_range` moves columns, `height_shift_range` rows, about the
  true centre. Brightness skips Keras' round trip through 8-bit integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from batchfit.preprocessing import _fitting
from batchfit.preprocessing._flow_methods import FlowMethods
from batchfit.preprocessing._params import check_arguments, parse_shift_range, parse_zoom_range
from batchfit.transforms._image import (
    AugmentConfig,
    FittedStats,
    ImageAugmentation,
    augment_batch,
    draw_parameters,
    from_last,
    standardize_last,
    to_last,
)
from batchfit.utils._image import array_to_img, img_to_array, load_img, save_img

__all__ = ["ImageDataGenerator", "array_to_img", "img_to_array", "load_img", "save_img"]


class ImageDataGenerator(FlowMethods):
    """Real-time image augmentation and normalisation with Keras' arguments.

    Args:
        featurewise_center: subtract the data set's per-channel mean (needs `fit`).
        samplewise_center: subtract each image's mean.
        featurewise_std_normalization: divide by the data set's per-channel std
            (implies `featurewise_center`, needs `fit`).
        samplewise_std_normalization: divide each image by its std.
        zca_whitening: apply ZCA whitening (implies `featurewise_center`, needs `fit`).
        zca_epsilon: added to the covariance eigenvalues before whitening.
        rotation_range: degrees; angle drawn from `[-r, r]`.
        width_shift_range: float < 1 fraction of the width, float >= 1 pixels,
            int (integer pixels in `(-k, k)`) or list (a random element, +/-).
        height_shift_range: as `width_shift_range`, for rows.
        brightness_range: pair `(low, high)` of brightness factors.
        shear_range: shear angle in degrees, drawn from `[-s, s]`.
        zoom_range: float `z` for `[1 - z, 1 + z]` or a pair `[low, high]`.
        channel_shift_range: intensity drawn from `[-c, c]` added to all channels.
        fill_mode: "constant", "nearest", "reflect" or "wrap" outside the image.
        cval: fill value for "constant".
        horizontal_flip: flip half of the images left-right.
        vertical_flip: flip half of the images up-down.
        rescale: factor applied after augmentation (e.g. 1/255); None or 0 for none.
        preprocessing_function: called on each image (rank 3) after augmentation.
        data_format: "channels_last" (default) or "channels_first".
        validation_split: fraction held out for `subset="validation"`.
        interpolation_order: 0 nearest, 1 bilinear (default), 3 bicubic.
        dtype: output dtype (float32 by default).
        backend: resampler, "opencv" or "torch"; None picks the fastest for the data.

    Example:
        >>> datagen = ImageDataGenerator(featurewise_center=True, rotation_range=20)
        >>> datagen.fit(x_train)                      # one streamed pass
        >>> for x_batch, y_batch in datagen.flow(x_train, y_train, batch_size=32):
        ...     model.train_on_batch(x_batch, y_batch)  # ends after one epoch
    """

    def __init__(
        self,
        featurewise_center: bool = False,
        samplewise_center: bool = False,
        featurewise_std_normalization: bool = False,
        samplewise_std_normalization: bool = False,
        zca_whitening: bool = False,
        zca_epsilon: float = 1e-6,
        rotation_range: float = 0,
        width_shift_range: float | int | Sequence[float] = 0.0,
        height_shift_range: float | int | Sequence[float] = 0.0,
        brightness_range: Sequence[float] | None = None,
        shear_range: float = 0.0,
        zoom_range: float | Sequence[float] = 0.0,
        channel_shift_range: float = 0.0,
        fill_mode: str = "nearest",
        cval: float = 0.0,
        horizontal_flip: bool = False,
        vertical_flip: bool = False,
        rescale: float | None = None,
        preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
        data_format: str | None = None,
        validation_split: float = 0.0,
        interpolation_order: int = 1,
        dtype: Any = None,
        backend: str | None = None,
    ) -> None:
        data_format = data_format or "channels_last"
        check_arguments(
            data_format=data_format,
            fill_mode=fill_mode,
            validation_split=validation_split,
            brightness_range=brightness_range,
            interpolation_order=interpolation_order,
            backend=backend,
            ranges=(rotation_range, shear_range, channel_shift_range),
        )
        # Keras: std normalisation and ZCA both imply centring; ZCA replaces std scaling.
        self.featurewise_center = bool(
            featurewise_center or featurewise_std_normalization or zca_whitening
        )
        self.featurewise_std_normalization = bool(featurewise_std_normalization) and not bool(
            zca_whitening
        )
        self.samplewise_center = bool(samplewise_center or samplewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.zca_whitening = bool(zca_whitening)
        self.zca_epsilon = float(zca_epsilon)
        self.rotation_range = float(rotation_range)
        self.width_shift_range = parse_shift_range(width_shift_range, "width_shift_range")
        self.height_shift_range = parse_shift_range(height_shift_range, "height_shift_range")
        self.brightness_range = (
            None
            if brightness_range is None
            else (float(brightness_range[0]), float(brightness_range[1]))
        )
        self.shear_range = float(shear_range)
        self.zoom_range = parse_zoom_range(zoom_range)
        self.channel_shift_range = float(channel_shift_range)
        self.fill_mode = fill_mode
        self.cval = float(cval)
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.data_format = data_format
        self.channel_axis, self.row_axis, self.col_axis = (
            (3, 1, 2) if data_format == "channels_last" else (1, 2, 3)
        )
        self._validation_split = float(validation_split)
        self.interpolation_order = int(interpolation_order)
        self.dtype = np.dtype(dtype or "float32")
        self.backend = backend
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.zca_whitening_matrix: np.ndarray | None = None

    # -- statistics -------------------------------------------------------------------
    def fit(
        self,
        x: Any,
        augment: bool = False,
        rounds: int = 1,
        seed: int | None = None,
        batch_size: int = 256,
    ) -> ImageDataGenerator:
        """Compute the featurewise statistics over ALL of `x` in one streamed pass.

        Args:
            x: a rank-4 array, an image-folder path, or any batch source or
                iterable of batches (the first element of each tuple is used).
            augment: gather the statistics on randomly augmented images.
            rounds: augmentation passes when `augment` is True.
            seed: seed of the augmentation draws.
            batch_size: images reduced at a time (memory, not results).

        Returns:
            self, with `mean`, `std` and `zca_whitening_matrix` set as configured.

        Raises:
            ValueError: wrong rank or channel count, or no images.
            MemoryError: the ZCA matrix would not fit in memory (raised on the
                first chunk, naming the image shape and the bytes needed).
        """
        stats = _fitting.fit_statistics(self.config(), x, augment, rounds, seed, batch_size)
        self.mean, self.std = stats.mean, stats.std
        self.zca_whitening_matrix = stats.zca_whitening_matrix
        return self

    # -- what the augmentation sees (NOTE [ Image augmentation ]) -----------------------
    def config(self) -> AugmentConfig:
        """The settings as they are now, frozen (attributes may be changed between calls)."""
        return AugmentConfig(
            **{name: getattr(self, name) for name in AugmentConfig.__dataclass_fields__}
        )

    def fitted_stats(self) -> FittedStats:
        """The statistics `fit` computed (or that were assigned), frozen."""
        return FittedStats(self.mean, self.std, self.zca_whitening_matrix)

    def augmentation(self) -> ImageAugmentation:
        """`transform(x, rng)` with the current settings and statistics, for image sources."""
        return ImageAugmentation(self.config(), self.fitted_stats())

    # -- one image (Keras' per-image API) ---------------------------------------------
    def get_random_transform(self, img_shape: Sequence[int], seed: int | None = None) -> dict:
        """Random transform parameters for one image of `img_shape` (Keras' keys).

        Uses its own generator (`np.random.default_rng(seed)`), never the global RNG.
        """
        h, w = img_shape[self.row_axis - 1], img_shape[self.col_axis - 1]
        params = draw_parameters(self.config(), np.random.default_rng(seed), 1, int(h), int(w))
        return {k: (None if v is None else v[0].item()) for k, v in params.items()}

    def apply_transform(self, x: np.ndarray, transform_parameters: dict) -> np.ndarray:
        """Apply the transform described by `transform_parameters` to one image (rank 3)."""
        img = np.asarray(x)
        if img.ndim != 3:
            raise ValueError(f"apply_transform expects one image of rank 3, got shape {img.shape}")
        params = {
            k: None if v is None else np.asarray([v]) for k, v in transform_parameters.items()
        }
        defaults = {"theta": 0.0, "tx": 0.0, "ty": 0.0, "shear": 0.0, "zx": 1.0, "zy": 1.0}
        for key, value in defaults.items():
            if params.get(key) is None:
                params[key] = np.asarray([value])
        for key in ("flip_horizontal", "flip_vertical"):
            params[key] = np.asarray([bool(transform_parameters.get(key, False))])
        config = self.config()
        batch = to_last(config.data_format, img[None].astype(self.dtype, copy=True))
        return from_last(
            config.data_format, augment_batch(config, FittedStats(), batch, params, False)
        )[0]

    def random_transform(self, x: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Apply a random transformation to one image (rank 3)."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Apply the normalisation configuration to one image or a batch (in place if float).

        Samplewise statistics are per image, also for a batch (Keras' would mix
        a batch's images). `preprocessing_function` runs first, on each image.
        """
        arr = np.asarray(x)
        if arr.ndim not in (3, 4):
            raise ValueError(
                f"standardize expects an image (rank 3) or a batch (rank 4), got {arr.shape}"
            )
        single = arr.ndim == 3
        batch = arr[None] if single else arr
        if batch.dtype != self.dtype:
            batch = batch.astype(self.dtype)
        config = self.config()
        batch = standardize_last(config, self.fitted_stats(), to_last(config.data_format, batch))
        out = from_last(config.data_format, batch)
        return out[0] if single else out

    # -- batches -------------------------------------------------------------------------
    def transform_batch(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment then standardise a batch in `data_format`, drawing from `rng`."""
        config = self.config()
        batch = to_last(config.data_format, np.asarray(x))
        if batch.ndim != 4:
            raise ValueError(f"expected a batch of images of rank 4, got shape {batch.shape}")
        batch = np.array(batch, dtype=self.dtype)  # a copy: the caller's array stays intact
        return from_last(
            config.data_format, ImageAugmentation(config, self.fitted_stats())(batch, rng)
        )
