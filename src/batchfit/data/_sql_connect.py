"""Databases behind `sql(...)`: URIs, masked passwords, connections, Arrow readers.

Two backends stream Arrow record batches, so no row passes through Python:
- PostgreSQL through ADBC (`adbc-driver-postgresql`, libpq inside: the
  server's binary COPY becomes Arrow batches in C). libpq reads `PGPASSWORD`
  and `~/.pgpass` itself, so a URI needs no password.
- DuckDB in process (`duckdb://` in memory, `duckdb:///path/file.duckdb`, a
  path ending in `.duckdb`/`.db`, or an open `duckdb` connection, whose
  database each reading thread opens a cursor on).

Credentials: the URI's password is kept only in the private `Database.uri`;
everything shown (`masked`, errors, reprs, state, fingerprints) has `***` in
its place, and driver messages pass through `scrub` before they are raised.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

__all__ = ["Database", "mask_uri", "quote_identifier", "short_query"]

_POSTGRES_SCHEMES = ("postgresql", "postgres")


def mask_uri(uri: str) -> str:
    """`uri` with its password (in the user part or a `password=` parameter) as `***`."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparsable database URI>"
    if parts.password is None and "password=" not in parts.query.lower():
        return uri
    netloc = parts.netloc
    if parts.password is not None:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _passwords(uri: str) -> list[str]:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return []
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return sorted({p for raw in found for p in (raw, unquote(raw)) if p}, key=len, reverse=True)


def short_query(query: str, limit: int = 200) -> str:
    """The query on one line, cut to `limit` characters, for messages."""
    flat = " ".join(query.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def quote_identifier(name: str) -> str:
    """`name` as a quoted SQL identifier (PostgreSQL and DuckDB agree on `"..."`)."""
    return '"' + name.replace('"', '""') + '"'


class Database:
    """Where the rows come from: the backend, the URI (private) and how to show it."""

    def __init__(self, uri: Any) -> None:
        self.connection: Any = None
        if _is_duckdb_connection(uri):
            self.kind, self.uri, self.path = "duckdb", "duckdb://<connection>", None
            self.connection = uri
        elif not isinstance(uri, (str, os.PathLike)):
            raise TypeError(
                "uri must be a 'postgresql://...' or 'duckdb://...' URI, a DuckDB file path "
                f"or a duckdb connection, got {type(uri).__name__}"
            )
        else:
            text = os.fspath(uri)
            scheme = text.split("://", 1)[0].lower() if "://" in text else ""
            if scheme in _POSTGRES_SCHEMES:
                self.kind, self.uri, self.path = "postgresql", text, None
            elif scheme == "duckdb":
                rest = text.split("://", 1)[1]
                self.kind, self.uri = "duckdb", text
                self.path = rest if rest not in ("", ":memory:") else ":memory:"
            elif scheme:
                raise ValueError(
                    f"unsupported database {mask_uri(text)!r}: expected a 'postgresql://' or "
                    "'duckdb://' URI or a DuckDB file path"
                )
            else:
                self.kind, self.uri, self.path = "duckdb", f"duckdb://{text}", text
        self.masked = mask_uri(self.uri)
        self._secrets = _passwords(self.uri) if self.kind == "postgresql" else []

    @property
    def retries_help(self) -> bool:
        """Whether a dropped connection is worth retrying (a server, not a process)."""
        return self.kind == "postgresql"

    def scrub(self, text: str) -> str:
        """`text` without the password, wherever a driver put it."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text.replace(self.uri, self.masked) if self.uri != self.masked else text

    def connect(self) -> Connection:
        """A new connection (each reading thread opens its own)."""
        try:
            if self.kind == "postgresql":
                import adbc_driver_postgresql.dbapi as pg

                return Connection(pg.connect(self.uri, autocommit=True), "postgresql")
            import duckdb

            if self.connection is not None:
                return Connection(self.connection.cursor(), "duckdb")
            path = self.path or ":memory:"
            if path != ":memory:" and not os.path.exists(path):
                raise FileNotFoundError(f"no DuckDB database at {path!r}")
            return Connection(duckdb.connect(path), "duckdb")
        except FileNotFoundError:
            raise
        except Exception as error:
            raise ConnectionError(
                f"could not connect to {self.masked}: {self.scrub(str(error)).strip()}"
            ) from None

    def __repr__(self) -> str:
        return f"Database({self.masked!r})"


class Connection:
    """One open connection: run a query, stream its Arrow batches."""

    def __init__(self, handle: Any, kind: str) -> None:
        self.handle, self.kind = handle, kind
        self._cursor: Any = None
        self._reader: Any = None

    def stream(self, query: str, params: Sequence[Any] = (), rows: int = 65_536) -> Iterator[Any]:
        """A `pyarrow.RecordBatchReader` over the result, never fetched whole."""
        if self.kind == "duckdb":
            relation = self.handle.sql(query, params=list(params) or None)
            if relation is None:
                raise ValueError("the query returns no rows (is it a SELECT?)")
            for name in ("to_arrow_reader", "fetch_arrow_reader", "fetch_record_batch"):
                method = getattr(relation, name, None)
                if method is not None:
                    return iter(method(rows))
            raise RuntimeError("this duckdb has no Arrow reader; install duckdb>=1.1")
        self.close_cursor()
        self._cursor = self.handle.cursor()
        self._cursor.execute(query, tuple(params) or None)
        self._reader = self._cursor.fetch_record_batch()
        return iter(self._reader)

    def fetch_all(self, query: str, params: Sequence[Any] = ()) -> Any:
        """A small result as a `pyarrow.Table` (schemas, counts, unit boundaries)."""
        if self.kind == "duckdb":
            relation = self.handle.sql(query, params=list(params) or None)
            if relation is None:
                raise ValueError("the query returns no rows (is it a SELECT?)")
            method = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
            return method()
        cursor = self.handle.cursor()
        try:
            cursor.execute(query, tuple(params) or None)
            return cursor.fetch_arrow_table()
        finally:
            cursor.close()

    def alive(self) -> bool:
        """Whether the connection still answers (a spare may have been dropped meanwhile)."""
        try:
            self.fetch_all("SELECT 1")
        except Exception:
            return False
        return True

    def close_cursor(self) -> None:
        if self._reader is not None:
            # first: a reader left mid-result (an error, a traceback holding it) keeps
            # the statement open, and the connection then refuses to close
            with contextlib.suppress(Exception):
                self._reader.close()
            self._reader = None
        if self._cursor is not None:
            with contextlib.suppress(Exception):  # a dead connection's cursor: nothing to free
                self._cursor.close()
            self._cursor = None

    def close(self) -> None:
        self.close_cursor()
        with contextlib.suppress(Exception):  # already dropped by the server
            self.handle.close()


def _is_duckdb_connection(value: Any) -> bool:
    return type(value).__module__.split(".")[0] in ("duckdb", "_duckdb") and hasattr(
        value, "cursor"
    )
