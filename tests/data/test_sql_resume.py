"""kill -9 during `fit` from a PostgreSQL query, then the same command: bit-identical weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from pg_util import execute, ingest

SCRIPT = Path(__file__).with_name("sql_resume_script.py")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_from_postgres.py"


def _run(out: Path, uri: str, table: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), str(out), uri, table],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [5, 29])
def test_sigkill_resume_from_a_query_is_bit_identical(
    pg_uri: str, tmp_path: Path, kill_after: int
) -> None:
    table = f"t_{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    columns = {f"f{j}": x[:, j] for j in range(6)}
    ingest(
        pg_uri,
        table,
        {
            "id": rng.permutation(300).astype(np.int64) * 2,
            **columns,
            "label": (x[:, :2].sum(axis=1) > 0).astype(np.float32),
        },
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        ref, run = tmp_path / "ref", tmp_path / "run"
        ref.mkdir()
        run.mkdir()
        _run(ref, pg_uri, table, env)
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(run), pg_uri, table],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            if line.startswith("batch"):
                seen += 1
                if seen == kill_after:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        proc.wait(timeout=60)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL and not (run / "final.npz").exists()
        assert (run / "backup").exists()
        _run(run, pg_uri, table, env)
        want, got = np.load(ref / "final.npz"), np.load(run / "final.npz")
        assert sorted(want.files) == sorted(got.files)
        for key in want.files:
            np.testing.assert_array_equal(want[key], got[key])
    finally:
        execute(pg_uri, f'DROP TABLE IF EXISTS "{table}"')


@pytest.mark.slow
def test_the_postgres_example_runs(pg_uri: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--uri", pg_uri, "--rows", "4000", "--epochs", "2"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "resumed run == uninterrupted run (bit for bit): True" in out.stdout
