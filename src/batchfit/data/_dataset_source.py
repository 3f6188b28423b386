"""`dataset(...)`: stream a `pyarrow.dataset` (Parquet, CSV, Arrow IPC, ORC, partitioned).

NOTE [ Dataset fragments as units ]
A unit is a piece of one fragment: a Parquet file is split into its row groups
(`split_by_row_group`), other formats are one fragment per file. Fragments are
sorted by path, so the order does not depend on how the filesystem lists them.
When every fragment's row count is known without reading its rows (Parquet
footers, Arrow IPC and ORC metadata) and no `filter` drops rows, a shard is a
contiguous row range (`shard_rows`) and `len()` is exact, as for `parquet`;
otherwise (CSV, or a `filter`) a rank takes whole fragments round-robin
(`shard_units`) and the number of batches is unknown. Each fragment is scanned
with its own file schema plus the partition columns, so an int column in one
file and a float column in another both read as numbers; the filter and the
column projection are pushed down to the scanner.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._nodes import Chunk
from batchfit.data._options import StreamOptions
from batchfit.data._order import shard_rows, shard_units
from batchfit.data._stream import StreamSource, resolve_columns, stack_columns
from batchfit.data._table_rows import TableRows, table_columns

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["DatasetSource", "dataset"]

# (fragment index, first row, stop row or None for "to the end")
Unit = tuple[int, int, int | None]


def _is_number(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    )


def _is_nested(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_nested(kind))


class DatasetSource(StreamSource):
    """Batches from a `pyarrow.dataset`; build it with `batchfit.data.dataset`."""

    def __init__(
        self,
        path_or_dataset: Any,
        target: str | Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        *,
        format: Any = "parquet",
        partitioning: Any = None,
        filter: Any = None,
        filesystem: Any = None,
        schema: Any = None,
        block_rows: int = 65_536,
        table: TableRows | None = None,
        **options: Unpack[StreamOptions],
    ) -> None:
        super().__init__(name="dataset", **options)
        import pyarrow as pa
        import pyarrow.dataset as ds

        if not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        if filter is not None and not isinstance(filter, ds.Expression):
            raise TypeError(
                f"filter must be a pyarrow compute expression (pc.field('x') > 0), "
                f"got {type(filter).__name__}"
            )
        self.block_rows, self.table, self.filter = block_rows, table, filter
        if isinstance(path_or_dataset, ds.Dataset):
            given = [("partitioning", partitioning), ("filesystem", filesystem), ("schema", schema)]
            extra = [name for name, value in given if value is not None]
            if extra:
                raise ValueError(
                    f"{extra} apply when dataset() opens a path; this pyarrow Dataset is "
                    "already built with its own"
                )
            data = path_or_dataset
            self.where = "the pyarrow dataset"
        else:
            source = (
                os.fspath(path_or_dataset)
                if isinstance(path_or_dataset, (str, os.PathLike))
                else [os.fspath(p) for p in path_or_dataset]
            )
            self.where = str(source)
            try:
                data = ds.dataset(
                    source,
                    format=format,
                    partitioning=partitioning,
                    filesystem=filesystem,
                    schema=schema,
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                raise ValueError(
                    f"cannot open {self.where} as a pyarrow dataset (format={format!r}, "
                    f"partitioning={partitioning!r}): {str(error).splitlines()[0]}"
                ) from None
        if not isinstance(data, ds.FileSystemDataset):
            raise TypeError(
                f"dataset() reads a pyarrow dataset of files (FileSystemDataset), got "
                f"{type(data).__name__}; for a table in memory use batchfit.data.arrays or frames"
            )
        self.filesystem = data.filesystem
        self.schema = data.schema
        try:  # prunes partitions by the filter, and binds it: a wrong field fails here
            fragments = sorted(data.get_fragments(filter=filter), key=lambda f: f.path)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise ValueError(
                f"filter {filter} cannot apply to {self.where} (columns {self.schema.names}): "
                f"{str(error).splitlines()[0]}"
            ) from None
        if not fragments:
            raise ValueError(
                f"{self.where} holds no files" + (" the filter keeps" if filter else "")
            )
        self.files = [f.path for f in fragments]
        self.columns = resolve_columns(
            list(self.schema.names), target, features, self.sample_weight_column, self.where
        )
        if table is not None:
            self.columns = table_columns(table, self.columns)
        read = table.needed if table is not None else self.columns.needed
        self._read_names = read
        self._check_types(fragments, read)
        self._fragments, self._rows = self._split(fragments)
        if self._counts_known() and not sum(int(r or 0) for r in self._rows):
            raise ValueError(f"{self.where} holds no rows: expected at least one")
        self._units = self._compute_units()

    # -- fragments --------------------------------------------------------------
    def _check_types(self, fragments: list[Any], read: list[str]) -> None:
        """Each column read: present, flat, numeric (unless `table=`), one kind in all files."""
        partition_names = set(self.schema.names) - set(fragments[0].physical_schema.names)
        first: dict[str, tuple[Any, str]] = {}
        for fragment in fragments:
            physical = fragment.physical_schema
            for name in read:
                if name not in physical.names:
                    if name in partition_names:
                        continue
                    raise ValueError(
                        f"column {name!r} is missing from {fragment.path} (its columns are "
                        f"{physical.names})"
                    )
                kind = physical.field(name).type
                if _is_nested(kind):
                    raise TypeError(
                        f"column {name!r} in {fragment.path} is nested ({kind}); expected "
                        "numbers. Leave it out with features=[...]"
                    )
                if self.table is None and not _is_number(kind):
                    raise TypeError(
                        f"column {name!r} in {fragment.path} has type {kind}; expected numbers. "
                        "Leave it out with features=[...]"
                    )
                seen = first.setdefault(name, (kind, fragment.path))
                if seen[0] != kind and not (_is_number(seen[0]) and _is_number(kind)):
                    raise TypeError(
                        f"column {name!r} changes type between files: {seen[0]} in {seen[1]}, "
                        f"{kind} in {fragment.path}"
                    )
        for name in read:
            if name in partition_names and self.table is None:
                kind = self.schema.field(name).type
                if not _is_number(kind):
                    raise TypeError(
                        f"partition column {name!r} has type {kind}; expected numbers. "
                        "Leave it out with features=[...]"
                    )

    def _split(self, fragments: list[Any]) -> tuple[list[Any], list[int | None]]:
        """Parquet files into row groups; each piece with its row count when known cheaply."""
        import pyarrow.dataset as ds

        pieces: list[Any] = []
        rows: list[int | None] = []
        for fragment in fragments:
            if isinstance(fragment, ds.ParquetFileFragment):
                for group in fragment.split_by_row_group():
                    pieces.append(group)
                    rows.append(group.row_groups[0].num_rows)
            else:
                pieces.append(fragment)
                known = isinstance(fragment.format, (ds.IpcFileFormat, ds.OrcFileFormat))
                rows.append(fragment.count_rows() if known else None)
        return pieces, rows

    def _counts_known(self) -> bool:
        return self.filter is None and all(r is not None for r in self._rows)

    def _compute_units(self) -> list[Any]:
        if not self._counts_known():
            picked = shard_units(len(self._fragments), self.rank, self.world_size)
            return [(i, 0, None) for i in picked]
        sizes = [int(r or 0) for r in self._rows]
        lo, hi = shard_rows(sum(sizes), self.rank, self.world_size)
        units: list[Unit] = []
        offset = 0
        for index, rows in enumerate(sizes):
            start, stop = max(lo - offset, 0), min(hi - offset, rows)
            if start < stop:
                units.append((index, start, stop))
            offset += rows
        return units

    def _unit_rows(self, unit: Unit) -> int | None:
        if self.table is not None or unit[2] is None:
            return None
        return unit[2] - unit[1]

    def _rows_may_drop(self) -> bool:
        return self.table is not None or not self._counts_known() or super()._rows_may_drop()

    def _stat_keys(self) -> tuple[str, ...]:
        return super()._stat_keys() + (self.table.stat_keys() if self.table is not None else ())

    # -- reading -----------------------------------------------------------------
    def _scanner(self, index: int) -> Any:
        import pyarrow as pa
        import pyarrow.dataset as ds

        fragment = self._fragments[index]
        physical = fragment.physical_schema
        # The file's own types plus the partition columns, which the scanner fills in.
        fields = list(physical) + [f for f in self.schema if f.name not in physical.names]
        return ds.Scanner.from_fragment(
            fragment,
            schema=pa.schema(fields),
            columns=self._read_names,
            filter=self.filter,
            batch_size=self.block_rows,
            use_threads=True,
        )

    def _describe(self, index: int) -> str:
        fragment = self._fragments[index]
        groups = getattr(fragment, "row_groups", None)
        if groups is not None and len(groups) == 1:
            return f"{fragment.path} row group {groups[0].id}"
        return str(fragment.path)

    def _read_unit(self, unit: Unit) -> Iterator[Chunk]:
        import pyarrow as pa

        assert self.columns is not None
        index, start, stop = unit
        where = self._describe(index)
        row_word = "row (after the filter)" if self.filter is not None else "row"
        seen = 0
        try:
            batches = self._scanner(index).to_batches()
            for batch in batches:
                lo = max(start - seen, 0)
                hi = batch.num_rows if stop is None else min(stop - seen, batch.num_rows)
                first = seen + lo
                seen += batch.num_rows
                if lo < hi:
                    part = batch.slice(lo, hi - lo)
                    chunk = self._chunk(part, _locator(f"{where} {row_word}", first))
                    if chunk is not None:
                        yield chunk
                if stop is not None and seen >= stop:
                    break
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
            raise ValueError(f"cannot read {where}: {error}") from None

    def _chunk(self, part: Any, locate: Callable[[int], str]) -> Chunk | None:
        import pyarrow as pa

        assert self.columns is not None
        if self.table is not None:
            import polars as pl

            frame = pl.from_arrow(part)
            assert isinstance(frame, pl.DataFrame)
            return self.table.chunk(frame, locate, self.stats)

        def select(names: list[str]) -> np.ndarray:
            columns = []
            for name in names:
                column = part.column(name)
                if pa.types.is_dictionary(column.type):
                    column = column.cast(column.type.value_type)
                if column.null_count:  # nulls become NaN, refused by check_finite
                    column = column.cast("float64").fill_null(float("nan"))
                columns.append(column.to_numpy(zero_copy_only=False))
            return stack_columns(columns, part.num_rows)

        return Chunk(self.columns.parts(select), locate)

    # -- contract ----------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any] | None:
        """Path, size and modification time of each file (and edge hashes when local)."""
        import pyarrow.fs as pafs

        from batchfit.data._fingerprint import files_fingerprint

        if isinstance(self.filesystem, pafs.LocalFileSystem):
            return files_fingerprint(self.files)
        # A remote store: sizes and times from one listing, no reads (head/tail unknown).
        entries = [
            {
                "path": info.path,
                "size": info.size,
                "mtime_ns": info.mtime_ns,
                "head": None,
                "tail": None,
            }
            for info in self.filesystem.get_file_info(self.files)
        ]
        return {"kind": "files", "files": entries}


def _locator(prefix: str, first: int) -> Callable[[int], str]:
    return lambda i: f"{prefix} {first + i}"


def dataset(
    path_or_dataset: Any,
    target: str | Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    **options: Any,
) -> DatasetSource:
    """Stream batches from a `pyarrow.dataset`: Parquet, CSV, Arrow IPC/Feather or ORC files.

    Files are read fragment by fragment (Parquet: row group by row group),
    sorted by path; see NOTE [ Dataset fragments as units ].

    Args:
        path_or_dataset: a directory, a file, a list of files, or a
            `pyarrow.dataset.Dataset` over files (`ds.dataset(...)`).
        target: the target column, a list of them (y is then 2-D), or None for
            predict-only batches `(x,)`. Partition columns may be targets or features.
        features: feature columns; None means every column but the targets.
        **options: `format` ("parquet", "csv", "ipc"/"arrow"/"feather", "orc", or a
            `pyarrow.dataset.FileFormat`), `partitioning` ("hive", a list of field
            names for directory partitioning, or a `pyarrow.dataset.Partitioning`),
            `filter` (a `pyarrow.compute` expression, pushed down to the scanner;
            the batch count is then unknown), `filesystem` (any `pyarrow.fs`
            filesystem: S3, GCS, HDFS), `schema`, `table` (a `TableRows` for raw
            columns), `block_rows` (65536) and the options of `parquet`
            (`batch_size`, `shuffle_buffer`, `shuffle`, `seed`, `drop_remainder`,
            `on_nan`, `x_format`, `sample_weight`, `prefetch`).

    Returns:
        A `DatasetSource`; `len()` is exact when the row counts are in the file
        metadata (Parquet, IPC, ORC) and no filter is given.

    Raises:
        ValueError: a column is missing, or the filter does not apply.
        TypeError: a column is not numeric, is nested, or changes kind between files.

    Example:
        >>> import pyarrow.compute as pc
        >>> src = dataset("lake/", partitioning="hive", filter=pc.field("year") >= 2020,
        ...               target="price", batch_size=1024)  # doctest: +SKIP
    """
    return DatasetSource(path_or_dataset, target, features, **options)
