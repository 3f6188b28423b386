"""The files behind the `batchfit` command: which ones, their columns, a source on them.

Finding files (`expand_paths`), reading a CSV header (`read_header`) and
telling a compressed file (`compression_of`) are `batchfit.data`'s own
helpers; what stays here is the command's part: choosing CSV or Parquet by
the file name, errors that name the flag, `--drop`, and a row estimate for
the progress bar.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

from batchfit.cli.errors import CliError
from batchfit.data import Source
from batchfit.data._csv_cuts import read_header
from batchfit.data._files import compression_of, expand_paths

__all__ = [
    "expand_files",
    "query_columns",
    "query_of",
    "file_kind",
    "header_of",
    "open_source",
    "resolve_features",
    "train_rows_estimate",
]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zst", ".csv.bz2", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")


def expand_files(patterns: Sequence[str], what: str) -> list[str]:
    """Files named by paths, globs or directories (a shell may already have expanded them).

    `batchfit.data`'s `expand_paths` finds them; a directory contributes its
    CSV and Parquet files only. Errors name `what` (the flag), and a mix of
    CSV and Parquet files is refused.
    """
    files: list[str] = []
    for pattern in patterns:
        try:
            found = expand_paths(pattern, "data")
        except FileNotFoundError:
            raise CliError(_not_found(pattern, what)) from None
        if os.path.isdir(pattern):
            found = [path for path in found if file_kind(path, None)]
            if not found:
                raise CliError(_not_found(pattern, what))
        files.extend(found)
    if not files:
        raise CliError(f"{what}: no files given")
    kinds = {file_kind(f, what) for f in files}
    if len(kinds) > 1:
        raise CliError(f"{what}: mix of CSV and Parquet files; give one kind at a time")
    return files


def _not_found(pattern: str, what: str) -> str:
    """Why `pattern` names no data file, in the words of the flag `what`."""
    if os.path.isdir(pattern):
        return f"{what}: directory {pattern!r} holds no .csv or .parquet files"
    if glob.has_magic(pattern):
        return f"{what}: {pattern!r} matches no files"
    return f"{what}: file {pattern!r} does not exist"


def file_kind(path: str, what: str | None) -> str | None:
    """'csv' or 'parquet' from the file name; None (or an error naming `what`) otherwise."""
    name = path.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if what is None:
        return None
    raise CliError(
        f"{what}: cannot tell the format of {path!r}; expected a name ending in "
        f"{', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}"
    )


def header_of(path: str) -> list[str]:
    """Column names of a CSV or Parquet file, read without reading the data.

    A CSV header is read by `batchfit.data`'s CSV reader (quotes, compression,
    an empty file or one without rows are its errors). A Parquet schema is
    read here: `batchfit.data` has no helper for it yet.
    """
    if file_kind(path, "data") == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as e:
            raise CliError(f"{path} is not a readable Parquet file: {e}") from None
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    return read_header(path, delimiter)[0]


def resolve_features(
    columns: Sequence[str],
    target: Sequence[str],
    features: Sequence[str] | None,
    drop: Sequence[str],
    where: str,
) -> list[str]:
    """The feature columns: given ones, or every column but the targets and dropped ones."""
    for kind, names in (("--target", target), ("--features", features or []), ("--drop", drop)):
        missing = [n for n in names if n not in columns]
        if missing:
            raise CliError(
                f"{kind}: column(s) {missing} not in {where}; its columns are {list(columns)}"
            )
    if features:
        clash = sorted(set(features) & set(target))
        if clash:
            raise CliError(f"--features: {clash} is also the --target")
        return list(features)
    chosen = [c for c in columns if c not in target and c not in drop]
    if not chosen:
        raise CliError(f"no feature columns left in {where} after --target and --drop")
    return chosen


def open_source(
    files: Sequence[str],
    target: Sequence[str] | None,
    features: Sequence[str],
    *,
    batch_size: int,
    shuffle_buffer: int = 0,
    seed: int = 0,
    prefetch: int = 2,
    table: Any = None,
    sql: tuple[str, str, str] | None = None,
) -> Source:
    """A streaming `batchfit.data.csv` or `.parquet` source, chosen by file extension.

    `table` (a `TableRows`) reads the files as a raw table (NOTE [ Encoding a
    raw table ] in `batchfit/data/_table.py`); `sql` (query, URI, key) reads a
    query through `batchfit.data.sql` instead of `files`.
    """
    import batchfit as bf

    target_arg: str | list[str] | None = None
    if target:
        target_arg = target[0] if len(target) == 1 else list(target)
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "shuffle_buffer": shuffle_buffer,
        "seed": seed,
        "prefetch": prefetch,
    }
    if table is not None:
        options["table"] = table
    if sql is not None:
        query, uri, key = sql
        return bf.data.sql(query, uri, target_arg, list(features), order_by=key, **options)
    kind = file_kind(files[0], "data")
    if kind == "csv":
        if files[0].lower().endswith(".tsv"):
            options["delimiter"] = "\t"
        return bf.data.csv(list(files), target_arg, list(features), **options)
    return bf.data.parquet(list(files), target_arg, list(features), **options)


def query_of(settings: Any) -> tuple[str, str, str] | None:
    """`(query, URI, key)` of a run reading `--sql` (None for files)."""
    if settings.sql is None:
        return None
    return settings.sql, settings.db, settings.order_by


def query_columns(settings: Any) -> Any:
    """A sample of `--sql`'s rows (a polars frame): its columns and values to type them."""
    from batchfit.data._sql import sample_frame

    try:
        return sample_frame(settings.sql, settings.db)
    except (ValueError, ConnectionError, OSError) as e:
        raise CliError(f"--sql: {e}") from None


def train_rows_estimate(files: Sequence[str]) -> int | None:
    """Rows in the files: exact for Parquet, from bytes per row of a sample for plain CSV."""
    total = 0
    for path in files:
        if file_kind(path, "data") == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
            continue
        if compression_of(path) is not None:
            return None
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            sample = f.read(1 << 20)
        lines = sample.count(b"\n")
        if lines <= 1:
            total += 1
            continue
        per_row = len(sample[: sample.rfind(b"\n") + 1]) / lines
        total += max(1, round(size / per_row) - 1)
    return total
