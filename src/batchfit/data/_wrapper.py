"""The base of sources made from another source (filters, taps, splits).

NOTE [ Wrapping a source ]
A wrapper owns no position: the epoch, the batches done, the saved state,
the shard, the statistics and the threads are its inner source's, so a
wrapper resumes exactly where its inner source does and shards by sharding
it. A subclass says only what it does to the batches, in `wrap_epoch`,
which receives the inner source's iterator for one epoch (pulled lazily, so
the inner position always counts the inner batches the consumer has caused
to be read, kept or not):

    class Doubled(SourceWrapper):
        def wrap_epoch(self, batches):
            for x, y in batches:
                yield 2 * x, y

A wrapper that drops batches or rows overrides `_num_batches` (None: unknown);
one with settings of its own overrides `rewrap(inner)` when a shallow copy
would share mutable state it should not.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from batchfit.data._base import Batch, Source

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SourceWrapper"]


class SourceWrapper(Source):
    """A source over another (see NOTE [ Wrapping a source ]).

    Args:
        inner: the source whose batches are changed, filtered or observed.
    """

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        super().__init__()

    # -- what subclasses provide ------------------------------------------------------------
    def wrap_epoch(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        """This source's batches of one epoch, from the inner source's (default: as they are)."""
        return batches

    def rewrap(self, inner: Source) -> Self:
        """This wrapper around `inner` (a shard of the inner source): a shallow copy by default."""
        clone = copy.copy(self)
        clone.inner = inner
        return clone

    # -- forwarded ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Batch]:
        batches = iter(self.inner)
        try:
            yield from self.wrap_epoch(batches)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # ends the inner prefetch thread when the consumer stops early

    def _num_batches(self) -> int | None:
        return self.inner.num_batches

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    @property
    def epoch(self) -> int:
        return self.inner.epoch

    def rewind(self) -> None:
        self.inner.rewind()

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)

    def shard(self, rank: int, world_size: int) -> Self:
        return self.rewrap(self.inner.shard(rank, world_size))

    @property
    def replayable(self) -> bool:
        return self.inner.replayable

    def fingerprint(self) -> dict[str, Any] | None:
        return self.inner.fingerprint()

    def close(self) -> None:
        self.inner.close()

    @property
    def batch_size(self) -> int | None:  # type: ignore[override]
        return self.inner.batch_size

    @property
    def stats(self) -> dict[str, int]:
        return self.inner.stats

    @stats.setter
    def stats(self, value: dict[str, int]) -> None:
        del value  # the inner source owns the counters (the base's __init__ sets them)

    @property
    def rank(self) -> int:  # type: ignore[override]
        return self.inner.rank

    @property
    def world_size(self) -> int:  # type: ignore[override]
        return self.inner.world_size

    def __getattr__(self, name: str) -> Any:
        """Other public attributes (`seed`, `on_nan`, `on_bad_rows`, ...) are the inner source's."""
        inner = self.__dict__.get("inner")
        if name.startswith("_") or inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # `shard_for_ranks` sets every rank's `seed` to rank 0's: the inner source's
        if name == "seed" and "inner" in self.__dict__ and hasattr(self.inner, "seed"):
            setattr(self.inner, name, value)
        else:
            super().__setattr__(name, value)
