"""`bf.data.sql` on bad input and lost connections, and credentials never shown."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pg_util import PASSWORD, PASSWORD_ROLE, execute, ingest, with_user

import batchfit as bf


@pytest.fixture
def table(pg_uri: str):
    name = f"t_{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(0)
    ids = np.arange(1, 301, dtype=np.int64)
    ingest(pg_uri, name, {"id": ids, "x": rng.normal(size=300), "y": ids * 0.5})
    yield pg_uri, name
    execute(pg_uri, f'DROP TABLE IF EXISTS "{name}"')


def test_a_failing_query_is_named(table) -> None:
    uri, _name = table
    with pytest.raises(
        ValueError, match=r"query 'SELEC x FROM t' on postgresql://.* failed: .*syntax error"
    ):
        bf.data.sql("SELEC x FROM t", uri, target="x")
    with pytest.raises(
        ValueError, match=r"query 'SELECT \* FROM no_such_table' .* failed: .*does not exist"
    ):
        bf.data.sql("SELECT * FROM no_such_table", uri, target="x")
    with pytest.raises(ValueError, match=r"query 'SELEC 1' on duckdb://.* failed: .*syntax error"):
        bf.data.sql("SELEC 1", "duckdb://", target="x")


def test_missing_columns_keys_and_types_are_named(table) -> None:
    uri, name = table
    query = f"SELECT * FROM {name}"
    with pytest.raises(
        ValueError,
        match=rf"order_by column 'key' not found in query 'SELECT \* FROM {name}' .*; the columns are \['id', 'x', 'y'\]",
    ):
        bf.data.sql(query, uri, target="y", order_by="key")
    with pytest.raises(ValueError, match=r"target column\(s\) \['price'\] not found in query"):
        bf.data.sql(query, uri, target="price", order_by="id")
    with pytest.raises(
        ValueError,
        match=r"order_by column 'k' is not unique in query .*: key 0 is in more than one row; expected a unique key",
    ):
        bf.data.sql(f"SELECT id % 100 AS k, x, y FROM {name}", uri, target="y", order_by="k")
    with pytest.raises(ValueError, match=r"order_by column 'k' is NULL in 150 of 300 rows"):
        bf.data.sql(
            f"SELECT NULLIF(id % 2, 0) * id AS k, x, y FROM {name}", uri, target="y", order_by="k"
        )
    with pytest.raises(
        TypeError,
        match=r"column 'label' of query .* has type string; expected numbers. Leave it out with features",
    ):
        bf.data.sql(
            f"SELECT id, x, 'a' || id AS label, y FROM {name}", uri, target="y", order_by="id"
        )
    with pytest.raises(
        ValueError, match=r"query 'SELECT \* FROM .* WHERE id < 0' .* returns no rows"
    ):
        bf.data.sql(f"{query} WHERE id < 0", uri, target="y", order_by="id")


def test_null_in_a_numeric_column_names_column_and_key(table) -> None:
    uri, name = table
    execute(uri, f"UPDATE {name} SET x = NULL WHERE id = 123")
    source = bf.data.sql(f"SELECT * FROM {name}", uri, target="y", order_by="id", batch_size=50)
    with pytest.raises(
        ValueError,
        match=rf"non-finite value .*nan.* in column 'x' at row id=123 of query 'SELECT \* FROM {name}'.*on_nan='skip'",
    ):
        list(source)
    skipping = bf.data.sql(
        f"SELECT * FROM {name}", uri, target="y", order_by="id", batch_size=50, on_nan="skip"
    )
    y = np.concatenate([b[1] for b in skipping])
    np.testing.assert_array_equal(y, np.delete(np.arange(1, 301) * 0.5, 122).astype(np.float32))
    assert skipping.stats["nan_rows_skipped"] == 1


def test_a_column_changing_type_between_units_is_named(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    pq.write_table(pa.table({"id": np.arange(100), "v": np.arange(100.0)}), lake / "a.parquet")
    source = bf.data.sql(
        f"SELECT * FROM '{lake}/*.parquet'",
        "duckdb://",
        target="v",
        features=["id"],
        order_by="id",
        batch_size=10,
        block_rows=20,
        prefetch=0,
    )
    batches = iter(source)
    first = next(batches)
    np.testing.assert_array_equal(first[1], np.arange(10.0))
    pq.write_table(
        pa.table({"id": np.arange(100), "v": [str(i) for i in range(100)]}), lake / "a.parquet"
    )
    with pytest.raises(
        TypeError,
        match=r"column 'v' of query .SELECT \* FROM .* on duckdb:// changed type between batches: double when the source was made, string now \(rows with id > 19\)",
    ):
        list(batches)


def _backends(uri: str, marker: str) -> list[int]:
    """The server processes whose current or last query holds `marker`."""
    rows = execute(
        uri,
        f"SELECT pid FROM pg_stat_activity WHERE query LIKE '%{marker}%' "
        "AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%'",
    )
    return sorted(int(r[0]) for r in rows)


def _backend_of(uri: str, marker: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pids := _backends(uri, marker):
            return pids[0]
        time.sleep(0.05)
    raise AssertionError("the reading connection was not found")


def test_a_dropped_connection_is_retried_from_the_last_key(table) -> None:
    uri, name = table

    def source(**extra):
        return bf.data.sql(
            f"SELECT * FROM {name} /* reader */",
            uri,
            target="y",
            order_by="id",
            batch_size=20,
            block_rows=100,
            prefetch=0,
            retry_wait=0.05,
            **extra,
        )

    want = list(source())
    reading = source()
    batches = iter(reading)
    got = [next(batches) for _ in range(3)]
    pid = _backend_of(uri, f"{name} /* reader")  # the table's name: no other test's reader
    assert execute(uri, f"SELECT pg_terminate_backend({pid})") == [(True,)]
    got += list(batches)
    assert len(got) == len(want) == 15
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert reading.stats["reconnects"] == 1
    reading.close()  # its connection waits for a next epoch until closed

    failing = source(retries=0)
    batches = iter(failing)
    next(batches)
    execute(uri, f"SELECT pg_terminate_backend({_backend_of(uri, f'{name} /* reader')})")
    with pytest.raises(
        ConnectionError,
        match=rf"lost the connection to postgresql://.* while reading query 'SELECT \* FROM {name} /\* reader \*/' after 0 retries",
    ):
        list(batches)


def _settle(uri: str, marker: str, count: int) -> list[int]:
    """The backends running `marker`'s query once there are `count` (closing is asynchronous)."""
    deadline = time.monotonic() + 10
    while len(pids := _backends(uri, marker)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def test_one_connection_from_making_through_epochs_until_close(table) -> None:
    uri, name = table
    marker = f"{name} /* kept"
    source = bf.data.sql(
        f"SELECT * FROM {name} /* kept */",
        uri,
        target="y",
        order_by="id",
        batch_size=50,
        block_rows=50,
        prefetch=0,  # so that stopping after one batch leaves units unread
    )
    made = _settle(uri, marker, 1)
    assert len(made) == 1  # the connection that made the source waits for the first epoch
    want = [y.copy() for _x, y in source]
    assert _settle(uri, marker, 1) == made  # the epoch read on it, and kept it
    np.testing.assert_array_equal(np.concatenate(want), np.arange(1, 301) * 0.5)

    execute(uri, f"SELECT pg_terminate_backend({made[0]})")  # dropped while idle
    again = [y.copy() for _x, y in source]
    for a, b in zip(again, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert source.stats.get("reconnects", 0) == 0  # a dead spare is replaced, not retried
    kept = _settle(uri, marker, 1)
    assert len(kept) == 1 and kept != made

    batches = iter(source)
    next(batches)
    batches.close()  # stopped mid-result: that connection is closed, not kept
    assert _settle(uri, marker, 0) == []
    list(source)
    assert len(_settle(uri, marker, 1)) == 1
    source.close()
    assert _settle(uri, marker, 0) == []


def test_connection_refused_is_clear_and_masked(pg_uri: str) -> None:
    dead = with_user(pg_uri, "someone", "hunter2-secret").rsplit(":", 1)[0] + ":1/db"
    with pytest.raises(
        ConnectionError,
        match=r"could not connect to postgresql://someone:\*\*\*@127.0.0.1:1/db: .*(refused|failed)",
    ) as error:
        bf.data.sql("SELECT 1 AS x", dead, target="x")
    assert "hunter2-secret" not in str(error.value) and error.value.__cause__ is None
    with pytest.raises(ValueError, match=r"unsupported database 'mysql://root:\*\*\*@db/x'"):
        bf.data.sql("SELECT 1", "mysql://root:pw-secret@db/x")


class _Stop(Exception):
    pass


def _stop_at(batch: int, when: int) -> None:
    if batch == when:
        raise _Stop


def test_password_never_shown_and_pgpassword_works(
    table, tmp_path: Path, monkeypatch, caplog
) -> None:
    from batchfit.callbacks import BackupAndRestore, LambdaCallback
    from batchfit.layers import Dense
    from batchfit.models import Sequential

    uri, name = table
    secret_uri = with_user(uri, PASSWORD_ROLE, PASSWORD)
    source = bf.data.sql(
        f"SELECT * FROM {name}",
        secret_uri,
        target="y",
        order_by="id",
        batch_size=32,
        shuffle_buffer=64,
        seed=0,
        retry_wait=0.01,
    )
    assert source.database == with_user(uri, PASSWORD_ROLE, "***")
    shown = [
        repr(source),
        json.dumps(source.state_dict()),
        json.dumps(source.fingerprint()),
        str(vars(source).get("database")),
    ]
    errors = []
    for bad in (
        lambda: bf.data.sql("SELEC 1", secret_uri),
        lambda: bf.data.sql(f"SELECT * FROM {name}", secret_uri, target="nope"),
        lambda: bf.data.sql(
            "SELECT 1 AS x", with_user(uri, PASSWORD_ROLE, PASSWORD + "-wrong"), target="x"
        ),
    ):
        with pytest.raises((ValueError, ConnectionError)) as error:
            bad()
        errors.append(str(error.value))
    assert "password authentication failed" in errors[2]

    model = Sequential([Dense(4, activation="relu"), Dense(1)])
    model.compile("adam", "mse")
    with caplog.at_level("DEBUG"):
        crash = LambdaCallback(on_train_batch_end=lambda batch, logs: _stop_at(batch, 7))
        with pytest.raises(_Stop):  # the backup stays, as after a crash
            model.fit(
                source,
                epochs=2,
                verbose=0,
                callbacks=[BackupAndRestore(tmp_path / "backup", save_freq=3), crash],
            )
        reading = bf.data.sql(
            f"SELECT * FROM {name} /* secret reader */",
            secret_uri,
            target="y",
            order_by="id",
            batch_size=20,
            block_rows=100,
            prefetch=0,
            retry_wait=0.01,
        )
        batches = iter(reading)
        next(batches)
        pid = _backend_of(uri, f"{name} /* secret reader")
        execute(uri, f"SELECT pg_terminate_backend({pid})")
        assert len(list(batches)) == 14 and reading.stats["reconnects"] == 1
    assert "lost the connection to postgresql://batchfit_pw:***@" in caplog.text
    saved = [p.read_bytes() for p in (tmp_path / "backup").rglob("*") if p.is_file()]
    assert saved
    for text in [*shown, *errors, caplog.text]:
        assert PASSWORD not in text
    for blob in saved:
        assert PASSWORD.encode() not in blob

    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # libpq reads it: no password in the URI
    env_source = bf.data.sql(
        f"SELECT * FROM {name}",
        with_user(uri, PASSWORD_ROLE),
        target="y",
        order_by="id",
        batch_size=300,
    )
    ((_x, y),) = list(env_source)
    np.testing.assert_array_equal(y, np.arange(1, 301) * 0.5)


def test_text_columns_through_table_rows_match_parquet(pg_uri: str, tmp_path: Path) -> None:
    import polars as pl

    from batchfit.data._table import TableSpec
    from batchfit.data._table_kinds import sample_kinds
    from batchfit.data._table_rows import TableRows
    from batchfit.data._table_scan import TableScan

    name = f"t_{uuid.uuid4().hex[:10]}"
    execute(
        pg_uri,
        f'CREATE TABLE "{name}" (id int PRIMARY KEY, n float8, b boolean, s text, y float8)',
        f"""INSERT INTO "{name}" VALUES (1, 1.5, true, 'a', 1.0), (2, NULL, NULL, NULL, 2.0),
            (3, 3.0, false, 'b', 3.5), (4, 4.0, true, 'a', 4.0), (5, 2.0, false, 'b', 0.5)""",
    )
    try:
        features = ["n", "b", "s"]
        query = f"SELECT * FROM {name}"
        frame = bf.data._sql.sample_frame(query, pg_uri)
        assert frame.columns == ["id", *features, "y"] and frame.height == 5
        kinds = sample_kinds(frame, [*features, "y"])
        assert [kinds[n][0] for n in features] == ["number", "bool", "category"]
        scan = TableScan(kinds)
        assert (
            list(
                bf.data.sql(
                    query,
                    pg_uri,
                    "y",
                    features,
                    order_by="id",
                    table=TableRows(features, ["y"], kinds, scan=scan),
                )
            )
            == []
        )
        spec = TableSpec.from_scan(scan, features, ["y"], min_count=1)
        rows = TableRows(features, ["y"], spec.kinds(), spec=spec)
        got = list(
            bf.data.sql(query, pg_uri, "y", features, order_by="id", batch_size=5, table=rows)
        )
        path = tmp_path / "t.parquet"
        pq.write_table(frame.to_arrow(), path)
        want = list(bf.data.parquet(str(path), "y", features, batch_size=5, table=rows))
        assert len(got) == len(want) == 1
        np.testing.assert_array_equal(got[0][0], want[0][0])
        np.testing.assert_array_equal(got[0][1], want[0][1])
        names = spec.output_names()
        np.testing.assert_allclose(got[0][0][:, names.index("n")], [1.5, 2.625, 3.0, 4.0, 2.0])
        assert pl.Series(got[0][1]).to_list() == [1.0, 2.0, 3.5, 4.0, 0.5]
    finally:
        execute(pg_uri, f'DROP TABLE IF EXISTS "{name}"')


def test_rows_changing_during_an_epoch_are_refused(table) -> None:
    uri, name = table
    source = bf.data.sql(
        f"SELECT * FROM {name}",
        uri,
        target="y",
        order_by="id",
        batch_size=50,
        block_rows=100,
        prefetch=0,
    )
    batches = iter(source)
    next(batches)
    execute(uri, f"DELETE FROM {name} WHERE id = 250")
    with pytest.raises(
        ValueError,
        match=r"gave 99 rows with id in \(200, 300\], 100 when the source was made: its rows changed during training",
    ):
        list(batches)


def test_a_resume_on_changed_rows_is_refused(table, tmp_path: Path) -> None:
    from batchfit.callbacks import BackupAndRestore, LambdaCallback
    from batchfit.layers import Dense
    from batchfit.models import Sequential

    uri, name = table

    def fit(crash: bool) -> None:
        source = bf.data.sql(
            f"SELECT * FROM {name}",
            uri,
            target="y",
            order_by="id",
            batch_size=32,
            shuffle_buffer=64,
            seed=0,
        )
        model = Sequential([Dense(1)])
        model.compile("sgd", "mse")
        callbacks = [BackupAndRestore(tmp_path / "backup", save_freq=2)]
        if crash:
            callbacks.append(
                LambdaCallback(on_train_batch_end=lambda batch, logs: _stop_at(batch, 5))
            )
        model.fit(source, epochs=2, verbose=0, callbacks=callbacks)

    with pytest.raises(_Stop):
        fit(crash=True)
    execute(uri, f"INSERT INTO {name} VALUES (1000, 0.5, 500.0)")
    with pytest.raises(
        Exception, match=r"cannot resume: the query returns 301 rows now, 300 in the backup"
    ):
        fit(crash=False)
