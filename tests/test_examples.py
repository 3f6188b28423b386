"""Every script in examples/ runs on small sizes (subprocess) and prints its key line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = [
    ("train_on_batch_loop.py", ["--epochs", "2", "--samples", "320"], "bit for bit): True"),
    ("fit_vs_train_on_batch.py", ["--samples", "2000", "--epochs", "2"], "bit for bit): True"),
    pytest.param(
        "augment_stream.py",
        ["--chunks", "2", "--chunk-size", "96", "--epochs", "1", "--size", "12"],
        "test accuracy",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "housing_csv_chunks.py",
        ["--rows", "3000", "--epochs", "1"],
        "bf.data.csv + fit:",
        marks=pytest.mark.slow,
    ),
    ("online_learning.py", ["--batches", "400"], "final running loss"),
    pytest.param(
        "custom_loop_gan.py", ["--steps", "300"], "generated mean", marks=pytest.mark.slow
    ),
]


def test_every_example_is_covered() -> None:
    covered = {c.values[0] if hasattr(c, "values") else c[0] for c in CASES}
    covered.add("train_from_postgres.py")  # needs the server: tests/data/test_sql_resume.py
    assert covered == {p.name for p in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize(("script", "args", "expected"), CASES)
def test_example_runs(script: str, args: list[str], expected: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
