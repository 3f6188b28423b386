"""`frames(...)`: batches from an iterable of DataFrame chunks.

Turns `pd.read_csv(path, chunksize=100_000)` (or pyarrow tables/record
batches, or polars frames) into a source `fit` can use. A one-shot iterator
makes one epoch only; pass a function returning a fresh iterator for more.
The row count is unknown, so a shard keeps every `world_size`-th row
(`stripe_rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._base import draw_seed
from batchfit.data._nodes import Chunk, stripe_rows
from batchfit.data._options import FramesOptions
from batchfit.data._stream import Columns, StreamSource, resolve_columns, stack_columns

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["FramesSource", "frames"]


def _column_names(frame: Any) -> list[str]:
    if hasattr(frame, "column_names"):  # pyarrow Table / RecordBatch
        return [str(c) for c in frame.column_names]
    if hasattr(frame, "columns"):  # pandas / polars
        return [str(c) for c in frame.columns]
    raise TypeError(
        f"frames() expects DataFrame chunks (pandas, polars or pyarrow), got {type(frame).__name__}"
    )


def _select(frame: Any, names: list[str], *, where: str) -> np.ndarray:
    """Columns `names` of any frame as a C-ordered float32 matrix."""
    columns = []
    for name in names:
        column = frame[name]
        dtype = getattr(column, "type", None) or column.dtype  # pyarrow / pandas, polars
        if hasattr(column, "combine_chunks") or hasattr(column, "buffers"):  # pyarrow
            values = column.to_numpy(zero_copy_only=False)
        elif hasattr(column, "null_count"):  # polars
            values = column.to_numpy()
        elif getattr(dtype, "kind", "O") in "biuf":  # pandas, nullable dtypes included
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.asarray(column)
        if values.dtype.kind not in "biuf":
            raise TypeError(
                f"column {name!r} in {where} has type {dtype}; expected numbers. "
                "Leave it out with features=[...]"
            )
        columns.append(values)
    return stack_columns(columns, len(frame))


class FramesSource(StreamSource):
    """Batches from DataFrame chunks; build it with `batchfit.data.frames`."""

    def __init__(
        self,
        frames: Iterable[Any] | Callable[[], Iterable[Any]],
        target: str | Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        **options: Unpack[FramesOptions],
    ) -> None:
        # the chunk order is the iterator's, so `shuffle` is not an option here
        super().__init__(name="frames", shuffle=False, **options)
        if self.shuffle_buffer and options.get("seed") is None:
            self.seed = draw_seed()
        if callable(frames):
            self._factory: Callable[[], Iterable[Any]] | None = frames
            self._frames: Iterable[Any] | None = None
        elif isinstance(frames, Iterable):
            self._factory, self._frames = None, frames
        else:
            raise TypeError(
                "frames() expects an iterable of DataFrames or a function returning one, "
                f"got {type(frames).__name__}"
            )
        self._one_shot = self._factory is None and iter(frames) is frames  # type: ignore[arg-type]
        self._used = False
        self._target, self._features = target, features
        self._units = [None]

    def _compute_units(self) -> list[Any]:
        return [None]

    def _read_unit(self, unit: Any) -> Iterator[Chunk]:
        del unit
        if self._one_shot:
            if self._used:
                raise RuntimeError(
                    "frames() was given a one-shot iterator, already consumed; it makes a "
                    "single epoch. Pass a function returning a fresh iterator instead, e.g. "
                    "frames(lambda: pd.read_csv(path, chunksize=100_000), target=...)"
                )
            self._used = True
        source = self._factory() if self._factory is not None else self._frames
        assert source is not None
        rows = 0
        for number, frame in enumerate(source):
            names = _column_names(frame)
            where = f"frame chunk {number}"
            if self.columns is None:
                self.columns = resolve_columns(
                    names, self._target, self._features, self.sample_weight_column, where
                )
            else:
                missing = [c for c in self.columns.needed if c not in names]
                if missing:
                    raise ValueError(
                        f"{where} lacks column(s) {missing} that chunk 0 had; "
                        f"its columns are {names}"
                    )
            columns: Columns = self.columns
            if len(frame) == 0:
                continue
            rows += len(frame)
            parts = columns.parts(partial(_select, frame, where=where))
            yield Chunk(parts, partial("{} row {}".format, where))
        if rows == 0:
            raise ValueError(
                "frames() got no rows this epoch: the iterable was empty (or a one-shot "
                "iterator already used up; pass a function returning a fresh one)"
            )

    @property
    def replayable(self) -> bool:
        return not self._one_shot

    def _check_can_shard(self) -> None:
        """Shards each read every chunk, so a one-shot iterator cannot serve them."""
        if self._one_shot:
            raise ValueError(
                "a one-shot iterator cannot be shared by shards; pass a function returning "
                "a fresh iterator, e.g. frames(lambda: pd.read_csv(path, chunksize=n), ...)"
            )

    def _chunks(self, units: list[Any]) -> Iterator[Chunk]:
        return stripe_rows(super()._chunks(units), self.rank, self.world_size)


def frames(
    frames: Iterable[Any] | Callable[[], Iterable[Any]],
    target: str | Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    **options: Any,
) -> FramesSource:
    """Batches of exact size from DataFrame chunks (pandas, polars or pyarrow).

    Args:
        frames: an iterable of frames (a list can be iterated every epoch; a
            one-shot iterator such as `pd.read_csv(..., chunksize=n)` only once),
            or a function returning a fresh iterable each epoch.
        target: target column(s), or None for predict-only `(x,)` batches.
        features: feature columns; None means every column but the targets.
        **options: `sample_weight`, `batch_size` (32), `shuffle_buffer` (rows),
            `seed`, `drop_remainder`, `on_nan`, `x_format`, `prefetch`.

    Example:
        >>> src = frames(lambda: pd.read_csv("h.csv", chunksize=100_000),
        ...              target="price", batch_size=256)  # doctest: +SKIP
    """
    return FramesSource(frames, target, features, **options)
