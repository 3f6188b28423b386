"""`batchfit fit --sql QUERY --db URI`: a query as the data, with the command's defaults."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from tests.cli.conftest import cli_env, run_cli


def penguin_like(rows: int, seed: int) -> pd.DataFrame:
    """Strings, numbers, NULLs and a string target, with a unique key."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["a", "b", "c"], rows)
    size = np.where(species == "a", 1.0, np.where(species == "b", 2.0, 3.0)) + rng.normal(
        0, 0.2, rows
    )
    frame = pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64) * 3 + 7,
            "island": rng.choice(["x", "y", "z"], rows),
            "size": size,
            "species": species,
        }
    )
    frame.loc[rng.choice(rows, rows // 20, replace=False), "size"] = np.nan
    frame["island"] = frame["island"].astype(object)
    frame.loc[rng.choice(rows, rows // 25, replace=False), "island"] = None
    return frame


def test_duckdb_query_trains_as_the_same_csv(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    frame = penguin_like(600, 0)
    path = tmp_path / "shop.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.register("frame", frame)
        connection.execute("CREATE TABLE birds AS SELECT * FROM frame")
    common = ["--target", "species", "--epochs", "2", "--validation-split", "0.2", "--quiet"]
    done = run_cli(
        "fit", "--sql", "SELECT * FROM birds", "--db", f"duckdb:///{path}", "--order-by", "id",
        *common, "--out", str(tmp_path / "q"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame.to_csv(tmp_path / "birds.csv", index=False)
    done = run_cli(
        "fit", str(tmp_path / "birds.csv"), "--drop", "id", *common, "--out", str(tmp_path / "f")
    )
    assert done.returncode == 0, done.stderr
    query, files = (json.loads((tmp_path / d / "run.json").read_text()) for d in ("q", "f"))
    assert query["sql"] == "SELECT * FROM birds" and query["files"] == []
    assert query["features"] == files["features"] == ["island", "size"]  # the key is no feature
    assert query["classes"] == files["classes"] == ["a", "b", "c"]
    # the same encoding from the query as from the file; all rows read once per epoch
    spec_q, spec_f = (json.loads((tmp_path / d / "table.json").read_text()) for d in ("q", "f"))
    for a, b in zip(spec_q["features"], spec_f["features"], strict=True):
        assert a["vocabulary"] == b["vocabulary"] and a["counts"] == b["counts"]
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-9)
    assert query["train_rows_per_epoch"] + query["validation_rows"] == 600

    # evaluate and predict read the run's own query (its DuckDB URI holds no password)
    done = run_cli("evaluate", str(tmp_path / "q"), "--subset", "validation")
    assert done.returncode == 0, done.stderr
    assert f"{query['validation_rows']:,} rows" in done.stdout
    assert f"accuracy: {query['final']['val_accuracy']:.4f}" in done.stdout
    preds = tmp_path / "preds.csv"
    done = run_cli("predict", str(tmp_path / "q"), "--output", str(preds), "--keep", "id")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(preds)
    assert (got["id"] == frame["id"].sort_values().to_numpy()).all()  # in key order
    assert set(got["species_pred"]) <= {"a", "b", "c"}
    done = run_cli("evaluate", str(tmp_path / "f"))
    assert done.returncode == 1 and "no data: give DATA files" in done.stderr


@pytest.mark.slow
def test_postgres_query_masks_the_password_and_resumes(tmp_path: Path) -> None:
    """Killed mid-run and resumed (the password given again), it ends as the whole run."""
    from tests.pg_util import PASSWORD, PASSWORD_ROLE, ingest, pg_uri_or_skip, with_user

    uri = pg_uri_or_skip()
    frame = penguin_like(3000, 1)
    ingest(uri, "cli_birds", {c: frame[c].tolist() for c in frame.columns})
    secret = with_user(uri, PASSWORD_ROLE, PASSWORD)

    def args(out: Path) -> list[str]:
        return [
            "fit", "--sql", "SELECT * FROM cli_birds", "--db", secret, "--order-by", "id",
            "--target", "species", "--epochs", "2", "--batch-size", "16",
            "--validation-split", "0.2", "--shuffle-buffer", "500", "--backup-every", "20",
            "--out", str(out), "--quiet",
        ]  # fmt: skip

    whole = run_cli(*args(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    run = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert run["db"] == run["settings"]["db"] and ":***@" in run["db"]
    assert run["train_rows_per_epoch"] + run["validation_rows"] == 3000
    assert run["classes"] == ["a", "b", "c"] and "id" not in run["features"]

    out = tmp_path / "killed"
    backup = out / "backup" / "backup.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchfit", *args(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    deadline = time.monotonic() + 120
    while not backup.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"

    # the run directory does not hold the password: a resume asks for --db again
    again = run_cli("fit", "--resume", "--out", str(out), "--quiet")
    assert again.returncode == 1 and "give --db again" in again.stderr
    again = run_cli("fit", "--resume", "--db", secret, "--out", str(out), "--quiet")
    assert again.returncode == 0, again.stderr
    assert "Resuming" in again.stdout
    want = load_file(str(tmp_path / "whole" / "model.safetensors"))
    got = load_file(str(out / "model.safetensors"))
    for key in want:
        assert (want[key] == got[key]).all(), key  # bit for bit on CPU
    written = "".join(
        p.read_text(errors="replace")
        for d in (out, tmp_path / "whole")
        for p in d.rglob("*")
        if p.is_file()
    )
    assert PASSWORD not in written + whole.stdout + whole.stderr + again.stdout + again.stderr


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--db", "duckdb://"], "--order-by"),
        (["--order-by", "id"], "--db"),
        (["--db", "duckdb://", "--order-by", "id", "x.csv"], "not both"),
        (["--db", "duckdb://", "--order-by", "nope"], "--order-by: column 'nope'"),
    ],
)
def test_sql_flag_errors(extra: list[str], needle: str, tmp_path: Path) -> None:
    done = run_cli(
        "fit", "--sql", "SELECT 1 AS id, 2.0 AS y, 3.0 AS x", "--target", "y", *extra,
        "--out", str(tmp_path / "r"), "--quiet",
    )  # fmt: skip
    assert done.returncode == 1
    assert needle in done.stderr, done.stderr
