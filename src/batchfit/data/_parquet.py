"""`parquet(...)`: stream Parquet files row group by row group.

The row counts in the file footers make `len()` exact and let a shard take a
contiguous range of rows (NOTE [ Order and sharding ]); a unit is the part of
one row group inside that range, read in record batches of `block_rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._files import PathsOrGlob, expand_paths
from batchfit.data._nodes import Chunk
from batchfit.data._options import StreamOptions
from batchfit.data._order import shard_rows
from batchfit.data._stream import StreamSource, resolve_columns, stack_columns
from batchfit.data._table_rows import RawColumns, TableRows, raw_columns, table_columns

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["ParquetSource", "parquet"]

# (file, row group, first row in the group, stop row in the group, first row in the file)
Unit = tuple[int, int, int, int, int]


class ParquetSource(StreamSource):
    """Batches from Parquet files; build it with `batchfit.data.parquet`."""

    def __init__(
        self,
        paths_or_glob: PathsOrGlob,
        target: str | Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        *,
        block_rows: int = 65_536,
        table: TableRows | RawColumns | None = None,
        columns: Sequence[str] | None = None,
        **options: Unpack[StreamOptions],
    ) -> None:
        super().__init__(name="parquet", **options)
        self.table = table
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        self.block_rows = block_rows
        self.files = expand_paths(paths_or_glob, "Parquet")
        self._group_rows: list[list[int]] = []
        schema0: pa.Schema | None = None
        schemas: list[pa.Schema] = []
        for path in self.files:
            try:
                meta = pq.ParquetFile(path).metadata
            except (pa.ArrowInvalid, OSError) as error:
                raise ValueError(f"{path} is not a readable Parquet file: {error}") from None
            schema = meta.schema.to_arrow_schema()
            schemas.append(schema)
            if schema0 is None:
                schema0 = schema
            elif schema.names != schema0.names:
                raise ValueError(
                    f"columns differ between {self.files[0]} and {path}: "
                    f"{schema0.names} versus {schema.names}"
                )
            rows = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
            if sum(rows) == 0:
                raise ValueError(f"{path} is empty: expected at least one row")
            self._group_rows.append(rows)
        assert schema0 is not None
        self.column_names = list(schema0.names)
        if columns is not None:
            table = self.table = raw_columns(
                self.files[0], self.column_names, columns, target, features
            )
            features = list(columns)
        self.columns = resolve_columns(
            self.column_names, target, features, self.sample_weight_column, self.files[0]
        )
        if table is not None:
            self.columns = table_columns(table, self.columns)
            schemas = []  # a raw table's columns are typed by `TableRows`
        # every file, not just the first: a glob may hold one whose column is text
        for path, schema in zip(self.files, schemas):
            for name in self.columns.needed:
                kind = schema.field(name).type
                if not (
                    pa.types.is_integer(kind)
                    or pa.types.is_floating(kind)
                    or pa.types.is_boolean(kind)
                    or pa.types.is_decimal(kind)
                ):
                    raise TypeError(
                        f"column {name!r} in {path} has type {kind}; expected numbers. "
                        "Leave it out with features=[...]"
                    )
        self._units = self._compute_units()

    def _compute_units(self) -> list[Any]:
        total = sum(sum(rows) for rows in self._group_rows)
        lo, hi = shard_rows(total, self.rank, self.world_size)
        units: list[Unit] = []
        offset = 0
        for index, groups in enumerate(self._group_rows):
            file_row = 0
            for group, rows in enumerate(groups):
                start, stop = max(lo - offset, 0), min(hi - offset, rows)
                if start < stop:
                    units.append((index, group, start, stop, file_row))
                offset += rows
                file_row += rows
        return units

    def _unit_rows(self, unit: Unit) -> int | None:
        return None if self.table is not None else unit[3] - unit[2]

    def _rows_may_drop(self) -> bool:
        return self.table is not None or super()._rows_may_drop()

    def _stat_keys(self) -> tuple[str, ...]:
        return super()._stat_keys() + (self.table.stat_keys() if self.table is not None else ())

    def _read_unit(self, unit: Unit) -> Iterator[Chunk]:
        import pyarrow.parquet as pq

        assert self.columns is not None
        index, group, start, stop, file_row = unit
        path = self.files[index]
        seen = 0
        with pq.ParquetFile(path) as reader:
            for batch in reader.iter_batches(
                batch_size=self.block_rows,
                row_groups=[group],
                columns=self.table.needed if self.table is not None else self.columns.needed,
                use_threads=True,
            ):
                lo, hi = max(start - seen, 0), min(stop - seen, batch.num_rows)
                first = file_row + seen + lo
                seen += batch.num_rows
                if lo >= hi:
                    if seen >= stop:
                        break
                    continue
                part = batch.slice(lo, hi - lo)
                if self.table is not None:
                    import polars as pl

                    frame = pl.from_arrow(part)
                    assert isinstance(frame, pl.DataFrame)
                    chunk = self.table.chunk(frame, _locator(f"{path} row", first), self.stats)
                    if chunk is not None:
                        yield chunk
                    if seen >= stop:
                        break
                    continue

                def select(names: list[str], part: Any = part) -> np.ndarray:
                    columns = []
                    for name in names:
                        column = part.column(name)
                        if column.null_count:  # nulls become NaN, refused by check_finite
                            column = column.cast("float64").fill_null(float("nan"))
                        columns.append(column.to_numpy(zero_copy_only=False))
                    return stack_columns(columns, part.num_rows)

                yield Chunk(
                    self.columns.parts(select),
                    _locator(f"{path} row", first),
                )
                if seen >= stop:
                    break


def _locator(prefix: str, first: int) -> Callable[[int], str]:
    return lambda i: f"{prefix} {first + i}"


def parquet(
    paths_or_glob: PathsOrGlob,
    target: str | Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    **options: Any,
) -> ParquetSource:
    """Stream batches from Parquet files, row group by row group.

    Args:
        paths_or_glob: a file, a glob, a directory or a list.
        target: the target column, a list of them (y is then 2-D), or None for
            predict-only batches `(x,)`.
        features: feature columns; None means every column but the targets.
        **options: `sample_weight`, `batch_size` (32), `shuffle_buffer` (rows),
            `shuffle` (row-group order; default: when `shuffle_buffer > 0`),
            `seed`, `drop_remainder`, `on_nan` ("raise"/"skip"; nulls count as
            NaN), `x_format` ("array"/"dict"), `block_rows` (65536),
            `prefetch` (blocks read ahead; 0: no thread), `columns` (read as
            they are, strings included, as `csv` does), `table` (a raw table
            encoded, NOTE [ Encoding a raw table ]).

    Returns:
        A `ParquetSource`; `len()` is known from the file footers.

    Example:
        >>> preds = model.predict(parquet("new.parquet", batch_size=4096))  # doctest: +SKIP
    """
    return ParquetSource(paths_or_glob, target, features, **options)
