"""Helpers for driving the real `batchfit` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

COLUMNS = ["size", "rooms", "age", "noise", "price"]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"  # two shared cores: keep subprocesses from oversubscribing
    env.pop("BATCHFIT_TRACEBACK", None)
    return env


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """`python -m batchfit ARGS...`, captured."""
    return subprocess.run(
        [sys.executable, "-m", "batchfit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(),
        timeout=timeout,
    )


def table(rows: int, seed: int) -> dict[str, np.ndarray]:
    """A small regression table: price depends on size, rooms and age."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(30, 250, rows).round(1)
    rooms = rng.integers(1, 7, rows).astype(np.float64)
    age = rng.integers(0, 100, rows).astype(np.float64)
    noise = rng.normal(size=rows).round(3)
    price = (2.0 * size + 15 * rooms - 0.5 * age + rng.normal(0, 5, rows)).round(2)
    return dict(zip(COLUMNS, (size, rooms, age, noise, price)))


def write_csv(path: Path, rows: int, seed: int) -> Path:
    data = table(rows, seed)
    lines = [",".join(COLUMNS)]
    lines += [",".join(repr(float(v)) for v in row) for row in zip(*data.values())]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_parquet(path: Path, rows: int, seed: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(table(rows, seed)), path, row_group_size=max(rows // 3, 1))
    return path


@pytest.fixture(scope="session")
def datadir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli-data")
    write_csv(d / "part-0.csv", 1500, 0)
    write_csv(d / "part-1.csv", 1500, 1)
    write_parquet(d / "train.parquet", 3000, 2)
    write_parquet(d / "val.parquet", 600, 3)
    write_csv(d / "big.csv", 6_000, 4)
    return d
