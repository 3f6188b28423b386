"""Property tests: every row once per epoch, exact batches, seeded shuffles, shards."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from contract import epoch_batches, rows_of
from datafiles import split_csvs, table, write_parquet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batchfit.data as bd
from batchfit.data._nodes import batch_rows, shuffle_rows

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_epoch(batches: list, rows: int, batch_size: int, drop_remainder: bool) -> np.ndarray:
    sizes = [len(b[0]) for b in batches]
    full, rest = divmod(rows, batch_size)
    expected = [batch_size] * full + ([rest] if rest and not drop_remainder else [])
    assert sizes == expected
    ids = rows_of(batches)
    kept = full * batch_size if drop_remainder else rows
    assert len(np.unique(ids)) == len(ids) == kept
    if batches:
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), 2 * ids + 1)
    return ids


@SETTINGS
@given(
    rows=st.integers(1, 120),
    files=st.integers(1, 4),
    block_bytes=st.integers(1, 600),
    batch_size=st.integers(1, 40),
    shuffle_buffer=st.integers(0, 150),
    drop_remainder=st.booleans(),
    prefetch=st.sampled_from([0, 2]),
    seed=st.integers(0, 2**32),
)
def test_csv_every_row_once(
    rows, files, block_bytes, batch_size, shuffle_buffer, drop_remainder, prefetch, seed
) -> None:
    files = min(files, rows)
    with tempfile.TemporaryDirectory() as tmp:
        paths = split_csvs(tmp, rows, files)
        make = lambda: bd.csv(  # noqa: E731
            os.path.join(tmp, "*.csv"),
            target="price",
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            block_bytes=block_bytes,
            drop_remainder=drop_remainder,
            prefetch=prefetch,
        )
        source = make()
        assert source.files == paths
        first = _check_epoch(epoch_batches(source, 0), rows, batch_size, drop_remainder)
        if not drop_remainder:
            np.testing.assert_array_equal(np.sort(first), np.arange(rows))
            if shuffle_buffer == 0:
                np.testing.assert_array_equal(first, np.arange(rows))  # file order kept
        # reproducible from the seed, also by a new source
        again = rows_of(epoch_batches(make(), 0))
        np.testing.assert_array_equal(first, again)
        for world in (2, 3):
            shards = [rows_of(epoch_batches(make().shard(r, world), 1)) for r in range(world)]
            if not drop_remainder:
                np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(rows))


@SETTINGS
@given(
    rows=st.integers(1, 150),
    group_rows=st.integers(1, 60),
    block_rows=st.integers(1, 50),
    batch_size=st.integers(1, 40),
    shuffle_buffer=st.integers(0, 100),
    world=st.integers(1, 4),
    seed=st.integers(0, 2**32),
)
def test_parquet_shards_disjoint_complete_and_sized(
    rows, group_rows, block_rows, batch_size, shuffle_buffer, world, seed
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cols = table(rows)
        half = rows // 2
        paths = [os.path.join(tmp, "a.parquet")]
        if half:
            write_parquet(paths[0], {k: v[:half] for k, v in cols.items()}, group_rows)
            paths.append(os.path.join(tmp, "b.parquet"))
        write_parquet(paths[-1], {k: v[half:] for k, v in cols.items()}, group_rows)
        base = bd.parquet(
            paths,
            target="price",
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            block_rows=block_rows,
        )
        ids = []
        for rank in range(world):
            shard = base.shard(rank, world)
            batches = epoch_batches(shard, 3)
            assert len(batches) == len(shard)
            shard_rows = sum(len(b[0]) for b in batches)
            assert abs(shard_rows - rows / world) < 1
            ids.append(_check_epoch(batches, shard_rows, batch_size, False))
        np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(rows))


@SETTINGS
@given(
    chunk_sizes=st.lists(st.integers(1, 50), min_size=1, max_size=12),
    buffer_rows=st.integers(1, 300),
    seed=st.integers(0, 2**32),
)
def test_shuffle_buffer_is_a_seeded_permutation(chunk_sizes, buffer_rows, seed) -> None:
    """The order depends on the rows and the seed, not on how the rows were chunked."""
    total = sum(chunk_sizes)
    ids = np.arange(total)
    chunks = np.split(ids, np.cumsum(chunk_sizes)[:-1])
    out = np.concatenate(
        [
            p[0]
            for p in shuffle_rows(((c,) for c in chunks), buffer_rows, np.random.default_rng(seed))
        ]
    )
    np.testing.assert_array_equal(np.sort(out), ids)
    rechunked = np.array_split(ids, 3)
    other = np.concatenate(
        [
            p[0]
            for p in shuffle_rows(
                ((c,) for c in rechunked), buffer_rows, np.random.default_rng(seed)
            )
        ]
    )
    np.testing.assert_array_equal(out, other)
    if total > 300:
        assert not np.array_equal(out, ids)


@SETTINGS
@given(
    chunk_sizes=st.lists(st.integers(0, 30), min_size=1, max_size=10),
    batch_size=st.integers(1, 25),
    skip_batches=st.integers(0, 12),
    drop_remainder=st.booleans(),
)
def test_batch_rows_exact_across_chunks(chunk_sizes, batch_size, skip_batches, drop_remainder):
    ids = np.arange(sum(chunk_sizes))
    chunks = [(c,) for c in np.split(ids, np.cumsum(chunk_sizes)[:-1])]
    batches = list(
        batch_rows(
            chunks, batch_size, drop_remainder=drop_remainder, skip_rows=skip_batches * batch_size
        )
    )
    expected = [ids[i : i + batch_size] for i in range(0, len(ids), batch_size)]
    if drop_remainder and expected and len(expected[-1]) < batch_size:
        expected.pop()
    expected = expected[skip_batches:]
    assert len(batches) == len(expected)
    for got, want in zip(batches, expected, strict=True):
        np.testing.assert_array_equal(got[0], want)


def test_shuffled_epochs_differ_and_blocks_are_shuffled(tmp_path) -> None:
    split_csvs(str(tmp_path), 400, 2)
    source = bd.csv(
        str(tmp_path), target="price", batch_size=50, shuffle_buffer=30, seed=0, block_bytes=500
    )
    a, b = rows_of(epoch_batches(source, 0)), rows_of(epoch_batches(source, 1))
    assert not np.array_equal(a, b)
    # block order is shuffled too: early batches reach beyond the first buffer's worth of rows
    assert a[:50].max() > 100
    unshuffled = bd.csv(
        str(tmp_path), target="price", batch_size=50, shuffle=True, seed=0, block_bytes=500
    )
    c = rows_of(epoch_batches(unshuffled, 0))
    assert not np.array_equal(c, np.arange(400)) and np.array_equal(np.sort(c), np.arange(400))
