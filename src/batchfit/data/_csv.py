"""`csv(...)`: stream CSV files (plain, gzip, zstd) block by block.

Parsing uses polars on byte blocks (measured faster than pyarrow's
`open_csv` here, see benchmarks/RESULTS_data.md). A plain file is cut at line
breaks into blocks of about `block_bytes`; the blocks are the units that get
shuffled and sharded (NOTE [ Order and sharding ]), so no rank reads another
rank's blocks. A compressed file cannot be cut, so it is one unit read as a
stream. Cuts fall only on line breaks outside quotes (RFC 4180: `"` quotes a
field, `""` is a quote inside it), so a text column may hold line breaks; a
quote never closed is an error naming its line (see `_csv_cuts.py`).

Malformed rows take a slow path: a block whose fast parse fails or yields a
missing value is re-read with Python's `csv` module, which names the line.
"""

from __future__ import annotations

import csv as _csv
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data import _csv_cuts
from batchfit.data._csv_cuts import (
    QUOTE,
    count_byte,
    cut_file,
    last_boundary,
    read_header,
    unclosed_quote,
)
from batchfit.data._files import PathsOrGlob, expand_paths, open_binary
from batchfit.data._nodes import Chunk
from batchfit.data._options import StreamOptions
from batchfit.data._order import shard_units
from batchfit.data._stream import StreamSource, check_choice, resolve_columns
from batchfit.data._table_rows import RawColumns, TableRows, raw_columns, table_columns

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["CsvSource", "csv"]

logger = logging.getLogger("batchfit.data")

_SAMPLE_BYTES = 1 << 20  # read to check column types up front


class CsvSource(StreamSource):
    """Batches from CSV files; build it with `batchfit.data.csv`."""

    def __init__(
        self,
        paths_or_glob: PathsOrGlob,
        target: str | Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        *,
        on_bad_rows: str = "raise",
        delimiter: str = ",",
        block_bytes: int = 8 << 20,
        newlines_in_values: bool = True,
        table: TableRows | RawColumns | None = None,
        columns: Sequence[str] | None = None,
        **options: Unpack[StreamOptions],
    ) -> None:
        super().__init__(name="csv", **options)
        self.table = table
        check_choice("on_bad_rows", on_bad_rows, ("raise", "skip"))
        if not isinstance(block_bytes, int) or block_bytes < 1:
            raise ValueError(f"block_bytes must be a positive integer, got {block_bytes!r}")
        if len(delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {delimiter!r}")
        self.on_bad_rows, self.delimiter, self.block_bytes = on_bad_rows, delimiter, block_bytes
        self.newlines_in_values = bool(newlines_in_values)
        self.files = expand_paths(paths_or_glob, "CSV")
        headers = [read_header(path, delimiter) for path in self.files]
        self.column_names, _ = headers[0]
        for path, (names, _) in zip(self.files[1:], headers[1:], strict=True):
            if names != self.column_names:
                raise ValueError(
                    f"columns differ between {self.files[0]} and {path}: "
                    f"{self.column_names} versus {names}"
                )
        if columns is not None:
            table = self.table = raw_columns(
                self.files[0], self.column_names, columns, target, features, delimiter
            )
            features = list(columns)
        self.columns = resolve_columns(
            self.column_names, target, features, self.sample_weight_column, self.files[0]
        )
        import polars as pl

        needed = set(self.columns.needed)
        if table is None:
            self._check_types()
            self._schema = {n: pl.Float32 if n in needed else pl.String for n in self.column_names}
        else:
            self.columns = table_columns(table, self.columns)
            self._schema = {
                n: table.read_dtype(n) if n in needed else pl.String for n in self.column_names
            }
        self._all_units: list[tuple[int, int, int | None]] = []
        for index, (path, (_, header_end)) in enumerate(zip(self.files, headers, strict=True)):
            self._all_units.extend(
                cut_file(index, path, header_end, block_bytes, self.newlines_in_values)
            )
        self._units = self._compute_units()
        self._first_lines: dict[tuple[int, int], int] = {}
        self._logged: set[str] = set()

    def _compute_units(self) -> list[Any]:
        units = self._all_units
        if len(units) < self.world_size:
            units = self._recut(self.world_size)
        return [units[i] for i in shard_units(len(units), self.rank, self.world_size)]

    def _recut(self, parts: int) -> list[Any]:
        """Smaller blocks so each of `parts` ranks gets one where the data allows."""
        total = sum(os.path.getsize(path) for path in self.files)
        block = max(1, total // parts)
        units: list[Any] = []
        for index, path in enumerate(self.files):
            _, header_end = read_header(path, self.delimiter)
            units.extend(cut_file(index, path, header_end, block, self.newlines_in_values))
        # still fewer (tiny or compressed files, read whole): some shards stay empty,
        # which training under torchrun reports on every rank at once
        return units

    def _rows_may_drop(self) -> bool:
        return True  # row counts are unknown before parsing anyway

    def _stat_keys(self) -> tuple[str, ...]:
        keys = ("rows_read", "bad_rows_skipped", "nan_rows_skipped")
        return keys + (self.table.stat_keys() if self.table is not None else ())

    def _check_types(self) -> None:
        """Refuse non-numeric columns now, not after an hour of training."""
        import polars as pl

        assert self.columns is not None
        path = self.files[0]
        with open_binary(path) as stream:
            sample = stream.read(_SAMPLE_BYTES)
        if len(sample) == _SAMPLE_BYTES:
            sample = sample[: max(last_boundary(sample, 0, len(sample)), 0)]
        try:
            frame = pl.read_csv(
                sample, separator=self.delimiter, columns=self.columns.needed, n_rows=2000
            )
        except pl.exceptions.PolarsError:
            return  # a malformed sample is reported with its line when read
        for name, dtype in frame.schema.items():
            if not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null):
                values = frame[name].drop_nulls()
                numbers = values.cast(pl.Float64, strict=False).drop_nulls()
                if not len(values) or len(numbers) > len(values) // 2:
                    continue  # mostly numbers: the odd bad row is reported with its line
                example = values.filter(values.cast(pl.Float64, strict=False).is_null())
                example = example.head(1).to_list()
                raise TypeError(
                    f"column {name!r} in {path} holds {dtype} values "
                    f"(e.g. {example[0] if example else None!r}); expected numbers. "
                    "Leave it out with features=[...]"
                )

    def _read_unit(self, unit: tuple[int, int, int | None]) -> Iterator[Chunk]:
        index, start, stop = unit
        path = self.files[index]
        if stop is not None:
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(stop - start)
            chunk = self._parse(data, path, lambda: self._first_line(index, start))
            if chunk is not None:
                yield chunk
            return
        # A compressed file: a stream of blocks cut at line breaks outside quotes.
        rows = 0
        with open_binary(path) as stream:
            line = stream.read(start).count(b"\n") + 1  # past the header
            rest = b""
            while True:
                try:
                    block = stream.read(self.block_bytes)
                except ValueError as e:  # open_binary's: truncated or corrupt compressed data
                    where = line + rest.count(b"\n")
                    raise ValueError(f"{e}, after line {where}") from e
                data = rest + block
                quoted = self.newlines_in_values
                if block:
                    cut = (
                        max(last_boundary(data, 0, len(data)), 0)
                        if quoted
                        else data.rfind(b"\n") + 1
                    )
                    data, rest = data[:cut], data[cut:]
                    too_long = len(rest) > max(_csv_cuts.OPEN_BYTES, self.block_bytes)
                    if quoted and too_long and b'"' in rest:
                        raise unclosed_quote(path, line + data.count(b"\n"))
                elif quoted and count_byte(data, QUOTE, 0, len(data)) % 2:
                    raise unclosed_quote(path, line)
                if data:
                    chunk = self._parse(data, path, _constant(line))
                    if chunk is not None:
                        rows += chunk.rows
                        yield chunk
                    line += data.count(b"\n")
                if not block:
                    break
        if rows == 0 and not self.stats.get("bad_rows_skipped"):
            raise ValueError(f"{path} is empty: expected a header line and at least one row")

    def _first_line(self, index: int, start: int) -> int:
        """Line number of the first row at byte `start` (counted only for error messages)."""
        key = (index, start)
        if key not in self._first_lines:
            newlines, done = 0, 0
            with open(self.files[index], "rb") as f:
                while done < start:
                    block = f.read(min(8 << 20, start - done))
                    newlines += block.count(b"\n")
                    done += len(block)
            self._first_lines[key] = newlines + 1
        return self._first_lines[key]

    def _parse(self, data: bytes, path: str, first_line: Callable[[], int]) -> Chunk | None:
        import polars as pl

        assert self.columns is not None
        if self.table is not None:
            return self._parse_table(data, path, first_line)
        try:
            frame = pl.read_csv(
                data, has_header=False, schema=self._schema, separator=self.delimiter
            )
            clean = sum(frame.null_count().row(0)) == 0
        except pl.exceptions.PolarsError:
            clean = False
        if not clean:
            return self._parse_slow(data, path, first_line)
        self.stats["rows_read"] += frame.height

        def select(names: list[str]) -> np.ndarray:
            return frame.select(names).to_numpy(order="c", writable=True)

        row_lines: list[int] = []

        def locate(i: int) -> str:
            if data.find(b'"') < 0:
                return f"{path} line {first_line() + i}"
            if not row_lines:  # a quoted field may span lines
                row_lines.extend(line for line, _ in _records(data, self.delimiter))
            return f"{path} line {first_line() + row_lines[i]}"

        return Chunk(self.columns.parts(select), locate)

    def _parse_table(self, data: bytes, path: str, first_line: Callable[[], int]) -> Chunk | None:
        """A block of a raw table: typed parse, then the table's own reading (`TableRows`).

        A block polars cannot parse with the table's types (a word in a
        number column) is parsed as strings, so `TableRows` names the cell; a
        block with a wrong number of fields takes the row-by-row path.
        """
        import polars as pl

        assert self.table is not None
        table = self.table
        options: dict[str, Any] = {
            "has_header": False,
            "separator": self.delimiter,
            "null_values": table.null_values,
            "columns": [self.column_names.index(n) for n in table.needed],
        }
        row_lines: list[int] = []
        try:
            frame = pl.read_csv(data, schema=self._schema, **options)
        except pl.exceptions.PolarsError:
            try:
                text = {n: pl.String for n in self.column_names}
                frame = pl.read_csv(data, schema=text, **options)
            except pl.exceptions.PolarsError:
                frame, row_lines = self._table_rows_slow(data, path, first_line)
        self.stats["rows_read"] += frame.height

        def locate(i: int) -> str:
            if row_lines:
                return f"{path} line {first_line() + row_lines[i]}"
            if data.find(b'"') < 0:
                return f"{path} line {first_line() + i}"
            row_lines.extend(line for line, _ in _records(data, self.delimiter))
            return f"{path} line {first_line() + row_lines[i]}"

        return table.chunk(frame, locate, self.stats)

    def _table_rows_slow(
        self, data: bytes, path: str, first_line: Callable[[], int]
    ) -> tuple[Any, list[int]]:
        """Rows of a raw table block with the right field count, as strings, and their lines."""
        import polars as pl

        assert self.table is not None
        needed = self.table.needed
        index = [self.column_names.index(n) for n in needed]
        width = len(self.column_names)
        cells: list[list[str | None]] = [[] for _ in needed]
        lines: list[int] = []
        nulls = set(self.table.null_values)
        for row_line, row in _records(data, self.delimiter):
            if len(row) == width:
                for column, i in zip(cells, index, strict=True):
                    column.append(None if row[i] in nulls else row[i])
                lines.append(row_line)
                continue
            self._bad_row(
                path,
                f"{path} line {first_line() + row_line}",
                f"expected {width} fields, got {len(row)}",
                raise_it=self.table.on_bad_rows == "raise",
                hint=self.table.hint("on_bad_rows", "skip"),
            )
        frame = pl.DataFrame(
            {n: pl.Series(n, c, dtype=pl.String) for n, c in zip(needed, cells, strict=True)}
        )
        return frame, lines

    def _bad_row(self, path: str, where: str, problem: str, *, raise_it: bool, hint: str) -> None:
        """Refuse a malformed row (naming where and how to skip it), or count and log it once."""
        if raise_it:
            raise ValueError(f"malformed row at {where}: {problem} ({hint} to skip it)")
        self.stats["bad_rows_skipped"] += 1
        if path not in self._logged:
            self._logged.add(path)
            logger.warning("skipping malformed rows in %s, first at %s: %s", path, where, problem)

    def _parse_slow(self, data: bytes, path: str, first_line: Callable[[], int]) -> Chunk | None:
        """Parse row by row, naming the line of each malformed row."""
        assert self.columns is not None
        needed = self.columns.needed
        index = [self.column_names.index(n) for n in needed]
        width = len(self.column_names)
        values: list[list[float]] = []
        lines: list[int] = []
        for row_line, row in _records(data, self.delimiter):
            problem = None
            if len(row) != width:
                problem = f"expected {width} fields, got {len(row)}"
            else:
                try:
                    values.append([float(row[i]) for i in index])
                    lines.append(row_line)
                    continue
                except ValueError:
                    bad = next(i for i in index if not _is_number(row[i]))
                    problem = (
                        f"column {self.column_names[bad]!r}: expected a number, got {row[bad]!r}"
                    )
            self._bad_row(
                path,
                f"{path} line {first_line() + row_line}",
                problem,
                raise_it=self.on_bad_rows == "raise",
                hint="pass on_bad_rows='skip'",
            )
        if not values:
            return None
        self.stats["rows_read"] += len(values)
        matrix = np.asarray(values, dtype=np.float32)
        row_lines = np.asarray(lines)

        def select(names: list[str]) -> np.ndarray:
            return np.ascontiguousarray(matrix[:, [needed.index(n) for n in names]])

        return Chunk(
            self.columns.parts(select),
            lambda i: f"{path} line {first_line() + int(row_lines[i])}",
        )


def _constant(value: int) -> Callable[[], int]:
    return lambda: value


def _records(data: bytes, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The rows of `data` but blank lines, each with the 0-based line where it starts."""
    reader = _csv.reader(
        io.StringIO(data.decode("utf-8", "replace"), newline=""), delimiter=delimiter
    )
    line = 0
    for row in reader:
        row_line, line = line, reader.line_num
        if row and not (len(row) == 1 and not row[0].strip()):
            yield row_line, row


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv(
    paths_or_glob: PathsOrGlob,
    target: str | Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    **options: Any,
) -> CsvSource:
    """Stream batches from CSV files larger than memory.

    Args:
        paths_or_glob: a file, a glob (`"houses/*.csv"`), a directory or a list;
            `.gz`/`.zst`/`.bz2` files are decompressed on the fly.
        target: the target column, a list of them (y is then 2-D), or None for
            predict-only batches `(x,)`.
        features: feature columns; None means every column but the targets.
        **options: `sample_weight` (column name), `batch_size` (32),
            `shuffle_buffer` (rows; 0 means no shuffling), `shuffle` (shuffle
            the block order; default: when `shuffle_buffer > 0`), `seed`,
            `drop_remainder`, `on_bad_rows` ("raise"/"skip"), `on_nan`
            ("raise"/"skip"), `delimiter`, `x_format` ("array"/"dict"),
            `block_bytes` (8 MiB), `prefetch` (blocks read ahead; 0: no thread),
            `newlines_in_values` (True: quoted fields may hold line breaks, which
            costs one read of each file when the source is made; False, as
            pyarrow's option of that name, skips that read for files known to
            have none, e.g. numeric tables of many GB), `columns` (a list of
            columns read as they are, strings included: batches are
            `(values,)` for one column, `({name: values},)` for several, e.g.
            for `StringLookup.adapt`; see `RawColumns`), `table` (a
            `TableRows`: a raw table encoded as the command does, NOTE
            [ Encoding a raw table ]).

    Returns:
        A `CsvSource`; its `stats` counts rows read and rows skipped this epoch.

    Raises:
        FileNotFoundError: no file matches. ValueError: empty file, columns
        missing or differing between files, malformed rows, an unclosed quote,
        NaN. TypeError: a non-numeric column (without `columns` or `table`).

    Example:
        >>> train = csv("houses/*.csv", target="price", batch_size=256,
        ...             shuffle_buffer=100_000, seed=0)  # doctest: +SKIP
    """
    return CsvSource(paths_or_glob, target, features, **options)
