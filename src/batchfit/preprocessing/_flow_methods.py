"""`flow`, `flow_from_directory` and `flow_from_dataframe`: the sources an
`ImageDataGenerator` makes, each augmenting with the generator's settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._image_frame import ImageFrameSource
from batchfit.data._images import image_options
from batchfit.preprocessing._flows import ArrayFlow, DirectoryIterator

if TYPE_CHECKING:
    from batchfit.transforms._image import ImageAugmentation

__all__ = ["FlowMethods"]


class FlowMethods:
    """The flow methods of `ImageDataGenerator` (Keras' names and arguments)."""

    if TYPE_CHECKING:
        _validation_split: float
        data_format: str
        dtype: np.dtype

        def augmentation(self) -> ImageAugmentation: ...

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
        options = {k: v for k, v in locals().items() if k not in ("self", "x", "y")}
        return ArrayFlow(x, y, **options, **self._augmenting())  # Keras' arguments, as given

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
        self._refuse_saving(save_to_dir)
        return DirectoryIterator(directory, **image_options(locals()), **self._augmenting())

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
        self._refuse_saving(save_to_dir)
        return ImageFrameSource(
            dataframe,
            directory,
            x_col=x_col,
            y_col=y_col,
            weight_col=weight_col,
            validate_filenames=validate_filenames,
            **image_options(locals()),
            **self._augmenting(),
        )

    @staticmethod
    def _refuse_saving(save_to_dir: str | None) -> None:
        if save_to_dir is not None:
            raise NotImplementedError("save_to_dir is only supported by flow() for now")

    def _augmenting(self) -> dict[str, Any]:
        """What a flow takes from this generator: its split, layout and augmentation.

        The transform reads the generator's settings and statistics when a
        batch is made (`augmentation()`, frozen per batch), so `fit` after
        `flow(...)` counts, as in Keras.
        """
        augmentation = self.augmentation
        return {
            "validation_split": self._validation_split,
            "transform": lambda x, rng: augmentation()(x, rng),
            "data_format": self.data_format,
            "dtype": self.dtype,
        }
