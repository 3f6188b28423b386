"""Keras' `PyDataset` (Keras 2's `Sequence`): batches by index, as a batch source.

NOTE [ PyDataset as a source ]
A user's `PyDataset` says how many batches there are (`__len__`, or
`num_batches`, None when endless) and returns batch `i` from `__getitem__(i)`.
`PyDatasetSource` puts it behind the source contract:

    order(epoch)   epoch_permutation(num_batches, seed, epoch) when fit shuffles
                   (Keras 3 shuffles the batch order of a finite PyDataset each
                   epoch when `fit(shuffle=True)`, its default), else 0..n-1;
                   rank r of a torchrun job takes positions r::world_size
    batch b        dataset[order[b]], checked to be x, (x, y), (x, y, w) or a dict
    epoch hooks    on_epoch_begin() before the first batch, on_epoch_end() after
                   the last one of a finite epoch (Keras calls both for fit,
                   evaluate and predict)

Resume is skip: the order is recomputed from `(seed, epoch)` and the batches
already trained are not fetched again. That is exact when batch `i` depends
only on `i` (and on what `on_epoch_end` did, which a new process redoes only
from the epoch's start).

`workers > 1` fetches that many batches at once in threads, at most
`max_queue_size` ahead, and yields them in order. `use_multiprocessing=True`
uses the same threads: batches stay in one process (no pickling of the
dataset), which suits NumPy and Pillow work that releases the GIL.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from batchfit.data._base import Batch, Source, draw_seed
from batchfit.data._order import epoch_permutation

__all__ = ["PyDataset", "PyDatasetSource", "Sequence", "standardize_batch"]


class PyDataset:
    """Base class of datasets that return batch `index` from `__getitem__` (Keras' `PyDataset`).

    Subclass it, call `super().__init__(**kwargs)`, implement `__len__` (the
    number of batches) and `__getitem__(index)` returning `x`, `(x, y)` or
    `(x, y, sample_weight)`; optionally `on_epoch_end()` (e.g. to reshuffle
    your own index). An endless dataset implements `num_batches` returning None.

    Args:
        workers: batches fetched in parallel threads (1: fetched in the loop).
        use_multiprocessing: accepted for Keras code; threads are used either way.
        max_queue_size: batches fetched ahead at most when `workers > 1`.

    Example:
        >>> class Squares(PyDataset):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...     def __len__(self):
        ...         return 3
        ...     def __getitem__(self, index):
        ...         x = np.full((4, 1), index, "float32")
        ...         return x, x**2
        >>> model.fit(Squares(workers=2), epochs=2)
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        if not hasattr(self, "_workers"):
            warnings.warn(
                f"{type(self).__name__} should call `super().__init__(**kwargs)` in its "
                "constructor (workers, use_multiprocessing and max_queue_size go there)",
                stacklevel=3,
            )
            self._workers, self._use_multiprocessing, self._max_queue_size = 1, False, 10

    @property
    def workers(self) -> int:
        return int(getattr(self, "_workers", 1))

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        return bool(getattr(self, "_use_multiprocessing", False))

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        return int(getattr(self, "_max_queue_size", 10))

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """Batch `index`: `x`, `(x, y)`, `(x, y, sample_weight)` or a dict of inputs."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index)")

    @property
    def num_batches(self) -> int | None:
        """Batches in one epoch (`len(self)`), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            f"{type(self).__name__} must implement __len__ or the num_batches property "
            "(None for an endless dataset)"
        )

    def __iter__(self) -> Iterator[Any]:
        count = self.num_batches
        for index in itertools.count() if count is None else range(count):
            yield self[index]

    def on_epoch_begin(self) -> None:
        """Called before the first batch of every epoch."""

    def on_epoch_end(self) -> None:
        """Called after the last batch of every epoch."""


#: Keras 2's name for the same class
Sequence = PyDataset


def standardize_batch(batch: Any, where: str) -> Batch:
    """A batch returned by `__getitem__` as a tuple, or a clear error naming `where`."""
    if isinstance(batch, (Mapping, np.ndarray)) or hasattr(batch, "dim"):
        return (batch,)
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple) or not 1 <= len(batch) <= 3:
        got = f"a tuple of {len(batch)} parts" if isinstance(batch, tuple) else type(batch).__name__
        raise ValueError(
            f"{where} returned {got}; expected a tuple (x,), (x, y) or (x, y, sample_weight), "
            "an array or a dict of inputs"
        )
    return batch


class PyDatasetSource(Source):
    """A `PyDataset` (or any object with `__len__`/`__getitem__`) as a batch source.

    See NOTE [ PyDataset as a source ]. `shuffle` shuffles the batch order each
    epoch, from `seed` (drawn from torch's generator when None).
    """

    shardable = True

    def __init__(self, dataset: Any, *, shuffle: bool = False, seed: int | None = None) -> None:
        super().__init__()
        if isinstance(dataset, PyDataset):
            dataset._warn_if_super_not_called()
        self.dataset = dataset
        self.batch_size = getattr(dataset, "batch_size", None)
        count = self._dataset_batches()
        if shuffle and count is None:
            warnings.warn(
                "`shuffle=True` was passed, but will be ignored since the data `x` was "
                "provided as an infinite PyDataset. The PyDataset is expected to already "
                "be shuffled.",
                stacklevel=4,
            )
        self.shuffle = bool(shuffle) and count is not None
        self.seed = int(draw_seed() if seed is None and self.shuffle else (seed or 0))
        self.workers = max(1, int(getattr(dataset, "workers", 1) or 1))
        self.max_queue_size = max(1, int(getattr(dataset, "max_queue_size", 10) or 1))

    def _dataset_batches(self) -> int | None:
        count = getattr(self.dataset, "num_batches", None)
        if count is None and not isinstance(self.dataset, PyDataset):
            count = len(self.dataset)
        if count is not None and (not isinstance(count, (int, np.integer)) or count < 0):
            raise ValueError(
                f"{type(self.dataset).__name__}.__len__ returned {count!r}; "
                "expected a number of batches >= 0"
            )
        return None if count is None else int(count)

    def order(self, epoch: int) -> np.ndarray | None:
        """This rank's batch indices in `epoch`, None for an endless dataset."""
        count = self._dataset_batches()
        if count is None:
            return None
        order = epoch_permutation(count, self.seed, epoch) if self.shuffle else np.arange(count)
        return order[self.rank :: self.world_size]

    def _num_batches(self) -> int | None:
        order = self.order(self._epoch)
        return None if order is None else len(order)

    def _indices(self, epoch: int, skip: int) -> Iterator[int]:
        order = self.order(epoch)
        if order is None:  # endless: every world_size-th index
            return itertools.count(self.rank + skip * self.world_size, self.world_size)
        return (int(i) for i in order[skip:])

    def _fetch(self, index: int) -> Batch:
        return standardize_batch(
            self.dataset[index], f"{type(self.dataset).__name__}.__getitem__({index})"
        )

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        begin = getattr(self.dataset, "on_epoch_begin", None)
        if callable(begin):
            begin()
        indices = self._indices(epoch, skip_batches)
        if self.workers == 1:
            for index in indices:
                yield self._fetch(index)
        else:
            yield from self._threaded(indices)
        end = getattr(self.dataset, "on_epoch_end", None)
        if callable(end):
            end()

    def _threaded(self, indices: Iterator[int]) -> Iterator[Batch]:
        """`workers` threads fetch batches, at most `max_queue_size` ahead, yielded in order."""
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="batchfit-pydataset")
        pending: list[Future[Batch]] = []
        try:
            for index in itertools.islice(indices, self.max_queue_size):
                pending.append(pool.submit(self._fetch, index))
            while pending:
                batch = pending.pop(0).result()
                for index in itertools.islice(indices, 1):
                    pending.append(pool.submit(self._fetch, index))
                yield batch
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))
