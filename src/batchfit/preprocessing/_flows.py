"""`ImageDataGenerator.flow`: augmented in-memory images as a finite, resumable source."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from batchfit import distributed
from batchfit.data import IndexedSource
from batchfit.data._arrays import to_array
from batchfit.data._base import Batch, check_batch_size
from batchfit.data._images import ImageFolderSource
from batchfit.data._indexed import BatchTransform
from batchfit.preprocessing._fitting import check_images
from batchfit.transforms._image import from_last, to_last

__all__ = ["ArrayFlow", "DirectoryIterator", "KerasIteratorMixin"]


class KerasIteratorMixin:
    """Keras' iterator surface on a source: `next()` runs on across epochs like Keras'.

    A `for` loop runs one epoch (the source contract); `next(flow)` keeps
    Keras' endless behaviour by moving to the next epoch when one ends.
    """

    _next_iter: Iterator[Batch] | None = None

    def __next__(self) -> Any:
        source: Any = self
        for _ in range(2):
            if self._next_iter is None:
                self._next_iter = iter(source)
            try:
                return next(self._next_iter)
            except StopIteration:
                self._next_iter = None
                source.set_epoch(source.epoch + 1)
        raise RuntimeError("the flow has no batches")

    def next(self) -> Any:
        """Keras' `iterator.next()`: the next batch, moving on to the next epoch at the end."""
        return self.__next__()

    def __getitem__(self, index: int) -> Batch:
        """Batch `index` of the current epoch (Keras' `Sequence` access)."""
        source: Any = self
        count = source._num_batches()
        if not -count <= index < count:
            raise IndexError(f"batch index {index} out of range for {count} batches")
        return source.batch_at(index % count)

    def on_epoch_end(self) -> None:
        """Keras' hook: the next iteration starts the following epoch."""
        source: Any = self
        source.set_epoch(source.epoch + 1)

    def reset(self) -> None:
        """Restart the current epoch from its first batch."""
        source: Any = self
        self._next_iter = None
        source.rewind()


class ArrayFlow(KerasIteratorMixin, IndexedSource):
    """Batches of augmented, standardised images from arrays (`ImageDataGenerator.flow`).

    Arrays plus a transform: an `IndexedSource` (NOTE [ Indexed sources ])
    whose order is `epoch_permutation(n, seed, epoch)` and whose batch `b`
    is augmented with `np.random.default_rng((seed, epoch, b))`, so any epoch
    and any position in it can be recomputed (resume = skip).

    Args:
        x: images `(N, H, W, C)` in `data_format`, or `(images, extra)` whose
            extra arrays pass through unchanged.
        y: per-image targets, or None.
        transform: the augmentation, on channels-last batches of `dtype`.
        data_format, dtype, validation_split: the generator's settings.
        **flow_arguments: every other argument of `ImageDataGenerator.flow`,
            whose signature is their one declaration (and their defaults').
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        *,
        transform: BatchTransform | None,
        data_format: str,
        dtype: Any,
        validation_split: float,
        **flow_arguments: Any,
    ) -> None:
        args = flow_arguments
        sample_weight, subset, batch_size = (
            args["sample_weight"],
            args["subset"],
            args["batch_size"],
        )
        check_batch_size(batch_size)
        extra: list[Any] = []
        if isinstance(x, tuple):
            if len(x) != 2:
                raise ValueError("x given as a tuple must be (images, extra_inputs)")
            images, rest = x
            extra = list(rest) if isinstance(rest, list) else [rest]
            extra = [to_array(a, "x[1]") for a in extra]
        else:
            images = x
        images = np.asarray(images.numpy() if hasattr(images, "numpy") else images)
        check_images(images, data_format, "flow()")
        y = to_array(y, "y")
        sample_weight = to_array(sample_weight, "sample_weight")
        n = len(images)
        for name, arr in [("y", y), ("sample_weight", sample_weight)] + [
            (f"x[1][{i}]", a) for i, a in enumerate(extra)
        ]:
            if arr is not None and len(arr) != n:
                raise ValueError(f"flow(): x has {n} images but {name} has {len(arr)} rows")
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f'subset must be "training" or "validation", got {subset!r}')
            if not validation_split:
                raise ValueError("subset needs an ImageDataGenerator with validation_split set")
            # Keras: the first validation_split of the rows are the validation set.
            cut = int(n * validation_split)
            part = slice(None, cut) if subset == "validation" else slice(cut, None)
            if y is not None and not args["ignore_class_split"]:
                _check_class_split(y, cut)
            images = images[part]
            y = None if y is None else y[part]
            sample_weight = None if sample_weight is None else sample_weight[part]
            extra = [a[part] for a in extra]
        if len(images) == 0:
            raise ValueError("flow() got no images (x is empty, or the subset is)")
        super().__init__(
            len(images),
            batch_size=batch_size,
            shuffle=args["shuffle"],
            seed=args["seed"],
            transform=transform,
        )
        self.x, self.y, self.sample_weight, self.extra = images, y, sample_weight, extra
        self.data_format, self.dtype = data_format, np.dtype(dtype)
        self.save_to_dir = args["save_to_dir"]
        self.save_prefix, self.save_format = args["save_prefix"], args["save_format"]

    def load(self, rows: Any) -> Batch:
        """Channels-last images of `dtype` (a copy the transform may change), then y and w."""
        images = to_last(self.data_format, self.x[rows]).astype(self.dtype, copy=False)
        parts = [images]
        if self.y is not None:
            parts.append(self.y[rows])
        if self.sample_weight is not None:
            if self.y is None:
                raise ValueError("flow(): sample_weight needs y")
            parts.append(self.sample_weight[rows])
        return tuple(parts)

    def finish(self, batch: Batch, rows: Any, epoch: int, index: int) -> Batch:
        out = from_last(self.data_format, batch[0])
        if self.save_to_dir:
            _save_images(
                to_last(self.data_format, out),
                self.save_to_dir,
                self.save_prefix,
                self.save_format,
                epoch,
                index,
            )
        x: Any = [out, *(a[rows] for a in self.extra)] if self.extra else out
        if len(batch) == 1:
            return x  # Keras: flow(x) yields the images alone
        return (x, *batch[1:])

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self._next_iter = None

    def _on_shard(self) -> None:
        self._next_iter = None


class DirectoryIterator(KerasIteratorMixin, ImageFolderSource):
    """`flow_from_directory`'s batches with Keras' iterator surface: `it[i]`, `it.next()`,
    `len(it)`, `samples`, `filenames`, and its "Found N images belonging to K classes." line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if distributed.is_main():
            print(f"Found {self.samples} images belonging to {self.num_classes} classes.")

    @property
    def samples(self) -> int:
        """Number of images (Keras' attribute)."""
        return len(self.filepaths)

    @property
    def filenames(self) -> list[str]:
        """Each image's path relative to the directory, as Keras lists them."""
        return [os.path.relpath(p, self.directory) for p in self.filepaths]


def _check_class_split(y: np.ndarray, cut: int) -> None:
    labels = np.asarray(y)
    if labels.ndim != 1:
        labels = labels.reshape(len(labels), -1).argmax(axis=1) if labels.ndim > 1 else labels
    if not np.array_equal(np.unique(labels[:cut]), np.unique(labels[cut:])):
        raise ValueError(
            "training and validation subsets have different classes after the split; "
            "pass ignore_class_split=True if that is intended (Keras' check)"
        )


def _save_images(
    last: np.ndarray, directory: str, prefix: str, fmt: str, epoch: int, index: int
) -> None:
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    for i, img in enumerate(last):
        lo, hi = float(img.min()), float(img.max())
        scaled = (img - lo) / (hi - lo if hi > lo else 1.0) * 255.0
        arr = scaled.astype(np.uint8)
        pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        pil.save(os.path.join(directory, f"{prefix}_{epoch}_{index}_{i}.{fmt}"))
