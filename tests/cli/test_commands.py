"""fit / evaluate / predict / demo through the real command (subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import COLUMNS, run_cli, table


def table_key(x: np.ndarray, y: np.ndarray, names: list[str]) -> np.ndarray:
    """The split key the command gives rows read from a CSV: a hash of the typed cells."""
    import polars as pl

    from batchfit.data._table_rows import row_key

    typed = {n: pl.Series(n, x[:, j].astype(np.float64)) for j, n in enumerate(names[:-1])}
    typed[names[-1]] = pl.Series(names[-1], y.astype(np.float64))
    return row_key(typed, names)


def test_version_and_help() -> None:
    import batchfit

    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"batchfit {batchfit.__version__}"
    for command in ("fit", "evaluate", "predict", "demo"):
        done = run_cli(command, "--help")
        assert done.returncode == 0, done.stderr
        assert "usage: batchfit " + command in done.stdout
    assert "hash of each row" in run_cli("fit", "--help").stdout


def test_fit_evaluate_predict_csv(datadir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli(
        "fit", str(datadir / "part-*.csv"), "--target", "price", "--drop", "noise",
        "--model", "dense:16:relu,dense:1", "--metrics", "mae", "--epochs", "2",
        "--batch-size", "64", "--validation-split", "0.2", "--normalize", "--normalize-target",
        "--learning-rate", "0.01", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Epoch 2/2" in done.stdout and "val_mae" in done.stdout
    for name in ("model.safetensors", "history.csv", "history.png", "run.json"):
        assert (out / name).is_file(), name
    assert not (out / "backup").exists()  # removed when the run finishes
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert run["features"] == ["size", "rooms", "age"] and run["target"] == ["price"]
    assert run["settings"]["epochs"] == 2 and run["settings"]["validation_split"] == 0.2
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 3

    # the normalisation statistics are NumPy's on exactly the training side of the split
    parts = [table(1500, 0), table(1500, 1)]
    x = np.concatenate([np.stack([p[c] for c in COLUMNS[:3]], 1) for p in parts]).astype(np.float32)
    y = np.concatenate([p["price"] for p in parts]).astype(np.float32)
    x64 = np.concatenate([np.stack([p[c] for c in COLUMNS[:3]], 1) for p in parts])
    y64 = np.concatenate([p["price"] for p in parts])
    train = table_key(x64, y64, [*COLUMNS[:3], "price"]) >= 0.2
    assert run["train_rows_per_epoch"] == train.sum() and run["validation_rows"] == (~train).sum()
    stats = run["normalization"]["features"]
    np.testing.assert_allclose(stats["mean"], x[train].astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["variance"], x[train].astype(np.float64).var(0), rtol=1e-5)
    np.testing.assert_allclose(run["normalization"]["target"]["mean"], [y[train].mean()], rtol=1e-5)

    done = run_cli("evaluate", str(out), str(datadir / "part-1.csv"))
    assert done.returncode == 0, done.stderr
    assert "1,500 rows: loss:" in done.stdout and "mae:" in done.stdout
    done = run_cli("evaluate", str(out), str(datadir / "part-*.csv"), "--subset", "validation")
    assert done.returncode == 0, done.stderr
    assert f"{(~train).sum():,} rows" in done.stdout
    val_mae = run["final"]["val_mae"]
    assert f"mae: {val_mae:.4f}" in done.stdout  # the same rows and numbers as fit's validation

    preds = tmp_path / "preds.parquet"
    done = run_cli("predict", str(out), str(datadir / "part-0.csv"), "--output", str(preds))
    assert done.returncode == 0, done.stderr
    got = pq.read_table(preds)
    assert got.column_names == ["price_pred"] and got.num_rows == 1500

    from batchfit.models import load_model

    model = load_model(str(out / "model.safetensors"))
    x0 = np.stack([parts[0][c] for c in COLUMNS[:3]], 1).astype(np.float32)
    np.testing.assert_allclose(
        got.column("price_pred").to_numpy(), model.predict(x0, verbose=0)[:, 0], rtol=1e-5
    )


def test_fit_parquet_with_config_and_validation_files(datadir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f'data = ["{datadir / "train.parquet"}"]\n'
        'target = "price"\nfeatures = ["size", "rooms", "age"]\n'
        'model = "dense:8:relu,dense:1"\nmetrics = ["mae"]\n'
        f'epochs = 5\nbatch_size = 128\nvalidation_data = ["{datadir / "val.parquet"}"]\n'
        f'out = "{tmp_path / "from-config"}"\n'
    )
    out = tmp_path / "flag-wins"
    done = run_cli("fit", "--config", str(config), "--epochs", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["epochs"] == 1 and run["settings"]["batch_size"] == 128
    assert run["validation_rows"] == 600 and run["train_rows_per_epoch"] == 3000
    assert not (tmp_path / "from-config").exists()
    # running the finished command again does nothing; a changed setting is refused
    again = run_cli("fit", "--config", str(config), "--epochs", "1", "--out", str(out))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    changed = run_cli(
        "fit", "--config", str(config), "--epochs", "1", "--seed", "3", "--out", str(out)
    )
    assert changed.returncode == 1 and "--seed 0 -> 3" in changed.stderr

    preds = tmp_path / "preds.parquet"
    done = run_cli("predict", str(out), str(datadir / "val.parquet"), "--output", str(preds))
    assert done.returncode == 0, done.stderr
    assert pq.read_table(preds).num_rows == 600


@pytest.mark.slow
def test_demo_small(tmp_path: Path) -> None:
    done = run_cli("demo", "--rows", "30000", "--epochs", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "noise floor" in done.stdout and "RMSE" in done.stdout
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "complete" and "id" not in run["features"]
    assert np.sqrt(run["final"]["val_loss"]) < 2.5 * 30.0  # well on the way to the floor
    for name in ("model.safetensors", "history.png", "history.csv"):
        assert (tmp_path / "run" / name).is_file()
