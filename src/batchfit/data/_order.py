"""Sample order and sharding as pure functions of (seed, epoch, rank, world_size).

NOTE [ Order and sharding ]
Every source shards through `Source.shard` (one argument check,
`check_shard`; a copy; `_on_shard` on the copy). What a rank owns depends on
what the source knows about its data:
- indexed sources (arrays, image folders, flows: `IndexedSource`) know their
  `n` rows: each epoch's order is `epoch_permutation(n, seed, epoch)` (or the
  natural order) and rank `r` takes positions `r::world_size` of it;
- a file source cuts its data into *units* (CSV byte ranges, Parquet
  row-group slices, npy row blocks) that it can read independently. Which
  units a rank owns is fixed when it shards (`shard_rows` when row counts are
  known, `shard_units` when not), so the shard's size never changes between
  epochs. Each epoch visits the rank's units in the order `unit_order(...)`
  gives and passes the rows through a shuffle buffer seeded by `epoch_rng(...)`;
- a stream of unknown length (frames, a generator re-batching rows) keeps
  every `world_size`-th row (`_nodes.stripe_rows`), and a generator passing
  its items through keeps every `world_size`-th batch.
Nothing else is random, so a resumed run recomputes the order and skips what
it already consumed.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_shard",
    "epoch_permutation",
    "epoch_rng",
    "shard_rows",
    "shard_units",
    "unit_order",
]

# Distinct streams from one (seed, epoch, rank, world_size) tuple.
UNIT_ORDER_STREAM = 0
SHUFFLE_BUFFER_STREAM = 1


def epoch_rng(
    seed: int, epoch: int, rank: int, world_size: int, stream: int
) -> np.random.Generator:
    """A generator that depends only on its arguments (never on global state)."""
    return np.random.default_rng([int(seed), int(epoch), int(rank), int(world_size), stream])


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of `n` samples in `epoch`: a pure function of its arguments."""
    return np.random.default_rng((int(seed), int(epoch))).permutation(n)


def unit_order(
    n_units: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> np.ndarray:
    """Positions of a rank's units in the order `epoch` reads them."""
    if not shuffle:
        return np.arange(n_units)
    rng = epoch_rng(seed, epoch, rank, world_size, UNIT_ORDER_STREAM)
    return rng.permutation(n_units)


def shard_units(n_units: int, rank: int, world_size: int) -> list[int]:
    """Round-robin unit indices of `rank`: disjoint, and together complete."""
    return list(range(rank, n_units, world_size))


def shard_rows(total_rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous row range `[start, stop)` of `rank`; sizes differ by at most one."""
    base, extra = divmod(total_rows, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def check_shard(rank: int, world_size: int) -> None:
    """Validate shard arguments at the entry point."""
    if not isinstance(world_size, (int, np.integer)) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
