"""Images listed in a table (file name and label columns): Keras' `flow_from_dataframe`.

The table is only the listing (one row per image); the pixels stream from
disk in batches exactly as for an image folder, since the source is an
`ImageFolderSource` whose listing and targets come from the table.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from batchfit.data._images import IMAGE_EXTENSIONS, ImageFolderSource

__all__ = ["ImageFrameSource"]

logger = logging.getLogger("batchfit.data")

_FRAME_CLASS_MODES = ("categorical", "binary", "sparse", "raw", "multi_output", "input", None)


class ImageFrameSource(ImageFolderSource):
    """Batches `(images, labels[, weights])` of the files a table lists.

    `class_mode` adds "raw" (the y_col values as float32 targets) and
    "multi_output" (a tuple with one target array per y_col column, for a model
    with several outputs) to the image-folder modes.

    Args:
        dataframe: a pandas or polars frame (anything with `columns` and
            `to_dict("list")` / `to_dict(as_series=False)` works).
        directory: joined before each file name; None when the names are paths.
        x_col: the column of file names.
        y_col: the label column (columns for "raw" and "multi_output"). With
            "categorical", a cell may hold a list of labels (multi-label,
            multi-hot targets).
        weight_col: a column of sample weights (batches become `(x, y, w)`).
        validate_filenames: drop rows whose file is missing or not an image,
            logging how many (Keras' behaviour); False trusts the table.
        **options: as `bf.data.images` (`target_size`, `class_mode`, `classes`,
            `batch_size`, `shuffle`, `seed`, `validation_split`, `subset`, ...).
    """

    def __init__(
        self,
        dataframe: Any,
        directory: str | os.PathLike[str] | None = None,
        *,
        x_col: str = "filename",
        y_col: str | Sequence[str] = "class",
        weight_col: str | None = None,
        class_mode: str | None = "categorical",
        validate_filenames: bool = True,
        **options: Any,
    ) -> None:
        columns = _columns(dataframe)
        wanted = [x_col, *([y_col] if isinstance(y_col, str) else list(y_col))]
        if class_mode in ("input", None):
            wanted = [x_col]
        if weight_col is not None:
            wanted.append(weight_col)
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise ValueError(f"dataframe has no column(s) {missing}; its columns are {columns}")
        if class_mode == "multi_output" and isinstance(y_col, str):
            raise ValueError(
                "class_mode='multi_output' needs y_col as a list, one column per output"
            )
        if class_mode in ("categorical", "binary", "sparse") and not isinstance(y_col, str):
            raise ValueError(f"y_col must be one column name for class_mode={class_mode!r}")
        self._table = {c: list(values) for c, values in _to_lists(dataframe, wanted).items()}
        self._x_col, self._y_col, self._weight_col = x_col, y_col, weight_col
        self._validate = bool(validate_filenames)
        self._raw: np.ndarray | None = None
        self._multi: list[list[int]] | None = None
        super().__init__(directory or "", class_mode=class_mode, **options)

    class_modes = _FRAME_CLASS_MODES

    @property
    def filenames(self) -> list[str]:
        """The x_col names of the images kept, in table order (Keras' attribute)."""
        return self._names

    def _where(self) -> str:
        return f"column {self._x_col!r} of the dataframe"

    def _list(
        self, classes: Sequence[str] | None, class_mode: str | None, follow_links: bool
    ) -> tuple[list[str], list[str], list[int]]:
        del follow_links
        table = self._table
        names = [str(v) for v in table[self._x_col]]
        paths = [os.path.join(self.directory, n) if self.directory else n for n in names]
        keep = list(range(len(paths)))
        if self._validate:
            keep = [i for i in keep if _is_image_file(paths[i])]
            if len(keep) < len(paths):
                dropped = next(p for p in paths if not _is_image_file(p))
                logger.warning(
                    "flow_from_dataframe: dropped %d of %d rows whose file is missing or not "
                    "an image, e.g. %r",
                    len(paths) - len(keep),
                    len(paths),
                    dropped,
                )
        labels: list[int] = [0] * len(keep)
        class_names: list[str] = []
        if class_mode in ("raw", "multi_output"):
            self._raw = self._raw_targets(keep, names)
        elif class_mode not in ("input", None):
            class_names, labels = self._class_targets(keep, classes, class_mode)
        if self._weight_col is not None:
            self.sample_weights = self._column_floats(self._weight_col, keep, names)
        self._names = [names[i] for i in keep]
        return class_names, [paths[i] for i in keep], labels

    def _column_floats(self, column: str, keep: list[int], names: list[str]) -> np.ndarray:
        try:
            values = np.asarray([self._table[column][i] for i in keep], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"column {column!r} must hold numbers: {err}") from None
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise ValueError(
                f"column {column!r} is missing or not finite in the row of {names[keep[bad[0]]]!r}"
            )
        return values.astype(np.float32)

    def _raw_targets(self, keep: list[int], names: list[str]) -> np.ndarray:
        columns = [self._y_col] if isinstance(self._y_col, str) else list(self._y_col)
        raw = np.stack([self._column_floats(c, keep, names) for c in columns], axis=1)
        return raw[:, 0] if isinstance(self._y_col, str) else raw

    def _class_targets(
        self, keep: list[int], classes: Sequence[str] | None, class_mode: str | None
    ) -> tuple[list[str], list[int]]:
        cells = [self._table[str(self._y_col)][i] for i in keep]
        multi = any(isinstance(c, (list, tuple)) for c in cells)
        if multi and class_mode != "categorical":
            raise ValueError(
                f"lists of labels in y_col need class_mode='categorical', got {class_mode!r}"
            )
        as_lists = [
            [str(v) for v in c] if isinstance(c, (list, tuple)) else [str(c)] for c in cells
        ]
        found = sorted({v for labels in as_lists for v in labels})
        class_names = [str(c) for c in classes] if classes is not None else found
        index = {name: i for i, name in enumerate(class_names)}
        unknown = sorted(set(found) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown} in y_col are not in classes {class_names}")
        if multi:
            self._multi = [[index[v] for v in labels] for labels in as_lists]
            return class_names, [0] * len(keep)
        return class_names, [index[labels[0]] for labels in as_lists]

    def _subset_rows(self, labels: list[int], split: float, subset: str) -> list[int]:
        """Keras' table split: the first `split` of the rows is validation, in table order."""
        cut = int(split * len(labels))
        return list(range(cut)) if subset == "validation" else list(range(cut, len(labels)))

    def _keep_rows(self, keep: list[int]) -> None:
        self._names = [self._names[i] for i in keep]
        if self._raw is not None:
            self._raw = self._raw[keep]
        if self._multi is not None:
            self._multi = [self._multi[i] for i in keep]
        if self.sample_weights is not None:
            self.sample_weights = self.sample_weights[keep]

    def _targets(self, rows: np.ndarray) -> Any:
        if self._raw is not None and self.class_mode == "multi_output":
            return tuple(self._raw[rows, j] for j in range(self._raw.shape[1]))
        if self._raw is not None:
            return self._raw[rows]
        if self._multi is not None:
            y = np.zeros((len(rows), self.num_classes), self.dtype)
            for i, r in enumerate(rows):
                y[i, self._multi[r]] = 1
            return y
        return super()._targets(rows)


def _is_image_file(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(path)


def _columns(frame: Any) -> list[str]:
    if not hasattr(frame, "columns"):
        raise TypeError(
            f"dataframe must be a pandas or polars DataFrame, got {type(frame).__name__}"
        )
    return [str(c) for c in frame.columns]


def _to_lists(frame: Any, columns: list[str]) -> dict[str, list[Any]]:
    selected = frame[columns] if not hasattr(frame, "select") else frame.select(columns)
    try:
        return selected.to_dict("list")  # pandas
    except TypeError:
        return selected.to_dict(as_series=False)  # polars
