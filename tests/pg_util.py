"""The PostgreSQL server of the SQL tests (started by `scripts/postgres.sh start`).

Its URI comes from BATCHFIT_TEST_PG, else from the file the script writes
($BATCHFIT_PG_DIR/uri, default /tmp/batchfit-pg/uri). Without a reachable
server a test is skipped with the reason, except under CI=true, where the
server is required and the test fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PASSWORD", "PASSWORD_ROLE", "execute", "ingest", "pg_uri_or_skip", "with_user"]

# the role `scripts/postgres.sh` creates with a password (scram-sha-256)
PASSWORD_ROLE, PASSWORD = "batchfit_pw", "batchfit-secret-pw"


def _configured_uri() -> str | None:
    uri = os.environ.get("BATCHFIT_TEST_PG")
    if uri:
        return uri
    path = Path(os.environ.get("BATCHFIT_PG_DIR", "/tmp/batchfit-pg")) / "uri"
    return path.read_text().strip() if path.exists() else None


def pg_uri_or_skip() -> str:
    """The test server's URI; skip (fail under CI) when there is none or it is down."""
    uri = _configured_uri()
    problem = None
    if uri is None:
        problem = (
            "no PostgreSQL server: run `bash scripts/postgres.sh start` or set BATCHFIT_TEST_PG"
        )
    else:
        try:
            import adbc_driver_postgresql.dbapi as pg

            with pg.connect(uri, autocommit=True) as connection, connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
        except Exception as error:
            problem = f"PostgreSQL at {uri} is not reachable ({error}); run `bash scripts/postgres.sh start`"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI must start the server)")
        pytest.skip(problem)
    assert uri is not None
    return uri


def with_user(uri: str, user: str, password: str | None = None) -> str:
    """`uri` with another user (and password) in place of its own."""
    scheme, rest = uri.split("://", 1)
    host = rest.split("@", 1)[1] if "@" in rest else rest
    return f"{scheme}://{user}{':' + password if password else ''}@{host}"


def ingest(uri: str, name: str, columns: dict[str, Any], key: str | None = "id") -> None:
    """Create table `name` (dropped first) holding `columns`, with `key` as primary key."""
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow as pa

    table = pa.table(columns)
    with pg.connect(uri, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
        cursor.adbc_ingest(name, table, mode="create")
        if key is not None:
            cursor.execute(f'ALTER TABLE "{name}" ADD PRIMARY KEY ("{key}")')
        cursor.execute(f'GRANT ALL ON "{name}" TO {PASSWORD_ROLE}')


def execute(uri: str, *statements: str) -> list[Any]:
    """Run statements on a connection of their own; the last one's rows."""
    import adbc_driver_postgresql.dbapi as pg

    rows: list[Any] = []
    with pg.connect(uri, autocommit=True) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            try:
                rows = cursor.fetchall()
            except Exception:
                rows = []
    return rows
