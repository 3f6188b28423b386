"""`generator(...)`: live or endless data (online learning), or any batch iterator.

Two kinds of input behave differently, on purpose:
- a function returning an iterable is called at the start of every epoch, so
  the data can be replayed: resuming skips the batches already consumed;
- an iterator (a live feed) is one continuing stream: each epoch takes the
  next batches (`fit(..., steps_per_epoch=N)` bounds it), and its prefetch
  thread lives until `close()` so that no batch read ahead is lost between
  epochs. After `load_state_dict` the first iteration skips the batches the
  saved run consumed, which replays a deterministic iterator exactly.
The number of batches is unknown (`num_batches` is None).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from batchfit.data._base import Batch, Source, as_float32
from batchfit.data._nodes import Chunk, batch_rows, stripe_rows
from batchfit.data._prefetch import Prefetcher

__all__ = ["GeneratorSource", "generator"]


def _as_batch(item: Any, number: int) -> Batch:
    """One item as a batch tuple of float32 arrays with equal first dimensions."""
    parts = tuple(item) if isinstance(item, (tuple, list)) else (item,)
    if not 1 <= len(parts) <= 3:
        raise ValueError(
            f"item {number} of the generator has {len(parts)} parts; expected x, (x, y) "
            "or (x, y, sample_weight)"
        )
    out: list[Any] = []
    for k, part in enumerate(parts):
        what = f"item {number} part {k}"
        if isinstance(part, Mapping):
            out.append({name: as_float32(v, f"{what}[{name!r}]") for name, v in part.items()})
        else:
            out.append(as_float32(part, what))
    sizes = {len(next(iter(p.values()))) if isinstance(p, dict) else len(p) for p in out}
    if len(sizes) > 1:
        raise ValueError(f"item {number} of the generator has parts of different lengths {sizes}")
    return tuple(out)


def _array_chunks(batches: Iterator[Batch]) -> Iterator[Chunk]:
    for batch in batches:
        if any(isinstance(p, dict) for p in batch):
            raise TypeError(
                "generator(batch_size=...) cannot re-batch dict inputs; "
                "yield arrays or leave batch_size=None"
            )
        yield Chunk(batch)


class GeneratorSource(Source):
    """Batches from a generator; build it with `batchfit.data.generator`."""

    def __init__(
        self,
        data: Iterable[Any] | Callable[[], Iterable[Any]],
        *,
        batch_size: int | None = None,
        prefetch: int = 2,
    ) -> None:
        super().__init__()
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        if not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        if not callable(data) and not isinstance(data, Iterable):
            raise TypeError(
                "generator() expects an iterable or a function returning one, "
                f"got {type(data).__name__}"
            )
        self.batch_size = batch_size
        self.prefetch = prefetch
        self._data = data
        self._live = not callable(data) and iter(data) is data
        self._replay = False
        self._stream: Prefetcher[Batch] | None = None
        self._stream_iter: Iterator[Batch] | None = None
        self._epoch_prefetcher: Prefetcher[Batch] | None = None
        self._closed = False

    def _batches(self, items: Iterable[Any]) -> Iterator[Batch]:
        """Convert, shard and (with `batch_size`) re-batch the items."""
        batches = (_as_batch(item, n) for n, item in enumerate(items))
        if self.batch_size is None:
            for n, batch in enumerate(batches):
                if n % self.world_size == self.rank:
                    yield batch
            return
        rows = stripe_rows(_array_chunks(batches), self.rank, self.world_size)
        yield from batch_rows(
            (chunk.parts for chunk in rows), self.batch_size, drop_remainder=False
        )

    def _open(self) -> Iterator[Batch]:
        items = self._data() if callable(self._data) else self._data
        return self._batches(items)

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        del epoch
        if self._live:
            if self._closed:
                raise RuntimeError("this generator source was closed; its live stream has ended")
            if self._stream_iter is None:
                if self.prefetch:
                    self._stream = Prefetcher(self._open, self.prefetch, "batchfit-generator")
                    self._stream_iter = iter(self._stream)
                else:
                    self._stream_iter = self._open()
            skip = skip_batches if self._replay else 0
            self._replay = False
            for n, batch in enumerate(self._stream_iter):
                if n >= skip:
                    yield batch
            return
        prefetcher = (
            Prefetcher(self._open, self.prefetch, "batchfit-generator") if self.prefetch else None
        )
        self._epoch_prefetcher = prefetcher
        batches = iter(prefetcher) if prefetcher is not None else self._open()
        try:
            for n, batch in enumerate(batches):
                if n >= skip_batches:
                    yield batch
        finally:
            if prefetcher is not None:
                prefetcher.close()
            self._epoch_prefetcher = None

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._replay = True

    @property
    def replayable(self) -> bool:
        return not self._live

    shardable = True

    def _check_can_shard(self) -> None:
        """Every `world_size`-th batch (or row, when re-batching), from `rank` on."""
        if self._live:
            raise ValueError("a one-shot iterator cannot be sharded; pass a function returning one")

    def _on_shard(self) -> None:
        self._replay = self._closed = False
        self._stream = self._stream_iter = self._epoch_prefetcher = None

    def close(self) -> None:
        """Stop the prefetch threads (a live stream cannot be iterated afterwards)."""
        self._closed = self._stream is not None
        for prefetcher in (self._stream, self._epoch_prefetcher):
            if prefetcher is not None:
                prefetcher.close()


def generator(
    data: Iterable[Any] | Callable[[], Iterable[Any]],
    *,
    batch_size: int | None = None,
    prefetch: int = 2,
) -> GeneratorSource:
    """Batches from a live feed, an endless generator, or a function making one.

    Args:
        data: yields `x`, `(x, y)` or `(x, y, sample_weight)` (arrays, or a dict
            of arrays for x). A function is called once per epoch; an iterator
            is one stream continuing across epochs (see the module docstring).
        batch_size: None passes the items through as batches; a number cuts
            the stream into batches of exactly that many rows.
        prefetch: batches read ahead in a background thread (0: none).

    Example:
        >>> def feed():
        ...     while True:
        ...         yield read_sensor_batch()  # doctest: +SKIP
        >>> model.fit(generator(feed()), epochs=10, steps_per_epoch=100)  # doctest: +SKIP
    """
    return GeneratorSource(data, batch_size=batch_size, prefetch=prefetch)
