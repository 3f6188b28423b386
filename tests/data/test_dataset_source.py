"""`dataset()`: pyarrow datasets (Parquet, CSV, IPC, ORC, partitioned) under the source contract."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.feather as feather
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from contract import (
    assert_batches_equal,
    assert_no_new_threads,
    check_epochs_and_shards,
    check_resumable,
    epoch_batches,
    rows_of,
)
from datafiles import split_csvs, table, write_parquet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batchfit.data as bd
from batchfit.data._fingerprint import describe_change

ROWS = 103
YEARS = (2019, 2020, 2021)
REGIONS = (1, 2)


def _hive(root: Path) -> pd.DataFrame:
    """`ROWS` rows spread over year=/region= directories; returns the whole table."""
    cols = table(ROWS)
    frame = pd.DataFrame(cols)
    frame["year"] = np.array(YEARS)[np.arange(ROWS) % 3].astype(np.int32)
    frame["region"] = np.array(REGIONS)[(np.arange(ROWS) // 3) % 2].astype(np.int32)
    for (year, region), part in frame.groupby(["year", "region"]):
        folder = root / f"year={year}" / f"region={region}"
        folder.mkdir(parents=True)
        pq.write_table(
            pa.Table.from_pandas(part.drop(columns=["year", "region"]), preserve_index=False),
            folder / "part.parquet",
            row_group_size=6,
        )
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("dataset")
    out: dict[str, Any] = {}
    cols = table(ROWS)
    (root / "pq").mkdir()
    out["parquet"] = [
        write_parquet(str(root / "pq" / "a.parquet"), {k: v[:40] for k, v in cols.items()}, 16),
        write_parquet(str(root / "pq" / "b.parquet"), {k: v[40:] for k, v in cols.items()}, 25),
    ]
    out["pq_dir"] = str(root / "pq")
    (root / "csv").mkdir()
    split_csvs(str(root / "csv"), ROWS, 3)
    out["csv_dir"] = str(root / "csv")
    (root / "ipc").mkdir()
    (root / "orc").mkdir()
    for k, (lo, hi) in enumerate(((0, 50), (50, 77), (77, ROWS))):
        part = pa.table({name: values[lo:hi] for name, values in cols.items()})
        feather.write_feather(part, str(root / "ipc" / f"p{k}.arrow"), chunksize=10)
        orc.write_table(part, str(root / "orc" / f"p{k}.orc"))
    out["ipc_dir"], out["orc_dir"] = str(root / "ipc"), str(root / "orc")
    (root / "hive").mkdir()
    out["hive_frame"] = _hive(root / "hive")
    out["hive_dir"] = str(root / "hive")
    return out


FACTORIES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "parquet": lambda f: bd.dataset(f["pq_dir"], target="price", batch_size=8, block_rows=7),
    "parquet-shuffled-shard": lambda f: bd.dataset(
        f["parquet"], target="price", batch_size=6, shuffle_buffer=11, seed=5
    ).shard(1, 2),
    "csv": lambda f: bd.dataset(f["csv_dir"], target="price", format="csv", batch_size=8),
    "csv-shuffled": lambda f: bd.dataset(
        f["csv_dir"], target="price", format="csv", batch_size=8, shuffle_buffer=20, seed=1
    ),
    "ipc": lambda f: bd.dataset(f["ipc_dir"], target="price", format="ipc", batch_size=8),
    "orc-shuffled": lambda f: bd.dataset(
        f["orc_dir"], target="price", format="orc", batch_size=8, shuffle_buffer=9, seed=2
    ),
    "hive": lambda f: bd.dataset(
        f["hive_dir"], target="price", partitioning="hive", batch_size=8, shuffle_buffer=13, seed=7
    ),
    "hive-filter": lambda f: bd.dataset(
        f["hive_dir"],
        target="price",
        partitioning="hive",
        filter=(pc.field("year") >= 2020) & (pc.field("f0") > 5),
        batch_size=8,
        shuffle_buffer=10,
        seed=3,
    ),
    "parquet-dict-weights-no-prefetch": lambda f: bd.dataset(
        f["pq_dir"], target="price", sample_weight="f2", x_format="dict", batch_size=8, prefetch=0
    ),
}


def _ids(batches: Any) -> np.ndarray:
    return rows_of(batches)


def _expected_ids(name: str, f: dict[str, Any]) -> np.ndarray:
    if name == "hive-filter":
        frame = f["hive_frame"]
        return frame[(frame.year >= 2020) & (frame.f0 > 5)]["id"].to_numpy()
    return np.arange(ROWS, dtype=np.float64)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_check_resumable(name: str, files: dict[str, Any]) -> None:
    before = set(threading.enumerate())
    check_resumable(lambda: FACTORIES[name](files))
    assert_no_new_threads(before)


@pytest.mark.parametrize("name", [n for n in FACTORIES if "shard" not in n and "dict" not in n])
def test_every_row_once_and_shards_disjoint_complete(name: str, files: dict[str, Any]) -> None:
    check_epochs_and_shards(
        lambda: FACTORIES[name](files), _ids, _expected_ids(name, files), worlds=(2, 3, 5)
    )
    batches = epoch_batches(FACTORIES[name](files), 0)
    np.testing.assert_array_equal(
        np.concatenate([b[1] for b in batches]), 2 * rows_of(batches) + 1
    )  # x and y stay aligned


def test_len_exact_where_metadata_counts_rows(files: dict[str, Any]) -> None:
    for name in ("parquet", "ipc", "orc-shuffled", "hive"):
        source = FACTORIES[name](files)
        assert len(source) == -(-ROWS // 8) == len(list(source)), name
    shard = FACTORIES["parquet-shuffled-shard"](files)
    assert len(shard) == -(-52 // 6) == len(list(shard))
    for name in ("csv", "hive-filter"):
        assert FACTORIES[name](files).num_batches is None, name
    dropped = bd.dataset(files["pq_dir"], target="price", batch_size=8, drop_remainder=True)
    assert len(dropped) == ROWS // 8 == len(list(dropped))


def test_same_rows_as_the_parquet_source(files: dict[str, Any]) -> None:
    """Same units (row groups), same order functions: the same batches, bit for bit."""
    for options, shard in (
        ({"batch_size": 8}, None),
        ({"batch_size": 6, "shuffle_buffer": 11, "seed": 5}, (1, 2)),
        ({"batch_size": 5, "shuffle_buffer": 30, "seed": 0, "sample_weight": "f1"}, (2, 3)),
    ):
        ours = bd.dataset(files["parquet"], target="price", **options)
        theirs = bd.parquet(files["parquet"], target="price", **options)
        if shard is not None:
            ours, theirs = ours.shard(*shard), theirs.shard(*shard)
        for epoch in (0, 3):
            assert_batches_equal(
                epoch_batches(ours, epoch), epoch_batches(theirs, epoch), f"{options} {epoch}"
            )


def test_filter_and_partition_columns_match_pandas(files: dict[str, Any]) -> None:
    frame = files["hive_frame"]
    source = bd.dataset(
        files["hive_dir"],
        target="price",
        features=["id", "year", "region", "f1"],
        partitioning="hive",
        filter=(pc.field("region") == 2) & (pc.field("f1") < 30.0),
        batch_size=4,
    )
    got = np.concatenate([np.column_stack([b[0], b[1]]) for b in source])
    want = frame[(frame.region == 2) & (frame.f1 < 30.0)][["id", "year", "region", "f1", "price"]]
    got = got[np.argsort(got[:, 0])]
    np.testing.assert_array_equal(got, want.sort_values("id").to_numpy(np.float32))
    assert set(got[:, 2]) == {2.0} and len(got) == len(want) > 0
    # the partition filter prunes whole directories: only region=2 files are units
    assert all("region=2" in path for path in source.files)


def test_directory_partitioning_and_a_prebuilt_dataset(tmp_path: Path) -> None:
    cols = table(30)
    for year in (2020, 2021):
        (tmp_path / str(year)).mkdir()
        part = {k: v[(year - 2020) * 15 : (year - 2019) * 15] for k, v in cols.items()}
        write_parquet(str(tmp_path / str(year) / "data.parquet"), part, 4)
    scheme = ds.partitioning(pa.schema([("year", pa.int16())]))
    source = bd.dataset(str(tmp_path), target="year", features=["id"], partitioning=scheme)
    x, y = (np.concatenate(p) for p in zip(*source))
    np.testing.assert_array_equal(y, np.where(x[:, 0] < 15, 2020, 2021))
    prebuilt = ds.dataset(str(tmp_path), format="parquet", partitioning=scheme)
    again = bd.dataset(prebuilt, target="year", features=["id"])
    assert_batches_equal(list(again), list(source), "prebuilt dataset")
    with pytest.raises(ValueError, match=r"\['partitioning'\] apply when dataset\(\) opens a path"):
        bd.dataset(prebuilt, target="year", partitioning="hive")


def test_table_rows_read_raw_columns(tmp_path: Path) -> None:
    """`table=`: text columns encoded by `TableRows`, as the Parquet source does."""
    from batchfit.data._table import TableSpec
    from batchfit.data._table_rows import TableRows
    from batchfit.data._table_scan import TableScan

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=40).round(2),
            "color": rng.choice(["red", "blue", "green"], size=40),
            "price": np.arange(40.0),
        }
    )
    frame.loc[3, "size"] = None
    (tmp_path / "lake").mkdir()
    pq.write_table(pa.Table.from_pandas(frame[:25]), tmp_path / "lake" / "a.parquet")
    pq.write_table(pa.Table.from_pandas(frame[25:]), tmp_path / "lake" / "b.parquet")
    kinds = {"size": ("number", None), "color": ("category", None), "price": ("number", None)}
    features = ["size", "color"]

    def run(path: str, read: Callable[..., Any], rows: TableRows) -> list[Any]:
        return list(read(path, "price", features, batch_size=7, table=rows))

    scans = []
    for read, path in ((bd.dataset, str(tmp_path / "lake")), (bd.parquet, str(tmp_path / "lake"))):
        scan = TableScan(kinds)
        assert run(path, read, TableRows(features, ["price"], kinds, scan=scan)) == []
        scans.append(TableSpec.from_scan(scan, features, ["price"], min_count=1))
    assert scans[0].to_json() == scans[1].to_json()
    spec = scans[0]
    ours = run(str(tmp_path / "lake"), bd.dataset, TableRows(features, ["price"], kinds, spec=spec))
    theirs = run(
        str(tmp_path / "lake"), bd.parquet, TableRows(features, ["price"], kinds, spec=spec)
    )
    assert_batches_equal(ours, theirs, "table rows")
    x = np.concatenate([b[0] for b in ours])
    assert x.shape[0] == 40 and np.isfinite(x).all()
    with pytest.raises(TypeError, match=r"column 'color' in .*a.parquet has type large_string"):
        bd.dataset(str(tmp_path / "lake"), "price", features)


def test_clear_errors(tmp_path: Path, files: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"target column\(s\) \['cost'\] not found"):
        bd.dataset(files["pq_dir"], target="cost")
    with pytest.raises(ValueError, match=r"filter \(nope > 1\) cannot apply .*No match"):
        bd.dataset(files["pq_dir"], target="price", filter=pc.field("nope") > 1)
    with pytest.raises(ValueError, match=r"cannot open .*hive as a pyarrow dataset.*year=2019"):
        bd.dataset(
            files["hive_dir"],
            partitioning=ds.partitioning(pa.schema([("year", pa.int8())])),
            target="price",
        )
    with pytest.raises(TypeError, match="filter must be a pyarrow compute expression"):
        bd.dataset(files["pq_dir"], target="price", filter="f0 > 1")

    changes = tmp_path / "changes"
    changes.mkdir()
    pq.write_table(pa.table({"a": [1.0, 2.0], "y": [0.0, 1.0]}), changes / "1.parquet")
    pq.write_table(pa.table({"a": ["x", "y"], "y": [0.0, 1.0]}), changes / "2.parquet")
    with pytest.raises(TypeError, match=r"column 'a' in .*2.parquet has type string"):
        bd.dataset(str(changes), target="y")
    from batchfit.data._table_rows import TableRows
    from batchfit.data._table_scan import TableScan

    scan = TableScan({"a": ("number", None), "y": ("number", None)})
    rows = TableRows(["a"], ["y"], {"a": ("number", None), "y": ("number", None)}, scan=scan)
    with pytest.raises(TypeError, match=r"column 'a' changes type between files: double in "):
        bd.dataset(str(changes), target="y", table=rows)

    nested = tmp_path / "nested"
    nested.mkdir()
    pq.write_table(pa.table({"v": [[1.0], [2.0, 3.0]], "y": [0.0, 1.0]}), nested / "n.parquet")
    with pytest.raises(TypeError, match=r"column 'v' in .*n.parquet is nested \(list<"):
        bd.dataset(str(nested), target="y")

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = pa.array([], pa.float64())
    pq.write_table(pa.table({"a": nothing, "y": nothing}), empty / "e.parquet")
    with pytest.raises(ValueError, match=r"empty holds no rows: expected at least one"):
        bd.dataset(str(empty), target="y")

    missing = tmp_path / "missing"
    missing.mkdir()
    pq.write_table(pa.table({"a": [1.0], "y": [0.0]}), missing / "1.parquet")
    pq.write_table(pa.table({"y": [0.0]}), missing / "2.parquet")
    with pytest.raises(ValueError, match=r"column 'a' is missing from .*2.parquet"):
        bd.dataset(str(missing), target="y")

    with pytest.raises(TypeError, match="partition column 'region' has type string"):
        bd.dataset(
            str(files["hive_dir"]),
            target="price",
            partitioning=ds.partitioning(
                pa.schema([("year", pa.int32()), ("region", pa.string())]), flavor="hive"
            ),
        )


def test_int_in_one_file_float_in_another_reads_as_numbers(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"a": pa.array([1, 2], pa.int64()), "y": [0.0, 1.0]}), tmp_path / "1.pq"
    )
    pq.write_table(pa.table({"a": [2.5, 3.5], "y": [2.0, 3.0]}), tmp_path / "2.pq")
    x, y = (np.concatenate(p) for p in zip(*bd.dataset(str(tmp_path), target="y", batch_size=3)))
    np.testing.assert_array_equal(x[:, 0], [1.0, 2.0, 2.5, 3.5])
    np.testing.assert_array_equal(y, [0.0, 1.0, 2.0, 3.0])


def test_nulls_refused_with_the_file_and_row_or_skipped(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"a": [1.0, None, 3.0, 4.0], "y": [0.0, 1.0, 2.0, 3.0]}),
        tmp_path / "n.parquet",
        row_group_size=2,
    )
    with pytest.raises(ValueError, match=r"column 'a' at .*n.parquet row group 0 row 1"):
        list(bd.dataset(str(tmp_path), target="y"))
    skipped = bd.dataset(str(tmp_path), target="y", on_nan="skip")
    assert np.concatenate([b[1] for b in skipped]).tolist() == [0.0, 2.0, 3.0]
    assert skipped.stats["nan_rows_skipped"] == 1


def test_fingerprint_names_a_rewritten_file(tmp_path: Path) -> None:
    write_parquet(str(tmp_path / "a.parquet"), table(20), 5)
    saved = json.loads(json.dumps(bd.dataset(str(tmp_path), target="price").fingerprint()))
    assert [e["path"] for e in saved["files"]] == [str(tmp_path / "a.parquet")]
    assert describe_change(saved, bd.dataset(str(tmp_path), target="price").fingerprint()) is None
    write_parquet(str(tmp_path / "a.parquet"), table(21), 5)
    change = describe_change(saved, bd.dataset(str(tmp_path), target="price").fingerprint())
    assert change is not None and "a.parquet changed size" in change


_KILL_SOURCE = """
import pyarrow.compute as pc

train = bf.data.dataset(data, target="label", partitioning="hive", batch_size=16,
                        shuffle_buffer=64, seed=3, filter=pc.field("part") != 3)
"""


@pytest.mark.slow
def test_sigkill_resume_of_a_filtered_partitioned_dataset(tmp_path: Path) -> None:
    from kill_resume import check_kill_resume, training_script

    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    for part in range(4):
        x = rng.normal(size=(90, 5))
        folder = data / f"part={part}"
        folder.mkdir(parents=True)
        cols = {f"x{j}": x[:, j] for j in range(5)}
        cols["label"] = (x[:, 0] + x[:, 1] > 0).astype(np.float64)
        pq.write_table(pa.table(cols), folder / "d.parquet", row_group_size=20)
    check_kill_resume(
        training_script(_KILL_SOURCE), data, tmp_path, kill_after=25
    )  # mid-epoch 2 (17 batches per epoch)


def test_a_pyarrow_filesystem_passes_through(files: dict[str, Any]) -> None:
    """Any `pyarrow.fs` filesystem: paths are inside it, the fingerprint lists without reading."""
    import pyarrow.fs as pafs

    inner = pafs.SubTreeFileSystem(files["pq_dir"], pafs.LocalFileSystem())
    remote = bd.dataset(
        "", filesystem=inner, target="price", batch_size=8, shuffle_buffer=9, seed=1
    )
    local = bd.dataset(files["pq_dir"], target="price", batch_size=8, shuffle_buffer=9, seed=1)
    assert remote.files == ["a.parquet", "b.parquet"]
    assert_batches_equal(epoch_batches(remote, 1), epoch_batches(local, 1), "SubTreeFileSystem")
    entries = remote.fingerprint()["files"]
    for entry, path in zip(entries, files["parquet"], strict=True):
        stat = os.stat(path)
        assert (entry["size"], entry["mtime_ns"], entry["head"]) == (
            stat.st_size,
            stat.st_mtime_ns,
            None,
        )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    group=st.integers(1, 17),
    batch_size=st.integers(1, 20),
    shuffle_buffer=st.integers(0, 60),
    world=st.integers(1, 4),
    seed=st.integers(0, 2**32),
    filtered=st.booleans(),
)
def test_shards_exact_for_any_row_groups(
    sizes: list[int],
    group: int,
    batch_size: int,
    shuffle_buffer: int,
    world: int,
    seed: int,
    filtered: bool,
) -> None:
    """Any file and row-group sizes: each rank's batch count is its `len()`, ranks are
    disjoint and together hold every (kept) row once; an epoch is the same twice."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        start = 0
        for k, rows in enumerate(sizes):
            write_parquet(os.path.join(tmp, f"p{k}.parquet"), table(rows, start=start), group)
            start += rows
        options: dict[str, Any] = (
            {"filter": pc.field("id").isin(list(range(1, 200, 2)))} if filtered else {}
        )
        base = bd.dataset(
            tmp,
            target="price",
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            **options,
        )
        parts = []
        for rank in range(world):
            shard = base.shard(rank, world)
            batches = epoch_batches(shard, 1)
            assert_batches_equal(epoch_batches(shard, 1), batches, "the same epoch twice")
            parts.append(rows_of(batches))
            if not filtered:  # contiguous row ranges, balanced to one row
                assert shard.num_batches == len(batches)
                assert len(parts[-1]) in (start // world, start // world + 1)
        ids = np.sort(np.concatenate(parts))
        expected = np.arange(start, dtype=np.float64)
        np.testing.assert_array_equal(ids, expected[expected % 2 != 0] if filtered else expected)
