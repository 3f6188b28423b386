"""`batchfit example-data`: the tables read back independently with pandas."""

from __future__ import annotations

import importlib.resources
import importlib.util
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchfit.cli import example_data
from batchfit.cli.errors import CliError
from batchfit.cli.example_data import (
    HOUSE_COLUMNS,
    NEIGHBORHOODS,
    PENGUIN_COLUMNS,
    example_data_command,
    houses_csv,
    penguins_csv,
)
from tests.cli.conftest import run_cli

# the spelling of the missing cells in each column (NOTE [ The example tables ]) and their share
MISSING = {"lot_sqft": ("", 0.05), "bedrooms": ("NA", 0.03), "basement_sqft": ("NaN", 0.04),
           "neighborhood": ("", 0.02)}  # fmt: skip


def test_houses_are_the_same_bytes_for_a_seed_and_differ_across_seeds() -> None:
    first = houses_csv(400, seed=7)
    assert houses_csv(400, seed=7) == first
    assert houses_csv(400, seed=8) != first
    assert first.startswith((",".join(HOUSE_COLUMNS) + "\n").encode())
    assert first.count(b"\n") == 401 and first.endswith(b"\n")


def test_houses_columns_dtypes_and_missing_spellings() -> None:
    rows = 20_000
    data = houses_csv(rows, seed=1)
    table = pd.read_csv(io.BytesIO(data))  # pandas' defaults, as a user reads it
    assert list(table.columns) == HOUSE_COLUMNS and len(table) == rows
    for column in ("id", "sqft_living", "year_built", "price"):
        assert table[column].dtype == np.int64, column
    for column in ("bedrooms", "bathrooms", "lot_sqft", "basement_sqft"):
        assert table[column].dtype == np.float64, column
    for column in ("has_garage", "waterfront"):
        assert table[column].dtype == bool, column
    for column in ("neighborhood", "condition", "sold_on"):
        assert pd.api.types.is_string_dtype(table[column]), column
    np.testing.assert_array_equal(table["id"], np.arange(1, rows + 1))
    sold = pd.to_datetime(table["sold_on"], format="%Y-%m-%d")
    assert sold.min() >= pd.Timestamp("2015-01-01") and sold.max() <= pd.Timestamp("2024-12-31")
    assert set(table["condition"]) == {"poor", "fair", "average", "good", "excellent"}

    raw = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)  # cells as written
    for column in HOUSE_COLUMNS:
        spellings = raw[column].isin(["", "NA", "NaN"])
        nulls = int(table[column].isna().sum())
        assert nulls == int(spellings.sum()), column  # pandas reads every spelling as missing
        if column not in MISSING:
            assert nulls == 0, column
            continue
        spelling, share = MISSING[column]
        assert set(raw[column][spellings]) == {spelling}, column
        sd = np.sqrt(share * (1 - share) / rows)
        assert abs(nulls / rows - share) < 4 * sd, (column, nulls)


def test_neighborhoods_have_a_rare_tail() -> None:
    table = pd.read_csv(io.BytesIO(houses_csv(20_000, seed=2)))
    counts = table["neighborhood"].value_counts()
    assert set(counts.index) == set(NEIGHBORHOODS)
    assert counts.iloc[0] > 0.2 * len(table)  # a common one
    assert (counts.iloc[-3:] < 0.001 * len(table)).all()  # three below 0.1%


def test_price_depends_on_the_columns_that_need_encoding() -> None:
    table = pd.read_csv(io.BytesIO(houses_csv(20_000, seed=3)))
    log_price = np.log(table["price"].to_numpy(np.float64))
    numbers = table[["sqft_living", "bedrooms", "bathrooms", "lot_sqft", "basement_sqft",
                     "year_built"]]  # fmt: skip
    numbers = numbers.fillna(numbers.mean())
    numbers = numbers.assign(log_lot=np.log(numbers["lot_sqft"]))
    sold = pd.to_datetime(table["sold_on"])
    encoded = pd.concat(
        [
            numbers,
            pd.get_dummies(table[["neighborhood", "condition"]], dummy_na=True),
            table[["has_garage", "waterfront"]],
            pd.DataFrame({"years": (sold - pd.Timestamp("2015-01-01")).dt.days / 365.25}),
        ],
        axis=1,
    ).astype(np.float64)

    def r2(features: pd.DataFrame) -> float:
        x = np.c_[np.ones(len(features)), features.to_numpy()]
        fitted = x @ np.linalg.lstsq(x, log_price, rcond=None)[0]
        return 1 - np.sum((log_price - fitted) ** 2) / np.sum((log_price - log_price.mean()) ** 2)

    numeric_only, everything = r2(numbers), r2(encoded)
    assert everything > numeric_only + 0.15, (numeric_only, everything)
    # the booleans and the date as the NOTE's factors say (log-price differences, a few s.e.)
    waterfront = log_price[table["waterfront"]].mean() - log_price[~table["waterfront"]].mean()
    assert abs(waterfront - np.log(1.35)) < 0.08
    x = np.c_[np.ones(len(encoded)), encoded.to_numpy()]
    coef = dict(zip(["const", *encoded.columns], np.linalg.lstsq(x, log_price, rcond=None)[0]))
    assert abs(coef["has_garage"] - np.log(1.06)) < 0.015
    assert abs(coef["years"] - np.log(1.045)) < 0.006


def test_command_writes_refuses_to_overwrite_and_prints_the_fit_command(tmp_path, capsys) -> None:
    out = tmp_path / "data"
    assert example_data_command(out, "houses", 300, 4) == 0
    printed = capsys.readouterr().out
    assert f"batchfit fit {out / 'houses.csv'} --target price --out runs/houses" in printed
    assert (out / "houses.csv").read_bytes() == houses_csv(300, 4)
    assert sorted(p.name for p in out.iterdir()) == ["houses.csv"]  # no temporary left

    with pytest.raises(CliError, match=r"houses.csv already exists; pass --overwrite"):
        example_data_command(out, "all", 50, 5)
    assert (out / "houses.csv").read_bytes() == houses_csv(300, 4)  # untouched
    assert not (out / "penguins.csv").exists()  # nothing written when one file is refused
    example_data_command(out, "houses", 50, 5, overwrite=True)
    assert (out / "houses.csv").read_bytes() == houses_csv(50, 5)

    with pytest.raises(CliError, match="--rows sets the size of houses.csv"):
        example_data_command(out, "penguins", 100, 0)
    with pytest.raises(CliError, match="--name must be houses, penguins or all, got 'cars'"):
        example_data_command(out, "cars", None, 0)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "houses.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(CliError, match="already exists"):
        example_data_command(tmp_path / "linked", "houses", 10, 0)
    with pytest.raises(OSError, match="refusing to write through a symlink"):
        example_data_command(tmp_path / "linked", "houses", 10, 0, overwrite=True)


def test_penguins_from_the_installed_package(tmp_path, capsys) -> None:
    pytest.importorskip("palmerpenguins")  # in the dev extra
    shipped = importlib.resources.files("palmerpenguins").joinpath("data/penguins.csv")
    data, source = penguins_csv(seed=0)
    assert data == shipped.read_bytes()
    assert "CC0" in source and "palmerpenguins package" in source
    example_data_command(tmp_path, "penguins", None, 0)
    printed = capsys.readouterr().out
    assert "CC0" in printed and "(344 rows, classification: target species" in printed
    assert (
        f"batchfit fit {tmp_path / 'penguins.csv'} --target species --out runs/penguins" in printed
    )
    table = pd.read_csv(tmp_path / "penguins.csv")
    assert list(table.columns) == PENGUIN_COLUMNS and len(table) == 344
    assert table["species"].value_counts().to_dict() == {"Adelie": 152, "Gentoo": 124,
                                                          "Chinstrap": 68}  # fmt: skip
    assert table.isna().sum().sum() == 19  # 'NA' cells: 2 rows of measurements, 11 sexes


def test_penguins_fallback_without_the_package(tmp_path, monkeypatch, capsys) -> None:
    real_find_spec = importlib.util.find_spec

    def no_penguins(name, *args):
        return None if name == "palmerpenguins" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_penguins)
    data, source = penguins_csv(seed=0)
    assert "generated" in source and "pip install palmerpenguins" in source
    assert penguins_csv(seed=0)[0] == data and penguins_csv(seed=1)[0] != data
    example_data_command(tmp_path, "all", 100, 0)
    assert "generated stand-in" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "penguins.csv")
    raw = pd.read_csv(tmp_path / "penguins.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == PENGUIN_COLUMNS and len(table) == 344
    assert set(table["species"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert set(table["island"]) == {"Biscoe", "Dream", "Torgersen"}
    for column in ("species", "island", "sex"):
        assert pd.api.types.is_string_dtype(table[column]), column
    for column in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        assert table[column].dtype == np.float64, column
    assert table["year"].dtype == np.int64 and set(table["year"]) <= {2007, 2008, 2009}
    for column in PENGUIN_COLUMNS:
        assert int(table[column].isna().sum()) == int((raw[column] == "NA").sum()), column
    assert table["sex"].isna().sum() > 0 and table["body_mass_g"].isna().sum() > 0
    assert table["species"].isna().sum() == 0
    # the species differ as the real ones do: Gentoo heaviest, Adelie's bill shortest
    means = table.groupby("species")[["body_mass_g", "bill_length_mm"]].mean()
    assert means["body_mass_g"].idxmax() == "Gentoo"
    assert means["bill_length_mm"].idxmin() == "Adelie"
    assert example_data.DEFAULT_SEED == 0


def test_through_the_command(tmp_path: Path) -> None:
    done = run_cli("example-data", "--name", "houses", "--rows", "250", "--seed", "3",
                   "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"batchfit fit {tmp_path / 'houses.csv'} --target price --out runs/houses" in done.stdout
    assert (tmp_path / "houses.csv").read_bytes() == houses_csv(250, 3)
    again = run_cli("example-data", "--name", "houses", "--out", str(tmp_path))
    assert again.returncode == 1 and "pass --overwrite" in again.stderr
    assert run_cli("example-data", "--rows", "0").returncode == 2
    assert "Palmer penguins" in run_cli("example-data", "--help").stdout
