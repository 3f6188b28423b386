"""`RowSplit`, the command's own source, passes the data layer's source contract.

The checks are `tests/data/contract.py`'s, the ones every `batchfit.data`
source passes (NOTE [ The source contract ] in `batchfit.data._base`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import batchfit.data as bd
from batchfit.cli.data import open_source
from batchfit.cli.split import RowSplit, row_hash_unit
from tests.cli.conftest import COLUMNS, table, write_csv
from tests.data.contract import (
    assert_batches_equal,
    assert_no_new_threads,
    check_resumable,
    epoch_batches,
    rows_of,
)

ROWS = 300
FEATURES = COLUMNS[:4]  # size, rooms, age, noise: `size` is unique enough to follow rows


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("split-contract")
    return [str(write_csv(root / f"part-{i}.csv", ROWS // 2, 10 + i)) for i in range(2)]


def _csv(files: list[str], **options: Any) -> Any:
    return bd.csv(files, "price", FEATURES, block_bytes=1500, **options)


FACTORIES: dict[str, Callable[[list[str]], RowSplit]] = {
    "count-only": lambda f: RowSplit(_csv(f, batch_size=16)),
    "train-shuffled": lambda f: RowSplit(
        _csv(f, batch_size=16, shuffle_buffer=40, seed=3), 0.25, "train"
    ),
    "validation-shuffled": lambda f: RowSplit(
        _csv(f, batch_size=16, shuffle_buffer=40, seed=3), 0.25, "validation"
    ),
    "train-shard": lambda f: RowSplit(
        _csv(f, batch_size=8, shuffle_buffer=20, seed=1), 0.2, "train"
    ).shard(1, 2),
    "open_source": lambda f: RowSplit(
        open_source(f, ["price"], FEATURES, batch_size=16, shuffle_buffer=50, seed=7), 0.3
    ),
    "arrays": lambda f: RowSplit(
        bd.arrays(
            np.arange(ROWS, dtype=np.float32).reshape(-1, 1),
            np.arange(ROWS, dtype=np.float32),
            batch_size=16,
            shuffle=True,
            seed=2,
        ),
        0.4,
        "validation",
    ),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_row_split_is_resumable(name: str, files: list[str]) -> None:
    before = set(threading.enumerate())
    check_resumable(lambda: FACTORIES[name](files))
    assert_no_new_threads(before)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_row_split_repeats_its_epochs_and_counts_rows(name: str, files: list[str]) -> None:
    split = FACTORIES[name](files)
    first, again = epoch_batches(split, 2), epoch_batches(split, 2)
    assert_batches_equal(first, again, name)
    assert split.rows_last_epoch == sum(len(batch[0]) for batch in first)
    split.close()


def test_the_two_sides_hold_every_row_once_by_its_hash(files: list[str]) -> None:
    def side(name: str) -> list[Any]:
        split = RowSplit(_csv(files, batch_size=16, shuffle_buffer=40, seed=3), 0.25, name)
        batches = epoch_batches(split, 1)
        split.close()
        return batches

    train, validation = side("train"), side("validation")
    for batches, held_out in ((train, False), (validation, True)):
        for x, y in batches:
            np.testing.assert_array_equal(row_hash_unit(x, y) < 0.25, held_out)
    parts = [table(ROWS // 2, 10), table(ROWS // 2, 11)]
    every_size = np.sort(np.concatenate([p["size"] for p in parts]).astype(np.float32))
    seen = np.sort(np.concatenate([rows_of(train), rows_of(validation)]))
    np.testing.assert_array_equal(seen, every_size)
