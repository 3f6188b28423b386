"""`ImageDataGenerator.flow`: augmented in-memory images as a finite, resumable source."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from batchfit.data._arrays import epoch_permutation, to_array
from batchfit.data._base import Batch, Source, draw_seed
from batchfit.preprocessing._fitting import check_images

__all__ = ["ArrayFlow", "KerasIteratorMixin"]


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

    def on_epoch_end(self) -> None:
        """Keras' hook: the next iteration starts the following epoch."""
        source: Any = self
        source.set_epoch(source.epoch + 1)

    def reset(self) -> None:
        """Restart the current epoch from its first batch."""
        source: Any = self
        self._next_iter = None
        source._batches_done = 0


class ArrayFlow(KerasIteratorMixin, Source):
    """Batches of augmented, standardised images from arrays (`ImageDataGenerator.flow`).

    Order is `epoch_permutation(n, seed, epoch)`; the augmentation of batch
    `b` is drawn from `np.random.default_rng((seed, epoch, b))`, so any epoch
    and any position in it can be recomputed (resume = skip).
    """

    def __init__(
        self,
        generator: Any,
        x: Any,
        y: Any = None,
        *,
        sample_weight: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        save_to_dir: str | None = None,
        save_prefix: str = "",
        save_format: str = "png",
        ignore_class_split: bool = False,
        subset: str | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
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
        check_images(images, generator.data_format, "flow()")
        y = to_array(y, "y")
        sample_weight = to_array(sample_weight, "sample_weight")
        n = len(images)
        for name, arr in [("y", y), ("sample_weight", sample_weight)] + [
            (f"x[1][{i}]", a) for i, a in enumerate(extra)
        ]:
            if arr is not None and len(arr) != n:
                raise ValueError(f"flow(): x has {n} images but {name} has {len(arr)} rows")
        if subset is not None:
            split = generator._validation_split
            if subset not in ("training", "validation"):
                raise ValueError(f'subset must be "training" or "validation", got {subset!r}')
            if not split:
                raise ValueError("subset needs an ImageDataGenerator with validation_split set")
            # Keras: the first validation_split of the rows are the validation set.
            cut = int(n * split)
            part = slice(None, cut) if subset == "validation" else slice(cut, None)
            if y is not None and not ignore_class_split:
                _check_class_split(y, cut)
            images = images[part]
            y = None if y is None else y[part]
            sample_weight = None if sample_weight is None else sample_weight[part]
            extra = [a[part] for a in extra]
        if len(images) == 0:
            raise ValueError("flow() got no images (x is empty, or the subset is)")
        self.generator = generator
        self.x, self.y, self.sample_weight, self.extra = images, y, sample_weight, extra
        self.n = len(images)
        self.batch_size = int(batch_size)
        self._rows_per_batch = int(batch_size)  # typed int, unlike the base attribute
        self.shuffle = bool(shuffle)
        self.seed = int(draw_seed() if seed is None else seed)
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = int(rank), int(world_size)
        self._kwargs: dict[str, Any] = dict(
            batch_size=batch_size,
            shuffle=shuffle,
            seed=self.seed,
            save_to_dir=save_to_dir,
            save_prefix=save_prefix,
            save_format=save_format,
        )

    def _order(self, epoch: int) -> np.ndarray:
        order = epoch_permutation(self.n, self.seed, epoch) if self.shuffle else np.arange(self.n)
        return order[self.rank :: self.world_size] if self.world_size > 1 else order

    def _num_batches(self) -> int:
        rows = len(range(self.rank, self.n, self.world_size))
        return -(-rows // self._rows_per_batch)

    def __len__(self) -> int:
        return self._num_batches()

    def _batch(self, order: np.ndarray, epoch: int, index: int) -> Batch:
        self.generator._check_fitted()
        rows = order[index * self._rows_per_batch : (index + 1) * self._rows_per_batch]
        key = (
            (self.seed, epoch, index)
            if self.world_size == 1
            else (self.seed, epoch, index, self.rank)
        )
        images = self.generator._to_last(self.x[rows]).astype(self.generator.dtype, copy=False)
        out = self.generator._from_last(
            self.generator._transform_owned(images, np.random.default_rng(key))
        )
        if self.save_to_dir:
            _save_images(
                out,
                self.generator,
                self.save_to_dir,
                self.save_prefix,
                self.save_format,
                epoch,
                index,
            )
        x: Any = [out, *(a[rows] for a in self.extra)] if self.extra else out
        parts = [x]
        if self.y is not None:
            parts.append(self.y[rows])
        if self.sample_weight is not None:
            if self.y is None:
                raise ValueError("flow(): sample_weight needs y")
            parts.append(self.sample_weight[rows])
        return tuple(parts)

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        order = self._order(epoch)
        for index in range(skip_batches, self._num_batches()):
            yield self._batch(order, epoch, index)

    def __getitem__(self, index: int) -> Batch:
        """Batch `index` of the current epoch (Keras' `Sequence` access)."""
        count = self._num_batches()
        if not -count <= index < count:
            raise IndexError(f"batch index {index} out of range for {count} batches")
        return self._batch(self._order(self.epoch), self.epoch, index % count)

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))
        self._next_iter = None

    def shard(self, rank: int, world_size: int) -> ArrayFlow:
        x = (self.x, self.extra) if self.extra else self.x
        kwargs = {**self._kwargs, "seed": self.seed}
        return ArrayFlow(
            self.generator,
            x,
            self.y,
            sample_weight=self.sample_weight,
            rank=rank,
            world_size=world_size,
            **kwargs,
        )


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
    batch: np.ndarray, gen: Any, directory: str, prefix: str, fmt: str, epoch: int, index: int
) -> None:
    from PIL import Image

    os.makedirs(directory, exist_ok=True)
    last = gen._to_last(batch)
    for i, img in enumerate(last):
        lo, hi = float(img.min()), float(img.max())
        scaled = (img - lo) / (hi - lo if hi > lo else 1.0) * 255.0
        arr = scaled.astype(np.uint8)
        pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
        pil.save(os.path.join(directory, f"{prefix}_{epoch}_{index}_{i}.{fmt}"))
