"""This rank's part of a source under torchrun (NOTE [ Order and sharding ] in `_order.py`)."""

from __future__ import annotations

from batchfit.data._base import Source

__all__ = ["shard_for_ranks"]


def shard_for_ranks(source: Source) -> Source:
    """This rank's shard of `source` under torchrun; `source` itself otherwise.

    Every rank uses rank 0's shuffle seed, so shards of one order are
    disjoint. A source already sharded is left alone, and one that cannot
    shard (a DataLoader, a user's loader) is used as given: the user shards it
    (e.g. with a DistributedSampler). Collective: every rank must call it.
    """
    from batchfit import distributed

    if not distributed.is_distributed() or getattr(source, "world_size", 1) > 1:
        return source
    if isinstance(getattr(source, "seed", None), int):
        source.seed = distributed.gather_objects(source.seed)[0]  # type: ignore[attr-defined]
    try:
        return source.shard(distributed.rank(), distributed.world_size())
    except NotImplementedError:
        return source
