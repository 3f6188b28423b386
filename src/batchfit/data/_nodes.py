"""Small pipeline nodes over chunks of rows: validate, stripe, shuffle, batch.

Each node is a generator over the previous one's output, so the pipeline of a
source reads top to bottom (see `_stream.StreamSource._iter_epoch`). A chunk
is a tuple of arrays with the same first dimension, `(x, y, sample_weight)`
minus the parts a source does not have. Nodes never hold more than a bounded
number of rows: a chunk, the shuffle buffer, or a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Chunk", "batch_rows", "check_finite", "shuffle_rows", "stripe_rows"]

Parts = tuple[np.ndarray, ...]


def _row_of(row: int) -> str:
    return f"row {row}"


@dataclass
class Chunk:
    """Rows read together, and how to name row `i` of them in an error message."""

    parts: Parts
    locate: Callable[[int], str] = _row_of

    @property
    def rows(self) -> int:
        return int(self.parts[0].shape[0])

    def take(self, index: np.ndarray) -> Chunk:
        """The chunk restricted to `index` (a boolean mask or positions)."""
        positions = np.flatnonzero(index) if index.dtype == np.bool_ else index
        parts = tuple(np.ascontiguousarray(p[positions]) for p in self.parts)
        return Chunk(parts, lambda i: self.locate(int(positions[i])))


def check_finite(
    chunks: Iterable[Chunk],
    part_names: Callable[[], Sequence[Sequence[str]]],
    *,
    on_nan: str,
    stats: dict[str, int],
) -> Iterator[Chunk]:
    """Refuse (or, with `on_nan="skip"`, drop and count) rows holding NaN or inf.

    The cheap test is one sum per part; only a chunk whose sum is not finite
    pays for a row mask.
    """
    for chunk in chunks:
        if all(p.dtype.kind not in "fc" or np.isfinite(p.sum()) for p in chunk.parts):
            yield chunk
            continue
        good = np.ones(chunk.rows, dtype=bool)
        for p in chunk.parts:
            if p.dtype.kind in "fc":
                good &= np.isfinite(p.reshape(p.shape[0], -1)).all(axis=1)
        if good.all():  # the sum overflowed; every value is finite
            yield chunk
            continue
        if on_nan == "skip":
            stats["nan_rows_skipped"] = stats.get("nan_rows_skipped", 0) + int((~good).sum())
            if good.any():
                yield chunk.take(good)
            continue
        row = int(np.flatnonzero(~good)[0])
        names_of = part_names()
        for k, part in enumerate(chunk.parts):
            flat = part.reshape(part.shape[0], -1)[row]
            bad: Any = np.flatnonzero(~np.isfinite(flat)) if part.dtype.kind in "fc" else []
            if len(bad):
                col = int(bad[0])
                names = names_of[k] if k < len(names_of) else []
                name = names[col] if col < len(names) else f"{_PART[k]}[:, {col}]"
                raise ValueError(
                    f"non-finite value {flat[col]!r} in column {name!r} at "
                    f"{chunk.locate(row)}: expected finite numbers "
                    "(pass on_nan='skip' to drop such rows)"
                )


_PART = ("x", "y", "sample_weight")


def stripe_rows(chunks: Iterable[Chunk], rank: int, world_size: int) -> Iterator[Chunk]:
    """Keep the rows whose position in the stream is `rank` modulo `world_size`.

    The shard of a stream whose length is unknown: disjoint, complete, and
    balanced to one row, at the cost of every rank reading every row.
    """
    if world_size == 1:
        yield from chunks
        return
    seen = 0
    for chunk in chunks:
        first = (rank - seen) % world_size
        seen += chunk.rows
        positions = np.arange(first, chunk.rows, world_size)
        if positions.size:
            yield chunk.take(positions)


def shuffle_rows(
    chunks: Iterable[Parts], buffer_rows: int, rng: np.random.Generator
) -> Iterator[Parts]:
    """A bounded, seeded shuffle buffer over a stream of row chunks.

    The buffer fills with the first `buffer_rows` rows. Then rows arrive in
    rounds of `round_rows`: each round, that many random slots of the buffer
    leave as one output chunk and the new rows take their places (two copies
    per row). Rounds are cut by row count, never at chunk boundaries, so the
    order depends only on the row stream and the generator. Memory: the
    buffer plus one round.
    """
    round_rows = max(min(buffer_rows // 2, 65_536), 1)
    buffer: list[np.ndarray] = []
    filled = 0
    pending: list[Parts] = []
    pending_rows = 0
    for parts in chunks:
        start, n = 0, int(parts[0].shape[0])
        while filled < buffer_rows and start < n:  # fill the buffer first
            take = min(n - start, buffer_rows - filled)
            if not buffer:
                buffer = [np.empty((buffer_rows, *p.shape[1:]), p.dtype) for p in parts]
            for b, p in zip(buffer, parts, strict=True):
                b[filled : filled + take] = p[start : start + take]
            filled += take
            start += take
        while start < n:
            take = min(n - start, round_rows - pending_rows)
            pending.append(tuple(p[start : start + take] for p in parts))
            pending_rows += take
            start += take
            if pending_rows == round_rows:
                yield _swap(buffer, _concat(pending), rng)
                pending, pending_rows = [], 0
    if pending_rows:
        yield _swap(buffer, _concat(pending), rng)
    if filled:
        order = rng.permutation(filled)
        yield tuple(b[:filled][order] for b in buffer)


def _swap(buffer: list[np.ndarray], incoming: Parts, rng: np.random.Generator) -> Parts:
    """Random rows out of the full buffer, `incoming` rows into their slots."""
    slots = rng.choice(buffer[0].shape[0], size=incoming[0].shape[0], replace=False)
    out = tuple(b[slots] for b in buffer)
    for b, p in zip(buffer, incoming, strict=True):
        b[slots] = p
    return out


def batch_rows(
    chunks: Iterable[Parts], batch_size: int, *, drop_remainder: bool, skip_rows: int = 0
) -> Iterator[Parts]:
    """Exact batches of `batch_size` rows across chunk boundaries.

    A batch inside one chunk is a view (no copy); one that spans chunks is
    concatenated. The first `skip_rows` rows are dropped (resuming mid-epoch).
    """
    carry: list[Parts] = []
    carry_rows = 0
    for parts in chunks:
        start, n = 0, int(parts[0].shape[0])
        if skip_rows:
            start = min(skip_rows, n)
            skip_rows -= start
        if carry_rows and start < n:
            take = min(batch_size - carry_rows, n - start)
            carry.append(tuple(p[start : start + take] for p in parts))
            carry_rows += take
            start += take
            if carry_rows < batch_size:
                continue
            yield _concat(carry)
            carry, carry_rows = [], 0
        while n - start >= batch_size:  # the hot loop: views, no copies
            stop = start + batch_size
            yield tuple([p[start:stop] for p in parts])
            start = stop
        if start < n:
            carry, carry_rows = [tuple(p[start:] for p in parts)], n - start
    if carry_rows and not drop_remainder:
        yield _concat(carry)


def _concat(pieces: list[Parts]) -> Parts:
    if len(pieces) == 1:
        return pieces[0]
    return tuple(np.concatenate(column) for column in zip(*pieces, strict=True))
