"""Raw tables through the command: strings, booleans, dates, missing cells, labels."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import run_cli


def penguins_csv() -> Path:
    """Palmer penguins (CC0), as the `palmerpenguins` PyPI package ships it."""
    pytest.importorskip("palmerpenguins")
    return Path(str(importlib.resources.files("palmerpenguins") / "data" / "penguins.csv"))


def houses(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 250, rows)
    town = rng.choice(["north", "south", "east", "west"], rows)
    garden = rng.choice(["True", "False"], rows)
    bonus = pd.Series(town).map({"north": 40.0, "south": 0.0, "east": 20.0, "west": -30.0})
    price = 2.0 * area + bonus.to_numpy() + 25 * (garden == "True") + rng.normal(0, 3, rows)
    frame = pd.DataFrame(
        {
            "id": [f"h{i}" for i in range(rows)],
            "area": area.round(1).astype(object),
            "town": town.astype(object),
            "garden": garden,
            "listed": pd.Series(pd.date_range("2022-01-01", periods=rows, freq="13h")).dt.strftime(
                "%Y-%m-%d"
            ),
            "price": price.round(2),
        }
    )
    holes = rng.choice(rows, rows // 25, replace=False)
    frame.loc[holes[: len(holes) // 2], "area"] = "NA"
    frame.loc[holes[len(holes) // 2 :], "town"] = ""
    return frame


@pytest.mark.slow
def test_string_target_classification_end_to_end(tmp_path: Path) -> None:
    data = penguins_csv()
    out = tmp_path / "run"
    done = run_cli(
        "fit", str(data), "--target", "species", "--epochs", "25", "--batch-size", "16",
        "--validation-split", "0.25", "--learning-rate", "0.01", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "target species: 3 classes (Adelie, Chinstrap, Gentoo)" in done.stdout
    assert "categories: island (3 values), sex (2 values)" in done.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == "multiclass" and run["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert run["final"]["val_accuracy"] > 0.9  # the species separate well on these measures
    assert (out / "predictions.png").is_file()  # the confusion matrix of the validation rows
    spec = json.loads((out / "table.json").read_text())
    truth = pd.read_csv(data)
    island = next(f for f in spec["features"] if f["name"] == "island")
    assert set(island["vocabulary"]) == set(truth["island"].unique())
    assert "sex" in [f["name"] for f in spec["features"]]

    preds = tmp_path / "preds.csv"
    done = run_cli("predict", str(out), str(data), "--output", str(preds), "--keep", "island")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(preds)
    probs = ["species_prob_Adelie", "species_prob_Chinstrap", "species_prob_Gentoo"]
    assert list(got.columns) == ["island", "species_pred", *probs]
    assert len(got) == len(truth) and (got["island"] == truth["island"]).all()
    np.testing.assert_allclose(got[probs].sum(axis=1), 1.0, rtol=1e-5)  # rows with NA too
    labels = np.array(["Adelie", "Chinstrap", "Gentoo"])[got[probs].to_numpy().argmax(axis=1)]
    assert (got["species_pred"] == labels).all()
    assert (got["species_pred"] == truth["species"]).mean() > 0.9

    done = run_cli("evaluate", str(out), str(data))
    assert done.returncode == 0, done.stderr
    accuracy = float(done.stdout.split("accuracy: ")[1].split()[0])
    assert accuracy == pytest.approx((got["species_pred"] == truth["species"]).mean(), abs=1e-4)


def test_regression_with_every_kind_and_unseen_values(tmp_path: Path) -> None:
    data = tmp_path / "houses.csv"
    houses(2000, 0).to_csv(data, index=False)
    out = tmp_path / "run"
    done = run_cli(
        "fit", str(data), "--target", "price", "--drop", "id", "--epochs", "8",
        "--validation-split", "0.2", "--learning-rate", "0.01", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for line in (
        "numbers: area",
        "booleans: garden",
        "categories: town (4 values)",
        "dates: listed",
    ):
        assert line in done.stdout
    assert "imputed (with an indicator) in: area" in done.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == "regression"
    truth = pd.read_csv(data)
    assert np.sqrt(run["final"]["val_loss"]) < 0.2 * truth["price"].std()

    new = houses(50, 1)
    new.loc[0, "town"] = "atlantis"  # never seen
    new.loc[1, ["area", "garden", "listed"]] = ["", "NA", "null"]
    new.drop(columns="price").to_csv(tmp_path / "new.csv", index=False)
    preds = tmp_path / "preds.parquet"
    done = run_cli(
        "predict", str(out), str(tmp_path / "new.csv"), "--output", str(preds), "--keep", "id"
    )
    assert done.returncode == 0, done.stderr
    got = pd.read_parquet(preds)
    assert list(got.columns) == ["id", "price_pred"] and (got["id"] == new["id"]).all()
    assert np.isfinite(got["price_pred"]).all()
    ok = new["area"].astype(str).str.replace(".", "", regex=False).str.isdigit().to_numpy().copy()
    ok[:2] = False
    error = np.abs(got["price_pred"].to_numpy() - new["price"].to_numpy())[ok]
    assert np.median(error) < 0.2 * truth["price"].std()


def test_row_flags_early_stopping_checkpoint_and_tensorboard(tmp_path: Path) -> None:
    frame = houses(600, 2)
    frame.loc[5, "area"] = "huge"  # a word in a number column, past the sample's check
    data = tmp_path / "h.csv"
    frame.to_csv(data, index=False)
    base = ["fit", str(data), "--target", "price", "--drop", "id", "--quiet"]
    refused = run_cli(*base, "--out", str(tmp_path / "a"))
    assert refused.returncode == 1
    assert "h.csv line 7" in refused.stderr and "--on-bad-rows skip" in refused.stderr

    config = tmp_path / "run.toml"
    config.write_text('on_bad_rows = "skip"\non_missing = "skip"\nmax_categories = 3\n')
    out = tmp_path / "b"
    done = run_cli(
        *base, "--config", str(config), "--epochs", "30", "--validation-split", "0.3",
        "--learning-rate", "0.05", "--early-stopping", "1", "--checkpoint-best",
        "--tensorboard", str(tmp_path / "tb"), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    missing = (frame["area"] == "NA") | (frame["town"] == "")
    skipped = run["skipped_rows_per_epoch"]
    assert skipped["bad_rows_skipped"] == 1
    assert skipped["missing_rows_skipped"] == missing.sum()
    assert run["train_rows_per_epoch"] + run["validation_rows"] == 600 - 1 - missing.sum()
    history = pd.read_csv(out / "history.csv")
    assert len(history) < 30  # stopped early
    assert (history["skipped_rows"] == 1 + missing.sum()).all()  # counted in the history too
    assert (out / "best.safetensors").is_file()
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    town = next(
        f for f in json.loads((out / "table.json").read_text())["features"] if f["name"] == "town"
    )
    assert len(town["vocabulary"]) == 3 and town["hash_bins"] == 16

    strict = run_cli(
        *base, "--on-bad-rows", "skip", "--on-missing", "error", "--out", str(tmp_path / "c")
    )
    assert strict.returncode == 1 and "missing value in column" in strict.stderr
    assert "--on-missing impute" in strict.stderr


@pytest.mark.slow
def test_losses_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "h.csv"
    houses(300, 3).to_csv(data, index=False)
    penguins = str(penguins_csv())
    base = ["--quiet", "--out"]
    cases = [
        (
            ["fit", str(data), "--target", "price", "--loss", "binary_crossentropy"],
            ["--loss", "regression"],
        ),
        (
            ["fit", penguins, "--target", "species", "--loss", "mse"],
            ["labels", "sparse_categorical"],
        ),
        (["fit", penguins, "--target", "sex", "--model", "dense:8,dense:1"], ["sigmoid", "--loss"]),
        (
            ["fit", penguins, "--target", "species", "--loss", "categorical_crossentropy"],
            ["one-hot"],
        ),
        (["fit", penguins, "--target", "species", "--model", "dense:2:softmax"], ["3 output"]),
    ]
    for i, (args, needles) in enumerate(cases):
        done = run_cli(*args, *base, str(tmp_path / f"r{i}"))
        assert done.returncode == 1, (args, done.stdout)
        for needle in needles:
            assert needle in done.stderr, (needle, done.stderr)
        assert not (tmp_path / f"r{i}" / "run.json").exists()  # refused before training

    out = tmp_path / "int"
    done = run_cli(
        "fit", penguins, "--target", "year", "--task", "regression", "--no-normalize",
        "--min-category-count", "130", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == "regression" and run["normalization"]["features"] is None
    island = next(
        f for f in json.loads((out / "table.json").read_text())["features"] if f["name"] == "island"
    )
    counts = pd.read_csv(penguins)["island"].value_counts()
    assert island["vocabulary"] == list(counts[counts >= 130].index)  # the rarer share <other>
    done = run_cli("fit", penguins, "--target", "year", "--out", str(tmp_path / "cls"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "cls" / "run.json").read_text())["classes"] == [
        "2007",
        "2008",
        "2009",
    ]
