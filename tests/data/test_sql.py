"""`bf.data.sql` on a real PostgreSQL server and on DuckDB: values, contract, shards, fingerprint."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from contract import check_epochs_and_shards, check_resumable, epoch_batches, rows_of
from pg_util import execute, ingest

import batchfit as bf
from batchfit.data._fingerprint import describe_change


def _data(rows: int = 500, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = rng.permutation(np.arange(rows) * 3 + 7)  # unique, not contiguous, stored unsorted
    return {
        "id": keys.astype(np.int64),
        "a": rng.normal(size=rows),
        "b": rng.integers(-50, 50, rows).astype(np.int32),
        "flag": rng.random(rows) < 0.5,
        "y": rng.normal(size=rows).astype(np.float32),
    }


@pytest.fixture
def pg_table(pg_uri: str) -> tuple[str, str, dict[str, np.ndarray]]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    data = _data()
    ingest(pg_uri, name, data)
    yield pg_uri, name, data
    execute(pg_uri, f'DROP TABLE IF EXISTS "{name}"')


def _expected(data: dict[str, np.ndarray], features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(data["id"])
    x = np.stack([data[f][order].astype(np.float32) for f in features], axis=1)
    return x, data["y"][order].astype(np.float32)


def test_values_in_key_order_match_numpy(pg_table) -> None:
    uri, name, data = pg_table
    source = bf.data.sql(
        f"SELECT * FROM {name}", uri, target="y", order_by="id", batch_size=64, block_rows=100
    )
    assert source.columns is not None and source.columns.features == [
        "a",
        "b",
        "flag",
    ]  # not the key
    batches = list(source)
    assert len(batches) == len(source) == 8 and [len(b[1]) for b in batches] == [64] * 7 + [52]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    want_x, want_y = _expected(data, ["a", "b", "flag"])
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    assert x.dtype == np.float32 and y.shape == (500,)


def test_contract_resume_and_shards_postgres(pg_table) -> None:
    uri, name, data = pg_table

    def factory(**extra):
        return bf.data.sql(
            f"SELECT id, a, b, y FROM {name} WHERE b > -40",
            uri,
            target="y",
            features=["id", "a", "b"],
            order_by="id",
            batch_size=16,
            block_rows=37,
            shuffle_buffer=50,
            seed=5,
            **extra,
        )

    check_resumable(factory)
    check_resumable(lambda: factory(prefetch=0))
    want = np.sort(data["id"][data["b"] > -40]).astype(np.float32)
    check_epochs_and_shards(factory, lambda batches: rows_of(batches, 0, 0), want, worlds=(2, 3, 7))


def test_shuffle_is_seeded_and_changes_with_epoch(pg_table) -> None:
    uri, name, _ = pg_table

    def ids(seed: int, epoch: int) -> np.ndarray:
        source = bf.data.sql(
            f"SELECT * FROM {name}",
            uri,
            target="y",
            features=["id"],
            order_by="id",
            batch_size=50,
            block_rows=60,
            shuffle_buffer=120,
            seed=seed,
        )
        return rows_of(epoch_batches(source, epoch))

    first = ids(1, 0)
    np.testing.assert_array_equal(first, ids(1, 0))
    assert not np.array_equal(first, ids(1, 1)) and not np.array_equal(first, ids(2, 0))
    assert not np.array_equal(first, np.sort(first))
    np.testing.assert_array_equal(np.sort(first), np.sort(ids(1, 1)))


def test_shards_of_a_tiny_result_each_get_rows(pg_table) -> None:
    uri, name, _ = pg_table
    source = bf.data.sql(
        f"SELECT * FROM {name} WHERE id < 40",
        uri,
        target="y",
        features=["id"],
        order_by="id",
        batch_size=4,
    )
    parts = [rows_of(list(source.shard(r, 4))) for r in range(4)]
    assert all(len(p) for p in parts)
    assert sorted(np.concatenate(parts)) == [7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 37]


def test_fingerprint_sees_inserts_deletes_and_growth(pg_table) -> None:
    uri, name, _ = pg_table

    def fingerprint():
        return bf.data.sql(
            f"SELECT * FROM {name}", uri, target="y", order_by="id", block_rows=50
        ).fingerprint()

    before = fingerprint()
    assert before["count"] == 500 and before["max_key"] == repr(499 * 3 + 7)
    assert describe_change(before, fingerprint()) is None
    execute(uri, f"INSERT INTO {name} VALUES (100000, 0.5, 1, true, 1.0)")
    grown = fingerprint()
    assert describe_change(before, grown) == "the query returns 501 rows now, 500 in the backup"
    execute(uri, f"DELETE FROM {name} WHERE id = 10")
    moved = fingerprint()  # same count as at first, but the largest key and the boundaries moved
    assert (
        describe_change(before, moved) == "the query's largest id is 100000 now, 1504 in the backup"
    )
    execute(
        uri,
        f"DELETE FROM {name} WHERE id = 100000",
        f"INSERT INTO {name} VALUES (500, 0.5, 1, true, 1.0)",
    )
    same_ends = fingerprint()  # same count and largest key, but keys 13..499 moved down a rank
    assert "rows were added, removed or rekeyed" in describe_change(before, same_ends)


def test_without_order_by_reads_in_sequence_and_refuses_the_rest(pg_table) -> None:
    uri, name, data = pg_table
    source = bf.data.sql(f"SELECT a, y FROM {name} ORDER BY id", uri, target="y", batch_size=100)
    batches = list(source)
    assert source.num_batches is None and source.fingerprint() is None
    want_x, want_y = _expected(data, ["a"])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), want_x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), want_y)
    source.load_state_dict({"epoch": 3, "batches_done": 0, "seed": 0})  # an epoch boundary is fine
    with pytest.raises(
        ValueError,
        match=r"cannot resume query 'SELECT a, y FROM .*' on postgresql:.* in the middle of an epoch without order_by",
    ):
        source.load_state_dict({"epoch": 0, "batches_done": 2, "seed": 0})
    with pytest.raises(ValueError, match=r"cannot be split between ranks without order_by"):
        source.shard(0, 2)
    with pytest.raises(
        ValueError, match=r"shuffling query 'SELECT a, y FROM .*' on postgresql:.* needs order_by"
    ):
        bf.data.sql(f"SELECT a, y FROM {name}", uri, target="y", shuffle_buffer=10)


# -- DuckDB ---------------------------------------------------------------------------


def _lake(tmp_path: Path, data: dict[str, np.ndarray], parts: int = 3) -> Path:
    lake = tmp_path / "lake"
    lake.mkdir()
    table = pa.table(data)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), lake / f"part-{i}.parquet", row_group_size=64)
    return lake


def test_duckdb_over_parquet_matches_bf_parquet(tmp_path: Path) -> None:
    data = _data(700, 3)
    lake = _lake(tmp_path, data)
    query = f"SELECT * FROM read_parquet('{lake}/*.parquet')"
    source = bf.data.sql(
        query, "duckdb://", target="y", order_by="id", batch_size=100, block_rows=128
    )
    got = list(source)
    want_x, want_y = _expected(data, ["a", "b", "flag"])
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), want_x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), want_y)
    files = bf.data.parquet(
        str(lake / "*.parquet"), target="y", features=["a", "b", "flag"], batch_size=700
    )
    ((fx, _),) = list(files)
    order = np.argsort(np.argsort(data["id"]))
    np.testing.assert_array_equal(fx, want_x[order])  # the same values, in the files' order

    def factory():
        return bf.data.sql(
            query,
            "duckdb://",
            target="y",
            features=["id", "a"],
            order_by="id",
            batch_size=32,
            block_rows=90,
            shuffle_buffer=100,
            seed=2,
        )

    check_resumable(factory)
    check_epochs_and_shards(
        factory, lambda b: rows_of(b, 0, 0), np.sort(data["id"]).astype(np.float32)
    )


def test_duckdb_database_file_and_connection(tmp_path: Path) -> None:
    import duckdb

    data = _data(200, 4)
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as connection:
        frame = pa.table(data)  # noqa: F841  (read by name by DuckDB's replacement scan)
        connection.execute("CREATE TABLE sales AS SELECT * FROM frame")
    want_x, want_y = _expected(data, ["a"])
    for uri in (f"duckdb://{path}", str(path)):
        source = bf.data.sql(
            "SELECT id, a, y FROM sales", uri, target="y", order_by="id", batch_size=64
        )
        got = list(source)
        np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), want_x)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), want_y)
        # the source keeps no DuckDB connection: another process can write the file
        writer = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('CREATE TABLE w (a INT)')"
        done = subprocess.run([sys.executable, "-c", writer, str(path)], capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        with duckdb.connect(str(path)) as connection:
            connection.execute("DROP TABLE w")
        assert len(list(source)) == len(got)  # and the next epoch reads as before
    memory = duckdb.connect()
    memory.execute("CREATE TABLE t AS SELECT range AS id, range * 0.5 AS v FROM range(90)")
    source = bf.data.sql(
        "SELECT * FROM t",
        memory,
        target="v",
        features=["id"],
        order_by="id",
        batch_size=10,
        shuffle_buffer=40,
        seed=0,
    )
    got = np.concatenate([b[1] for b in source])
    np.testing.assert_array_equal(np.sort(got), np.arange(90, dtype=np.float32) * 0.5)
    check_resumable(
        lambda: bf.data.sql(
            "SELECT * FROM t",
            memory,
            target="v",
            features=["id"],
            order_by="id",
            batch_size=10,
            block_rows=20,
            shuffle_buffer=40,
            seed=0,
        )
    )


def test_postgres_numeric_and_nullable_columns(pg_uri: str) -> None:
    name = f"t_{uuid.uuid4().hex[:10]}"
    execute(
        pg_uri,
        f'DROP TABLE IF EXISTS "{name}"',
        f'CREATE TABLE "{name}" (id int PRIMARY KEY, price numeric(10, 2), qty smallint, y real)',
        f'INSERT INTO "{name}" VALUES (1, 10.25, 3, 1), (2, -0.5, NULL, 0), (3, 7, 1, 1)',
    )
    try:
        source = bf.data.sql(
            f"SELECT * FROM {name}", pg_uri, target="y", order_by="id", batch_size=8, on_nan="skip"
        )
        ((x, y),) = list(source)
        np.testing.assert_array_equal(x, np.array([[10.25, 3], [7, 1]], dtype=np.float32))
        np.testing.assert_array_equal(y, [1, 1])
        assert source.stats["nan_rows_skipped"] == 1
    finally:
        execute(pg_uri, f'DROP TABLE IF EXISTS "{name}"')


def test_text_and_date_keys_with_quotes(tmp_path: Path) -> None:
    import datetime

    import duckdb

    words = [f"k'{i:03d}\"" for i in range(60)]  # quotes of both kinds inside the keys
    days = [datetime.date(2020, 1, 1) + datetime.timedelta(days=3 * i) for i in range(60)]
    memory = duckdb.connect()
    keys = pa.table({"word": words[::-1], "day": days[::-1], "v": np.arange(60.0)[::-1]})
    memory.register("keys", keys)
    memory.execute("CREATE TABLE t AS SELECT * FROM keys")
    for key in ("word", "day"):
        source = bf.data.sql(
            "SELECT * FROM t",
            memory,
            target="v",
            features=["v"],
            order_by=key,
            batch_size=7,
            block_rows=9,
            shuffle_buffer=20,
            seed=1,
        )
        assert len(source._units) == 7
        got = np.concatenate([b[1] for b in source])
        np.testing.assert_array_equal(np.sort(got), np.arange(60.0, dtype=np.float32))
        parts = [np.concatenate([b[1] for b in source.shard(r, 2)]) for r in range(2)]
        np.testing.assert_array_equal(
            np.sort(np.concatenate(parts)), np.arange(60.0, dtype=np.float32)
        )
