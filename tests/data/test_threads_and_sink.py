"""Prefetch threads end cleanly; the Parquet sink streams and publishes atomically."""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from contract import assert_no_new_threads
from datafiles import split_csvs

import batchfit.data as bd
from batchfit.data._prefetch import Prefetcher
from batchfit.data._sink import ParquetSink


@pytest.fixture
def csv_files(tmp_path) -> list[str]:
    return split_csvs(str(tmp_path), 2000, 2)


def test_no_thread_left_after_an_epoch(csv_files) -> None:
    before = set(threading.enumerate())
    source = bd.csv(csv_files, target="price", batch_size=16, block_bytes=512, prefetch=2)
    assert sum(len(b[0]) for b in source) == 2000
    assert_no_new_threads(before)


def test_no_thread_left_when_the_consumer_stops_early(csv_files) -> None:
    before = set(threading.enumerate())
    source = bd.csv(csv_files, target="price", batch_size=4, block_bytes=256, prefetch=1)
    for i, _ in enumerate(source):
        if i == 3:
            break  # the producer is blocked on a full queue now
    gc.collect()
    assert_no_new_threads(before)
    iterator = iter(source)
    next(iterator)  # an iterator still held: close() ends its thread
    source.close()
    assert_no_new_threads(before)
    del iterator


def test_producer_error_reaches_the_consumer() -> None:
    def broken():
        yield 1
        raise OSError("disk gone")

    prefetcher = Prefetcher(broken, 2, "test")
    with pytest.raises(OSError, match="disk gone"):
        list(prefetcher)
    prefetcher.close()
    assert not prefetcher.alive


def test_prefetch_overlaps_reading_with_the_consumer() -> None:
    def slow():
        for i in range(6):
            time.sleep(0.05)
            yield i

    start = time.perf_counter()
    for _ in Prefetcher(slow, 2, "test"):
        time.sleep(0.05)
    assert time.perf_counter() - start < 0.55  # 0.6 s if nothing overlapped


def test_sink_streams_and_renames_atomically(tmp_path) -> None:
    path = tmp_path / "preds.parquet"
    sink = ParquetSink(path, row_group_rows=10)
    for start in range(0, 35, 7):
        sink.write(np.arange(start, start + 7, dtype=np.float32).reshape(-1, 1) * [1, 2])
        assert not path.exists()  # nothing under the final name before close()
    sink.close()
    table = pq.read_table(path)
    assert table.column_names == ["output_0", "output_1"]
    np.testing.assert_array_equal(table["output_1"].to_numpy(), 2 * np.arange(35))
    assert pq.ParquetFile(path).metadata.num_row_groups >= 3
    assert [p.name for p in tmp_path.iterdir()] == ["preds.parquet"]


def test_sink_vector_names_abort_and_errors(tmp_path) -> None:
    with ParquetSink(tmp_path / "v.parquet") as sink:
        sink.write(np.ones(4))
    assert pq.read_table(tmp_path / "v.parquet").column_names == ["output"]
    with pytest.raises(RuntimeError), ParquetSink(tmp_path / "a.parquet") as sink:
        sink.write(np.ones((3, 2)))
        raise RuntimeError("predict failed")
    assert os.listdir(tmp_path) == ["v.parquet"]  # aborted: no partial file left
    sink = ParquetSink(tmp_path / "c.parquet", column_names=["price"])
    with pytest.raises(ValueError, match=r"expected 1 columns \(\['price'\]\), got batches with 2"):
        sink.write(np.ones((3, 2)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ParquetSink(tmp_path / "no" / "dir.parquet")
