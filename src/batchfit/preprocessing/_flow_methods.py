"""`flow`, `flow_from_directory` and `flow_from_dataframe`: the sources an
`ImageDataGenerator` makes, each augmenting with the generator's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

__all__ = ["FlowMethods"]


class FlowMethods:
    """The flow methods of `ImageDataGenerator` (Keras' names and arguments)."""

    if TYPE_CHECKING:
        _validation_split: float
        data_format: str
        dtype: np.dtype

        def _transform_owned(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def flow(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        sample_weight: Any = None,
        seed: int | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        ignore_class_split: bool = False,
        subset: str | None = None,
    ) -> Any:
        """Augmented batches of in-memory images: a finite, resumable source (one epoch per loop).

        Args mirror Keras' `flow`. `x` is `(N, H, W, C)` (or a tuple `(images,
        extra)` whose extra arrays pass through unchanged). Returns an
        `ArrayFlow`, a `batchfit.data.Source`.
        """
        from batchfit.preprocessing._flows import ArrayFlow

        return ArrayFlow(
            self,
            x,
            y,
            sample_weight=sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            save_to_dir=save_to_dir,
            save_prefix=save_prefix,
            save_format=save_format,
            ignore_class_split=ignore_class_split,
            subset=subset,
        )

    def flow_from_directory(
        self,
        directory: str,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: Sequence[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        follow_links: bool = False,
        subset: str | None = None,
        interpolation: str = "nearest",
        keep_aspect_ratio: bool = False,
        on_bad_files: str = "raise",
    ) -> Any:
        """Augmented batches from a class-per-subfolder image tree (Keras' arguments).

        Decodes JPEG/PNG/BMP/PPM/TIFF with Pillow in a thread pool; other
        files are ignored. `on_bad_files="skip"` drops unreadable files and
        counts them in `source.bad_files`; the default raises naming the file.
        """
        from batchfit.data._images import ImageFolderSource

        del save_prefix, save_format
        return ImageFolderSource(
            directory,
            target_size=target_size,
            color_mode=color_mode,
            classes=classes,
            class_mode=class_mode,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            follow_links=follow_links,
            subset=subset,
            interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio,
            on_bad_files=on_bad_files,
            **self._augmenting(save_to_dir),
        )

    def flow_from_dataframe(
        self,
        dataframe: Any,
        directory: str | None = None,
        x_col: str = "filename",
        y_col: str | Sequence[str] = "class",
        weight_col: str | None = None,
        target_size: tuple[int, int] = (256, 256),
        color_mode: str = "rgb",
        classes: Sequence[str] | None = None,
        class_mode: str | None = "categorical",
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        subset: str | None = None,
        interpolation: str = "nearest",
        validate_filenames: bool = True,
        keep_aspect_ratio: bool = False,
        on_bad_files: str = "raise",
    ) -> Any:
        """Augmented batches of the image files a table lists (Keras' arguments).

        `dataframe` is pandas or polars; `x_col` holds file names (joined to
        `directory` when given), `y_col` the labels: one per row, a list per
        row for multi-label "categorical", or numbers with `class_mode="raw"`.
        `validation_split` takes the first fraction of the rows, as Keras.
        Rows whose file is missing are dropped with a warning unless
        `validate_filenames=False`.
        """
        from batchfit.data._image_frame import ImageFrameSource

        del save_prefix, save_format
        return ImageFrameSource(
            dataframe,
            directory,
            x_col=x_col,
            y_col=y_col,
            weight_col=weight_col,
            class_mode=class_mode,
            validate_filenames=validate_filenames,
            target_size=target_size,
            color_mode=color_mode,
            classes=classes,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            subset=subset,
            interpolation=interpolation,
            keep_aspect_ratio=keep_aspect_ratio,
            on_bad_files=on_bad_files,
            **self._augmenting(save_to_dir),
        )

    def _augmenting(self, save_to_dir: str | None) -> dict[str, Any]:
        """What an image-file source takes from this generator: its split and augmentation."""
        if save_to_dir is not None:
            raise NotImplementedError("save_to_dir is only supported by flow() for now")
        return {
            "validation_split": self._validation_split,
            "transform": self._transform_owned,
            "data_format": self.data_format,
            "dtype": self.dtype,
        }
