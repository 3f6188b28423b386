"""The contract every batch source honours.

NOTE [ The source contract ]
A source is an iterable of batches. Iterating it runs one epoch, from the
position it was left at (the start of the epoch unless `load_state_dict` says
otherwise). A batch is a tuple `(x, y)` or `(x, y, sample_weight)`; a source
without targets yields `(x,)`. `x` is a NumPy array (float32 for tabular data,
`(N, H, W, C)` for images) or a dict of named arrays; `y` and `sample_weight`
are NumPy arrays with the same first dimension.

The order of samples is a pure function of `(seed, epoch, rank, world_size)`,
so a resumed run recomputes the order and skips what it already consumed.
`set_epoch(e)` chooses the epoch; the engine calls it before each epoch.
`state_dict()` is small (counters and seeds, never data) and JSON-friendly.
`stats` holds counters for the history (rows read, rows skipped as malformed
or non-finite); file sources reset it when an epoch starts. `close()` ends
any background thread; a consumer that stops early needs no `close()`, since
dropping or closing its iterator ends the epoch's thread.
`shard(rank, world_size)` gives a source over a disjoint part of the data
(all ranks together read it once); `replayable` says whether every pass on
every rank yields the same batches.

Three bases implement the contract, and `tests/data/contract.py` checks
every source built on them:
- `IndexedSource` (`_indexed.py`, NOTE [ Indexed sources ]): `n` rows read by
  position plus an optional transform: arrays, image folders, flows;
- `StreamSource` (`_stream.py`, NOTE [ The streaming pipeline ]): units read
  in order through a shuffle buffer: csv, parquet, npy, frames;
- `SourceWrapper` (`_wrapper.py`, NOTE [ Wrapping a source ]): a source made
  from another, whose position, state and shard are the inner source's.
Order and sharding of all of them: NOTE [ Order and sharding ] in `_order.py`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._order import check_shard

if TYPE_CHECKING:
    from typing_extensions import Self

Batch = tuple[Any, ...]

__all__ = ["Batch", "Source", "as_float32", "check_batch_size", "draw_seed", "num_batches"]


class Source:
    """Base class of batch sources (see NOTE [ The source contract ]).

    Subclasses implement `_iter_epoch(epoch, skip_batches)` and, when the
    number of batches is cheap to know, `_num_batches()`. A source that can
    shard sets `shardable = True` and reads `self.rank`/`self.world_size`;
    `shard` copies it and calls `_on_shard()` on the copy (NOTE [ Order and
    sharding ] in `_order.py` lists the ways sources split their data).
    """

    batch_size: int | None = None
    #: whether `shard` may copy this source onto a part of its data
    shardable: bool = False
    rank: int = 0
    world_size: int = 1

    def __init__(self) -> None:
        self._epoch = 0
        self._batches_done = 0
        # Counters the engine may copy into the history (e.g. rows skipped as
        # malformed); file sources reset them at the start of each epoch.
        self.stats: dict[str, int] = {}

    # -- what subclasses provide -------------------------------------------------
    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        """Yield the batches of `epoch`, skipping the first `skip_batches`."""
        raise NotImplementedError

    def _num_batches(self) -> int | None:
        return None

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        del state

    # -- public contract ------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        epoch, skip = self._epoch, self._batches_done
        batches = self._iter_epoch(epoch, skip)
        try:
            for batch in batches:
                self._batches_done += 1
                yield batch
        finally:
            # A consumer that stops early must not leave a prefetch thread behind:
            # close the inner generator now rather than whenever it is collected.
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        self._batches_done = 0

    def rewind(self) -> None:
        """Go back to the start of the current epoch (evaluate/predict read from the top)."""
        self._batches_done = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch the next iteration runs (its shuffle order)."""
        if epoch != self._epoch:
            self._epoch = int(epoch)
            self._batches_done = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    def __len__(self) -> int:
        n = self._num_batches()
        if n is None:
            raise TypeError(f"{type(self).__name__} does not know its number of batches")
        return n

    @property
    def num_batches(self) -> int | None:
        """Batches in one epoch, or None when unknown without reading the data."""
        return self._num_batches()

    def state_dict(self) -> dict[str, Any]:
        """The exact position in the epoch: `{"epoch", "batches_done", ...}`."""
        return {"epoch": self._epoch, "batches_done": self._batches_done, **self._extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by `state_dict`; the next iteration resumes there."""
        self._epoch = int(state["epoch"])
        self._batches_done = int(state["batches_done"])
        self._load_extra_state(state)

    @property
    def replayable(self) -> bool:
        """Whether every pass, on every rank, yields the same batches in the same order.

        True for files, arrays and data made by a function; False for a one-shot
        iterator or a user's own loader, whose data may differ between ranks.
        """
        return self.shardable or type(self).shard is not Source.shard

    def shard(self, rank: int, world_size: int) -> Self:
        """A source over a disjoint part of the data; all ranks together cover it once.

        The shard starts at the beginning of the current epoch, with its own
        counters and threads; the data and settings (seed included) are shared.

        Raises:
            NotImplementedError: the source cannot be sharded (e.g. a user's loader).
            ValueError: `rank` is not in `[0, world_size)`, or the data is a
                one-shot iterator that shards cannot share.
        """
        if not self.shardable:
            raise NotImplementedError(f"{type(self).__name__} cannot be sharded")
        check_shard(rank, world_size)
        self._check_can_shard()
        clone = copy.copy(self)
        clone.rank, clone.world_size = int(rank), int(world_size)
        clone._batches_done, clone.stats = 0, {}
        clone._on_shard()
        return clone

    def _check_can_shard(self) -> None:
        """Raise ValueError when this source's data cannot be split (a one-shot iterator)."""

    def _on_shard(self) -> None:
        """On a new shard: drop what the original's iterations own; redo what the shard changes."""

    def fingerprint(self) -> dict[str, Any] | None:
        """What identifies the data read, for a resume to check (NOTE [ Data fingerprints ]).

        None: this source cannot be checked (a generator, a user's iterable).
        """
        return None

    def close(self) -> None:
        """Release threads and files; iterating again reopens them."""


def num_batches(source: Any) -> int | None:
    """Batches per epoch of any iterable, or None when it cannot say cheaply."""
    n = getattr(source, "num_batches", None)
    if isinstance(n, int):
        return n
    try:
        return len(source)
    except TypeError:
        return None


def check_batch_size(batch_size: Any) -> int:
    """`batch_size` as an int, refusing anything but a positive integer."""
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def as_float32(a: Any, what: str) -> np.ndarray:
    """`a` as a float32 array, refusing object/string data with a clear error."""
    arr = np.asarray(a)
    if arr.dtype == np.float32:
        return arr
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32)


def draw_seed() -> int:
    """A seed from torch's global generator, so `torch.manual_seed` fixes it."""
    import torch

    return int(torch.randint(0, 2**62, ()).item())
