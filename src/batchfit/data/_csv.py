"""`csv(...)`: stream CSV files (plain, gzip, zstd) block by block.

Parsing uses polars on byte blocks (measured faster than pyarrow's
`open_csv` here, see benchmarks/RESULTS_data.md). A plain file is cut at line
breaks into blocks of about `block_bytes`; the blocks are the units that get
shuffled and sharded (NOTE [ Order and sharding ]), so no rank reads another
rank's blocks. A compressed file cannot be cut, so it is one unit read as a
stream. Fields must not contain line breaks (true of numeric CSV).

Malformed rows take a slow path: a block whose fast parse fails or yields a
missing value is re-read with Python's `csv` module, which names the line.
"""

from __future__ import annotations

import csv as _csv
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from batchfit.data._files import PathsOrGlob, compression_of, expand_paths, open_binary
from batchfit.data._nodes import Chunk
from batchfit.data._order import shard_units
from batchfit.data._stream import StreamSource, check_choice, resolve_columns

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
        sample_weight: str | None = None,
        batch_size: int = 32,
        shuffle_buffer: int = 0,
        shuffle: bool | None = None,
        seed: int | None = None,
        drop_remainder: bool = False,
        on_bad_rows: str = "raise",
        on_nan: str = "raise",
        delimiter: str = ",",
        x_format: str = "array",
        block_bytes: int = 8 << 20,
        prefetch: int = 2,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            shuffle=shuffle,
            seed=seed,
            drop_remainder=drop_remainder,
            on_nan=on_nan,
            x_format=x_format,
            prefetch=prefetch,
            name="csv",
        )
        check_choice("on_bad_rows", on_bad_rows, ("raise", "skip"))
        if not isinstance(block_bytes, int) or block_bytes < 1:
            raise ValueError(f"block_bytes must be a positive integer, got {block_bytes!r}")
        if len(delimiter) != 1:
            raise ValueError(f"delimiter must be one character, got {delimiter!r}")
        self.on_bad_rows, self.delimiter, self.block_bytes = on_bad_rows, delimiter, block_bytes
        self.files = expand_paths(paths_or_glob, "CSV")
        headers = [_read_header(path, delimiter) for path in self.files]
        self.column_names, _ = headers[0]
        for path, (names, _) in zip(self.files[1:], headers[1:], strict=True):
            if names != self.column_names:
                raise ValueError(
                    f"columns differ between {self.files[0]} and {path}: "
                    f"{self.column_names} versus {names}"
                )
        self.columns = resolve_columns(
            self.column_names, target, features, sample_weight, self.files[0]
        )
        self._check_types()
        import polars as pl

        needed = set(self.columns.needed)
        self._schema = {n: pl.Float32 if n in needed else pl.String for n in self.column_names}
        self._all_units: list[tuple[int, int, int | None]] = []
        for index, (path, (_, header_end)) in enumerate(zip(self.files, headers, strict=True)):
            self._all_units.extend(_cut(index, path, header_end, block_bytes))
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
            _, header_end = _read_header(path, self.delimiter)
            units.extend(_cut(index, path, header_end, block))
        # still fewer (tiny or compressed files, read whole): some shards stay empty,
        # which training under torchrun reports on every rank at once
        return units

    def _rows_may_drop(self) -> bool:
        return True  # row counts are unknown before parsing anyway

    def _stat_keys(self) -> tuple[str, ...]:
        return ("rows_read", "bad_rows_skipped", "nan_rows_skipped")

    def _check_types(self) -> None:
        """Refuse non-numeric columns now, not after an hour of training."""
        import polars as pl

        assert self.columns is not None
        path = self.files[0]
        with open_binary(path) as stream:
            sample = stream.read(_SAMPLE_BYTES)
        if len(sample) == _SAMPLE_BYTES:
            sample = sample[: sample.rfind(b"\n") + 1]
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
        # A compressed file: a stream of blocks cut at line breaks.
        rows, line = 0, 2
        with open_binary(path) as stream:
            stream.read(start)  # the header
            rest = b""
            while True:
                block = stream.read(self.block_bytes)
                data = rest + block
                if block:
                    cut = data.rfind(b"\n") + 1
                    data, rest = data[:cut], data[cut:]
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

        return Chunk(self.columns.parts(select), lambda i: f"{path} line {first_line() + i}")

    def _parse_slow(self, data: bytes, path: str, first_line: Callable[[], int]) -> Chunk | None:
        """Parse row by row, naming the line of each malformed row."""
        assert self.columns is not None
        needed = self.columns.needed
        index = [self.column_names.index(n) for n in needed]
        width = len(self.column_names)
        reader = _csv.reader(
            io.StringIO(data.decode("utf-8", "replace"), newline=""), delimiter=self.delimiter
        )
        values: list[list[float]] = []
        lines: list[int] = []
        line = 0
        for row in reader:
            row_line, line = line, reader.line_num  # 0-based line where the row starts
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
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
            where = f"{path} line {first_line() + row_line}"
            if self.on_bad_rows == "raise":
                raise ValueError(
                    f"malformed row at {where}: {problem} (pass on_bad_rows='skip' to skip it)"
                )
            self.stats["bad_rows_skipped"] += 1
            if path not in self._logged:
                self._logged.add(path)
                logger.warning(
                    "skipping malformed rows in %s, first at %s: %s", path, where, problem
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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_header(path: str, delimiter: str) -> tuple[list[str], int]:
    """Column names and the byte offset just past the header line."""
    with open_binary(path) as stream:
        head = b""
        while b"\n" not in head:
            block = stream.read(1 << 16)
            if not block:
                break
            head += block
    if not head.strip():
        raise ValueError(f"{path} is empty: expected a header line and at least one row")
    end = head.find(b"\n") + 1 or len(head)
    line = head[:end].decode("utf-8-sig").rstrip("\r\n")
    names = next(_csv.reader([line], delimiter=delimiter))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate column names {duplicates} in the header")
    if compression_of(path) is None and os.path.getsize(path) <= end:
        raise ValueError(f"{path} has a header but no rows: expected at least one row")
    return names, end


def _cut(index: int, path: str, header_end: int, block_bytes: int) -> list[Any]:
    """Units of one file: `(file, start, stop)` byte ranges ending at line breaks."""
    if compression_of(path) is not None:
        return [(index, header_end, None)]
    size = os.path.getsize(path)
    units, start = [], header_end
    with open(path, "rb") as f:
        while start < size:
            stop = start + block_bytes
            if stop >= size:
                stop = size
            else:
                f.seek(stop - 1)
                while True:
                    block = f.read(1 << 16)
                    found = block.find(b"\n")
                    if found >= 0 or not block:
                        stop = f.tell() - len(block) + found + 1 if found >= 0 else size
                        break
            units.append((index, start, stop))
            start = stop
    return units


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
            `block_bytes` (8 MiB), `prefetch` (blocks read ahead; 0: no thread).

    Returns:
        A `CsvSource`; its `stats` counts rows read and rows skipped this epoch.

    Raises:
        FileNotFoundError: no file matches. ValueError: empty file, columns
        missing or differing between files, malformed rows, NaN. TypeError:
        a non-numeric column.

    Example:
        >>> train = csv("houses/*.csv", target="price", batch_size=256,
        ...             shuffle_buffer=100_000, seed=0)  # doctest: +SKIP
    """
    return CsvSource(paths_or_glob, target, features, **options)
