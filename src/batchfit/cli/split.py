"""The command's own sources: one side of a row-hash split, and a tap on its targets.

NOTE [ Validation split of a stream ]
Keras' `validation_split` takes the last fraction of in-memory arrays; a
stream has no "last fraction" until it has been read. The command instead
sends each row to validation when a hash of its values (features and target,
as float32 bits) falls below the fraction. The split is deterministic, does
not depend on file order, block boundaries, batch size or shuffling, needs no
extra pass, and puts duplicate rows on the same side (no leakage through
copies). Both sides read every file each epoch; the cost is parsing twice,
which is small next to training. `--validation-data FILES` uses separate
files instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from batchfit.data import Source, SourceWrapper
from batchfit.data._base import Batch

__all__ = ["RowSplit", "TargetTap", "row_hash_unit", "this_rank"]


_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT33 = np.uint64(33)
_SHIFT11 = np.uint64(11)


def row_hash_unit(*parts: np.ndarray, salt: int = 0) -> np.ndarray:
    """One number in [0, 1) per row, a hash of the rows' float32 bits (NOTE above)."""
    columns = [np.asarray(p, np.float32).reshape(len(p), -1) for p in parts]
    bits = np.ascontiguousarray(np.concatenate(columns, axis=1)).view(np.uint32)
    h = np.full(bits.shape[0], np.uint64(0xCBF29CE484222325 ^ (salt & 0xFFFF)), np.uint64)
    for j in range(bits.shape[1]):
        h ^= bits[:, j].astype(np.uint64)
        h *= _PRIME  # wraps modulo 2**64, as a hash should
    h ^= h >> _SHIFT33
    h *= _MIX1
    h ^= h >> _SHIFT33
    h *= _MIX2
    h ^= h >> _SHIFT33
    return (h >> _SHIFT11).astype(np.float64) * (1.0 / (1 << 53))


class RowSplit(SourceWrapper):
    """One side of a row-hash split of a source, counting the rows it yields.

    Each inner batch becomes one (smaller) batch of the rows on this side;
    a batch left empty is skipped. Position, state and shards are the inner
    source's (NOTE [ Wrapping a source ] in `batchfit/data/_wrapper.py`), so
    the split resumes exactly where the inner source does. With `fraction=0`
    it passes batches through and only counts rows. Under torchrun the command
    shards the split itself (the hash picks rows wherever they land), so the
    counts are this rank's and the command adds them across ranks.

    Args:
        inner: a batch source yielding `(x, y)` or `(x,)`.
        fraction: share of rows sent to validation, in [0, 1).
        side: 'train' keeps the other rows, 'validation' these.
    """

    def __init__(
        self, inner: Source, fraction: float = 0.0, side: str = "train", *, keyed: bool = False
    ) -> None:
        if side not in ("train", "validation"):
            raise ValueError(f"side must be 'train' or 'validation', got {side!r}")
        super().__init__(inner)
        self.fraction, self.side, self.keyed = float(fraction), side, keyed
        self.rows_this_epoch = 0
        self.rows_last_epoch: int | None = None

    def _keep(self, batch: tuple[Any, ...]) -> tuple[Any, ...]:
        key = None
        if self.keyed:  # a raw table's source hashes each row's cells (`TableRows`)
            batch, key = batch[:-1], batch[-1]
        if not self.fraction:
            return batch
        mask = (key if key is not None else row_hash_unit(*batch)) < self.fraction
        if self.side == "train":
            mask = ~mask
        return tuple(part[mask] for part in batch)

    def wrap_epoch(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        self.rows_this_epoch = 0
        for batch in batches:
            kept = self._keep(batch)
            rows = len(kept[0])
            if rows:
                self.rows_this_epoch += rows
                yield kept
        self.rows_last_epoch = self.rows_this_epoch

    def _num_batches(self) -> int | None:
        return self.inner.num_batches if not self.fraction else None

    def rewrap(self, inner: Source) -> RowSplit:
        return RowSplit(inner, self.fraction, self.side, keyed=self.keyed)


class TargetTap(SourceWrapper):
    """A split's batches passed through, their targets' moments added to `sink`.

    Its shards share `sink` (the shallow copy of `rewrap`), so
    `Normalization.adapt`, which shards a source under torchrun, fills it with
    this rank's part.
    """

    def __init__(self, inner: RowSplit, sink: dict[str, Any]) -> None:
        super().__init__(inner)
        self.sink = sink

    def wrap_epoch(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        from batchfit.transforms import Moments

        for batch in batches:
            y = np.asarray(batch[1], np.float64).reshape(len(batch[1]), -1)
            self.sink.setdefault("y", Moments.empty(y.shape[1])).update(y)
            yield batch


def this_rank(split: RowSplit) -> RowSplit:
    """This rank's shard of a split under torchrun (the split itself in one process)."""
    from batchfit import distributed

    if not distributed.is_distributed():
        return split
    return split.shard(distributed.rank(), distributed.world_size())
