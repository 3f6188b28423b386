"""The base of sources over `n` rows that can be read in any order.

NOTE [ Indexed sources ]
Arrays in memory, image folders, images listed in a table and Keras' flows
all know their number of rows and can read any of them: an `IndexedSource`
says how many (`n`) and how to read some (`load(rows)`); this base gives the
order, the shard, the batch count, the resume and the transform:

    order(epoch)   epoch_permutation(n, seed, epoch) or 0..n-1, positions rank::world_size
    batch b        rows = order[b * batch_size : (b + 1) * batch_size]
                   batch = load(rows)                     (read one batch ahead)
                   x = transform(batch[0], batch_rng(epoch, b))   when there is a transform
                   finish(batch, rows, epoch, b)          (dtype, layout, targets of x)

The transform of batch `b` draws from `np.random.default_rng((seed, epoch,
b[, rank]))`, so any epoch and any position in it can be recomputed: resume
is skip. `flow()` is arrays plus the generator's transform, and
`flow_from_directory()` is an image folder plus that transform.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np

from batchfit.data._base import Batch, Source, check_batch_size, draw_seed
from batchfit.data._order import epoch_permutation

__all__ = ["BatchTransform", "IndexedSource", "check_batch_size"]

#: `transform(x, rng) -> x`: changes a batch of inputs (it may do so in place:
#: `load` hands it rows the source owns), drawing randomness only from `rng`.
BatchTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]
Rows = slice | np.ndarray


class IndexedSource(Source):
    """Batches of `n` rows read by position (see NOTE [ Indexed sources ]).

    Subclasses call `__init__`, implement `load(rows)`, and may override
    `start_load` (to read ahead in threads) and `finish` (after the transform).
    """

    shardable = True
    batch_size: int
    #: natural order unsharded gives `load` slices (views of arrays, no copy)
    rows_as_slices = False

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int | None,
        drop_remainder: bool = False,
        transform: BatchTransform | None = None,
    ) -> None:
        super().__init__()
        self.n = int(n)
        self.batch_size = check_batch_size(batch_size)
        self.shuffle = bool(shuffle)
        # the transform draws from the seed too, so it is drawn even without shuffling
        self.seed = int(draw_seed() if seed is None else seed)
        self.drop_remainder = bool(drop_remainder)
        self.transform = transform

    # -- what subclasses provide --------------------------------------------------------
    def load(self, rows: Rows) -> Batch:
        """The batch of `rows` (positions in `0..n-1`) before the transform, x first."""
        raise NotImplementedError

    def start_load(self, rows: Rows) -> Callable[[], Batch]:
        """Begin reading `rows`; the returned function gives their batch (by default, lazily)."""
        return partial(self.load, rows)

    def finish(self, batch: Batch, rows: Rows, epoch: int, index: int) -> Batch:
        """The batch as yielded, after the transform of its inputs."""
        del rows, epoch, index
        return batch

    # -- order, count, batches ------------------------------------------------------------
    def order(self, epoch: int) -> np.ndarray | None:
        """This rank's positions in `epoch`'s order; None for the natural order as slices."""
        if self.rows_as_slices and not self.shuffle and self.world_size == 1:
            return None
        order = epoch_permutation(self.n, self.seed, epoch) if self.shuffle else np.arange(self.n)
        return order[self.rank :: self.world_size] if self.world_size > 1 else order

    def _rows_of(self, order: np.ndarray | None, index: int) -> Rows:
        start = index * self.batch_size
        stop = start + self.batch_size
        return slice(start, min(stop, self.n)) if order is None else order[start:stop]

    def _num_batches(self) -> int:
        rows = len(range(self.rank, self.n, self.world_size))
        if self.drop_remainder:
            return rows // self.batch_size
        return -(-rows // self.batch_size)

    def __len__(self) -> int:
        return self._num_batches()

    def batch_rng(self, epoch: int, index: int) -> np.random.Generator:
        """The generator of batch `index`'s transform: a pure function of the position."""
        key = (self.seed, epoch, index)
        return np.random.default_rng(key if self.world_size == 1 else (*key, self.rank))

    def _batch(self, batch: Batch, rows: Rows, epoch: int, index: int) -> Batch:
        if self.transform is not None and len(batch[0]):
            batch = (self.transform(batch[0], self.batch_rng(epoch, index)), *batch[1:])
        return self.finish(batch, rows, epoch, index)

    def batch_at(self, index: int, epoch: int | None = None) -> Batch:
        """Batch `index` of `epoch` (default: the current one), computed on its own."""
        epoch = self.epoch if epoch is None else epoch
        rows = self._rows_of(self.order(epoch), index)
        return self._batch(self.load(rows), rows, epoch, index)

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        order = self.order(epoch)
        count = self._num_batches()

        def start(index: int) -> tuple[Callable[[], Batch], Rows] | None:
            if index >= count:
                return None
            rows = self._rows_of(order, index)
            return self.start_load(rows), rows

        pending = start(skip_batches)
        for index in range(skip_batches, count):
            assert pending is not None  # started for every index < count
            loaded, rows = pending
            batch = loaded()  # this batch's reads end before the next batch's begin
            # Read one batch ahead: image decoding runs while the step does.
            pending = start(index + 1)
            yield self._batch(batch, rows, epoch, index)

    # -- contract -----------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))
