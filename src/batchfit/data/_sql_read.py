"""Helpers of `sql(...)`: the reading thread's session, key literals, Arrow columns as numbers.

Also `sample_frame(query, uri)`: the first rows of a query as a polars frame,
for choosing column kinds before a raw-table pass (the command's `--sql`).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from batchfit.data._sql_connect import Connection, Database, short_query

__all__ = [
    "DATABASE_ERRORS",
    "Session",
    "Spare",
    "check_numeric",
    "database_iter",
    "numeric_column",
    "plain_column",
    "sample_frame",
    "sql_literal",
]


class Spare:
    """One idle connection kept between the source's making and its epochs.

    Connecting costs about as much as reading 100,000 rows (measured, local
    PostgreSQL), and an epoch cannot start its first batch before it, so a
    connection whose reading ended cleanly waits here for the next epoch. A
    connection left mid-result, or after an error, is closed instead. The
    spare is closed with the source (`close()`) or when it is collected.
    `keep=False` (DuckDB: connecting is cheap in process, and an open
    connection holds the database file's lock) closes every connection given.
    """

    def __init__(self, keep: bool = True) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._pid = os.getpid()

    def take(self) -> Connection | None:
        with self._lock:
            connection, self._connection = self._connection, None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
            if connection is not None and self._pid != os.getpid():
                return None  # a forked copy: the socket is the parent's, leave it alone
        return connection

    def give(self, connection: Connection) -> None:
        with self._lock:
            if self._keep and self._connection is None:
                self._pid = os.getpid()
                self._connection = connection
                self._finalizer = weakref.finalize(self, connection.close)
                return
        connection.close()  # one spare is enough

    def close(self) -> None:
        connection = self.take()
        if connection is not None:
            connection.close()


class Session:
    """The reading thread's connection: the spare or a new one, reopened after a loss."""

    def __init__(self, open_connection: Callable[[], Connection], spare: Spare) -> None:
        self._open = open_connection
        self._spare = spare
        self._connection: Connection | None = None

    def connection(self) -> Connection:
        if self._connection is None:
            spare = self._spare.take()
            if spare is not None and spare.alive():
                self._connection = spare
            else:
                if spare is not None:
                    spare.close()
                self._connection = self._open()
        return self._connection

    def reset(self) -> None:
        self.close()

    def release(self) -> None:
        """Reading ended cleanly: keep the connection for the next epoch."""
        if self._connection is not None:
            self._spare.give(self._connection)
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def sql_literal(value: Any) -> str | None:
    """`value` as a SQL literal when that is exact and safe (ints, finite floats, plain text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and np.isfinite(value):
        return repr(value)
    if isinstance(value, str) and "\\" not in value and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


def database_iter(reader: Any, run: Callable[[Callable[[], Any]], Any]) -> Iterator[Any]:
    """The batches of `reader`, each fetched through `run` (which names the query on errors)."""
    while True:
        batch = run(lambda: next(reader, None))
        if batch is None:
            return
        yield batch


def _database_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = []
    try:
        import adbc_driver_manager

        errors.append(adbc_driver_manager.Error)
    except ImportError:
        pass
    try:
        import duckdb

        errors.append(duckdb.Error)
    except ImportError:
        pass
    return tuple(errors)


# the drivers' own error classes (both are dependencies; a missing one is skipped)
DATABASE_ERRORS = _database_errors()


def check_numeric(name: str, kind: Any, where: str) -> None:
    import pyarrow as pa

    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or _is_pg_numeric(kind)
        or pa.types.is_null(kind)
    ):
        return
    raise TypeError(
        f"column {name!r} of query {where} has type {kind}; expected numbers. "
        "Leave it out with features=[...], or read it as a raw table with table=..."
    )


def _is_pg_numeric(kind: Any) -> bool:
    # ADBC hands PostgreSQL's NUMERIC over as an opaque extension over its text
    return getattr(kind, "type_name", None) == "numeric" and hasattr(kind, "storage_type")


def plain_column(column: Any) -> Any:
    """PostgreSQL NUMERIC and decimals as float64; other columns as they come."""
    import pyarrow as pa

    if _is_pg_numeric(column.type):
        return column.storage.cast(pa.float64())
    if pa.types.is_decimal(column.type) or pa.types.is_null(column.type):
        return column.cast(pa.float64())
    return column


def numeric_column(column: Any) -> np.ndarray:
    """A numeric Arrow column as a NumPy array; NULLs become NaN (see `check_finite`)."""
    import pyarrow as pa

    column = plain_column(column)
    if column.null_count:
        column = column.cast(pa.float64()).fill_null(float("nan"))
    return column.to_numpy(zero_copy_only=False)


def sample_frame(query: str, uri: Any, rows: int = 10_000) -> Any:
    """The first `rows` rows of `query` as a polars frame: its columns and a sample of values.

    For choosing column kinds (`sample_kinds`) before a raw-table pass; NUMERIC
    and decimals come as float64. Errors name the query, with the password masked.
    """
    import polars as pl
    import pyarrow as pa

    database = Database(uri)
    text = query.strip().rstrip(";").strip()
    connection = database.connect()
    try:
        result = connection.fetch_all(f"SELECT * FROM ({text}) AS bf_query LIMIT {int(rows)}")
    except Exception as error:
        if not isinstance(error, (OSError, *DATABASE_ERRORS)):
            raise
        message = database.scrub(str(error)).strip()
        raise ValueError(
            f"query {short_query(text)!r} on {database.masked} failed: {message}"
        ) from None
    finally:
        connection.close()
    plain = pa.table({n: plain_column(result.column(n)) for n in result.column_names})
    frame = pl.from_arrow(plain)
    assert isinstance(frame, pl.DataFrame)
    return frame
