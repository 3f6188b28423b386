"""Raw tables: column kinds, the one pass, and the encoding, against pandas and NumPy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import batchfit as bf
from batchfit.data._table import TableSpec
from batchfit.data._table_kinds import sample_kinds
from batchfit.data._table_rows import TableRows, sample_frame
from batchfit.data._table_scan import TableScan

FEATURES = ["size", "city", "garden", "sold", "code"]


def raw_table(rows: int, seed: int) -> pd.DataFrame:
    """Every column kind, with missing cells in pandas' and R's spellings."""
    rng = np.random.default_rng(seed)
    city = rng.choice(
        ["Paris", "Lyon", "Nice", "Lille", "Brest"], rows, p=[0.4, 0.3, 0.2, 0.09, 0.01]
    )
    frame = pd.DataFrame(
        {
            "size": rng.uniform(20, 200, rows).round(2).astype(object),
            "city": city.astype(object),
            "garden": rng.choice(["True", "False", "true", "FALSE"], rows).astype(object),
            "sold": pd.Series(pd.date_range("2021-01-01", periods=rows, freq="7h"))
            .dt.strftime("%Y-%m-%d %H:%M:%S")
            .astype(object),
            "code": rng.integers(0, 4, rows).astype(str).astype(object),
            "constant": ["x"] * rows,
            "empty": [""] * rows,
            "price": rng.uniform(1, 9, rows).round(3).astype(object),
        }
    )
    frame["code"] = "c" + frame["code"]
    spellings = ["", "NA", "NaN", "null", "None", "N/A"]
    for j, column in enumerate(["size", "city", "garden", "sold"]):
        holes = rng.choice(rows, rows // 20, replace=False)
        frame.loc[holes, column] = [spellings[(j + k) % len(spellings)] for k in range(len(holes))]
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def one_pass(path: Path, features: list[str], target: str, **spec_options: Any) -> TableSpec:
    kinds = sample_kinds(sample_frame(str(path), [*features, target]), [*features, target])
    scan = TableScan(kinds)
    rows = TableRows(features, [target], kinds, scan=scan)
    source = bf.data.csv(str(path), target, features, batch_size=1000, table=rows)
    assert list(source) == []  # the pass yields nothing: every block went into the scan
    return TableSpec.from_scan(scan, features, [target], **spec_options)


def encoded(path: Path, spec: TableSpec, target: str | None, **options: Any) -> tuple[Any, ...]:
    targets = [target] if target else []
    rows = TableRows([f.name for f in spec.features], targets, spec.kinds(), spec=spec, **options)
    source = bf.data.csv(
        str(path), target, [f.name for f in spec.features], batch_size=10**6, table=rows
    )
    batches = list(source)
    assert len(batches) == 1
    return batches[0]


def test_kinds_detected_from_the_sample(tmp_path: Path) -> None:
    path = write(raw_table(400, 0), tmp_path / "t.csv")
    names = [*FEATURES, "constant", "empty", "price"]
    kinds = sample_kinds(sample_frame(str(path), names), names)
    assert {n: k for n, (k, _) in kinds.items()} == {
        "size": "number",
        "city": "category",
        "garden": "bool",
        "sold": "datetime",
        "code": "category",
        "constant": "category",
        "empty": "unknown",
        "price": "number",
    }
    assert kinds["sold"][1] == "%Y-%m-%d %H:%M:%S"


def test_parquet_nulls_and_types(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1.5, None, 3.0, 4.0], dtype="Float64"),
            "b": pd.array([True, None, False, True], dtype="boolean"),
            "s": ["a", None, "b", "a"],
            "d": pd.to_datetime(["2020-01-01", None, "2020-03-01", "2021-01-01"]),
            "y": [1.0, 2.0, 3.5, 4.0],
        }
    )
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    names = ["n", "b", "s", "d", "y"]
    kinds = sample_kinds(sample_frame(str(path), names), names)
    assert [kinds[n][0] for n in names] == ["number", "bool", "category", "datetime", "number"]
    scan = TableScan(kinds)
    rows = TableRows(names[:4], ["y"], kinds, scan=scan)
    assert list(bf.data.parquet(str(path), "y", names[:4], table=rows)) == []
    spec = TableSpec.from_scan(scan, names[:4], ["y"], min_count=1)
    assert [f.indicator for f in spec.features if f.kind != "category"] == [True, True, True]
    rows = TableRows(names[:4], ["y"], spec.kinds(), spec=spec)
    x, y = next(iter(bf.data.parquet(str(path), "y", names[:4], batch_size=4, table=rows)))
    got = dict(zip(spec.output_names(), x.T, strict=True))
    np.testing.assert_allclose(got["n"], [1.5, frame["n"].mean(), 3.0, 4.0], rtol=1e-6)
    np.testing.assert_array_equal(got["n_missing"], [0, 1, 0, 0])
    np.testing.assert_allclose(got["b"], [1, 2 / 3, 0, 1], rtol=1e-6)
    np.testing.assert_array_equal(got["s=<missing>"], [0, 1, 0, 0])
    np.testing.assert_allclose(got["d.month"], [1, (1 + 3 + 1) / 3, 3, 1], rtol=1e-6)
    np.testing.assert_allclose(y, frame["y"])


def test_encoding_matches_pandas(tmp_path: Path) -> None:
    frame = raw_table(3000, 1)
    path = write(frame, tmp_path / "t.csv")
    spec = one_pass(path, [*FEATURES, "constant", "empty"], "price", min_count=40)
    assert spec.dropped == {"empty": "every cell is missing", "constant": "constant"}
    assert spec.task == "regression"
    x, y = encoded(path, spec, "price")
    got = dict(zip(spec.output_names(), x.T, strict=True))

    truth = pd.read_csv(path)  # pandas' own reading: its na_values, its types
    size = truth["size"]
    assert spec.features[0].indicator and size.isna().sum() == 150
    np.testing.assert_allclose(got["size"], size.fillna(size.mean()), rtol=1e-6)
    np.testing.assert_array_equal(got["size_missing"], size.isna())
    mean, variance = spec.standardisation()
    np.testing.assert_allclose(mean[0], size.mean(), rtol=1e-9)
    np.testing.assert_allclose(variance[0], size.var(ddof=0) * size.count() / len(size), rtol=1e-9)

    counts = truth["city"].value_counts()
    kept = [c for c, n in counts.items() if n >= 40]  # most frequent first
    assert spec.features[1].vocabulary == kept and "Brest" not in kept
    for value in kept:
        np.testing.assert_array_equal(got[f"city={value}"], truth["city"] == value)
    np.testing.assert_array_equal(got["city=<missing>"], truth["city"].isna())
    rare = truth["city"].notna() & ~truth["city"].isin(kept)
    np.testing.assert_array_equal(got["city=<other>"], rare)

    garden = truth["garden"].astype(str).str.lower().map({"true": 1.0, "false": 0.0})
    np.testing.assert_allclose(got["garden"], garden.fillna(garden.mean()), rtol=1e-6)

    sold = pd.to_datetime(truth["sold"])
    for part, values in (("year", sold.dt.year), ("month", sold.dt.month), ("day", sold.dt.day)):
        filled = values.astype(float).fillna(values.mean())
        np.testing.assert_allclose(got[f"sold.{part}"], filled, rtol=1e-6)
    weekday = (sold.dt.day_of_week + 1).astype(float)  # ISO: Monday is 1
    np.testing.assert_allclose(got["sold.weekday"], weekday.fillna(weekday.mean()), rtol=1e-6)
    np.testing.assert_array_equal(got["sold_missing"], sold.isna())
    np.testing.assert_allclose(y, truth["price"], rtol=1e-6)


def test_unseen_categories_and_missing_cells_encode_finite(tmp_path: Path) -> None:
    spec = one_pass(write(raw_table(500, 2), tmp_path / "t.csv"), FEATURES, "price")
    new = pd.DataFrame(
        {
            "size": ["", "NA", "12.5"],
            "city": ["Atlantis", "", "Paris"],
            "garden": ["NA", "TRUE", ""],
            "sold": ["", "2030-01-01 00:00:00", "NA"],
            "code": ["c9", "c1", "null"],
        }
    )
    (x,) = encoded(write(new, tmp_path / "new.csv"), spec, None)
    assert x.shape == (3, len(spec.output_names())) and np.isfinite(x).all()
    got = dict(zip(spec.output_names(), x.T, strict=True))
    np.testing.assert_array_equal(got["city=<other>"], [1, 0, 0])
    np.testing.assert_array_equal(got["city=<missing>"], [0, 1, 0])
    np.testing.assert_array_equal(got["city=Paris"], [0, 0, 1])


def test_bad_cells_named_or_skipped_and_missing_targets_counted(tmp_path: Path) -> None:
    frame = raw_table(300, 3)
    frame.loc[120, "size"] = "big"
    frame.loc[150, "size"] = "inf"  # not a number a model can learn from: a bad cell too
    frame.loc[[7, 8], "price"] = ["NA", ""]
    path = write(frame, tmp_path / "t.csv")
    with pytest.raises(
        ValueError, match=r"t.csv line 122: column 'size' holds number values, got 'big'"
    ):
        one_pass(path, FEATURES, "price")
    kinds = sample_kinds(sample_frame(str(path), [*FEATURES, "price"]), [*FEATURES, "price"])
    scan = TableScan(kinds)
    rows = TableRows(FEATURES, ["price"], kinds, scan=scan, on_bad_rows="skip")
    source = bf.data.csv(str(path), "price", FEATURES, table=rows)
    list(source)
    assert (
        source.stats["bad_rows_skipped"] == 2 and source.stats["missing_target_rows_skipped"] == 2
    )
    assert scan.rows == 296
    spec = TableSpec.from_scan(scan, FEATURES, ["price"])
    strict = dict(on_missing="raise")
    with pytest.raises(ValueError, match=r"missing value in column 'size' at .*t.csv line \d+"):
        encoded(path, spec, "price", on_bad_rows="skip", **strict)
    x, _y = encoded(path, spec, "price", on_bad_rows="skip", on_missing="skip")
    complete = frame.drop(index=[7, 8, 120, 150]).replace(
        ["", "NA", "NaN", "null", "None", "N/A"], np.nan
    )
    assert len(x) == complete[FEATURES].notna().all(axis=1).sum()


def test_labels_bounded_vocabulary_and_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = 6000
    frame = pd.DataFrame(
        {
            "user": [f"u{v}" for v in rng.zipf(1.3, rows) % 5000],
            "size": rng.normal(size=rows),
            "label": rng.choice(["b", "a", "c"], rows),
        }
    )
    path = write(frame, tmp_path / "t.csv")
    names = ["user", "size", "label"]
    kinds = sample_kinds(sample_frame(str(path), names), names)
    whole = TableScan(kinds, keep=50)
    halves = [TableScan(kinds, keep=50), TableScan(kinds, keep=50)]
    for scan, part in ((whole, frame), (halves[0], frame[:3000]), (halves[1], frame[3000:])):
        rows_ = TableRows(names[:2], ["label"], kinds, scan=scan)
        file = write(part, tmp_path / f"part{id(scan)}.csv")
        list(bf.data.csv(str(file), "label", names[:2], block_bytes=4096, table=rows_))
        assert len(scan.columns["user"].counts) <= 100  # bounded by 2 * keep, not the file
    halves[0].merge(halves[1])
    options = dict(max_categories=10, min_count=1)
    spec = TableSpec.from_scan(whole, names[:2], ["label"], **options)
    merged = TableSpec.from_scan(halves[0], names[:2], ["label"], **options)
    top = frame["user"].value_counts()
    top = top.sort_index().sort_values(ascending=False, kind="stable")
    assert spec.features[0].vocabulary == list(top.index[:10])  # the frequent ones are exact
    assert merged.features[0].vocabulary == spec.features[0].vocabulary
    assert spec.features[0].hash_bins == 16  # more values than the cap: hashed past it
    assert spec.task == "multiclass" and spec.classes == ["a", "b", "c"]
    _, y = encoded(path, spec, "label")
    np.testing.assert_array_equal(y, frame["label"].map({"a": 0, "b": 1, "c": 2}))
    x, _ = encoded(path, spec, "label")
    assert (x[:, : 10 + 16 + 1].sum(axis=1) == 1).all()  # exactly one slot per row


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format=2), "format"),
        (lambda d: d["features"][0].update(vocabulary=[1, 2]), "vocabulary"),
        (lambda d: d["features"][0].update(kind="code"), "kind"),
        (lambda d: d.update(features="all"), "features"),
        (lambda d: d["features"][0].update(hash_bins=10**9), "hash_bins"),
        (lambda d: d.update(extra=1), "unknown keys"),
        (lambda d: d["features"][1].update(mean=[1.0, 2.0]), "mean and variance"),
    ],
)
def test_doctored_spec_refused(tmp_path: Path, edit: Any, message: str) -> None:
    spec = one_pass(write(raw_table(300, 5), tmp_path / "t.csv"), ["city", "size"], "price")
    data = json.loads(json.dumps(spec.to_json()))
    assert TableSpec.from_json(data, "t.json") == spec
    edit(data)
    with pytest.raises(ValueError, match=message):
        TableSpec.from_json(data, "t.json")


def test_columns_read_as_they_are(tmp_path: Path) -> None:
    frame = raw_table(900, 6)
    path = write(frame, tmp_path / "t.csv")
    truth = pd.read_csv(path)
    (city,) = next(iter(bf.data.csv(str(path), columns=["city"], batch_size=10**6)))
    assert city.dtype == object
    np.testing.assert_array_equal(city, truth["city"].fillna("").to_numpy())  # missing: ""
    (both,) = next(iter(bf.data.csv(str(path), columns=["size", "city"], batch_size=7)))
    assert list(both) == ["size", "city"] and both["size"].dtype == np.float64
    np.testing.assert_array_equal(both["size"], truth["size"][:7])  # NaN where missing

    # Keras' StringLookup adapts on the stream in one pass: pandas' counts, Keras' order
    lookup = bf.layers.StringLookup()
    lookup.adapt(bf.data.csv(str(path), columns=["city"], batch_size=100))
    counts = truth["city"].fillna("").value_counts()
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert sorted(lookup.get_vocabulary()[1:]) == sorted(v for v, _ in order)
    assert [c for c in lookup.get_vocabulary()[1:3]] == [v for v, _ in order[:2]]

    frame.replace(["", "NA", "NaN", "null", "None", "N/A"], None).to_parquet(tmp_path / "t.parquet")
    (sold,) = next(
        iter(bf.data.parquet(str(tmp_path / "t.parquet"), columns=["sold"], batch_size=5))
    )
    np.testing.assert_array_equal(sold, truth["sold"].fillna("")[:5])

    with pytest.raises(ValueError, match="without target/features"):
        bf.data.csv(str(path), "price", columns=["city"])
    with pytest.raises(ValueError, match=r"\['town'\] not found"):
        bf.data.csv(str(path), columns=["town"])
    frame.loc[500, "size"] = "huge"
    bad = write(frame, tmp_path / "bad.csv")
    with pytest.raises(ValueError, match=r"bad.csv line 502: column 'size' holds number values"):
        list(bf.data.csv(str(bad), columns=["size"], batch_size=64))


def test_wrong_field_count_takes_the_row_by_row_path(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    lines = [
        "size,city,price",
        *[f"{i}.5,{'NA' if i % 7 == 0 else 'Paris'},{i}" for i in range(40)],
    ]
    lines[12] = "11.5,Lyon,11,extra"  # line 13 of the file
    path.write_text("\n".join(lines) + "\n")
    names = ["size", "city"]
    kinds = sample_kinds(sample_frame(str(path), [*names, "price"]), [*names, "price"])
    assert kinds["city"][0] == "category"
    with pytest.raises(
        ValueError, match=r"t.csv line 13: expected 3 fields, got 4 \(pass on_bad_rows"
    ):
        list(
            bf.data.csv(
                str(path),
                "price",
                names,
                table=TableRows(names, ["price"], kinds, scan=TableScan(kinds)),
            )
        )
    scan = TableScan(kinds)
    rows = TableRows(names, ["price"], kinds, scan=scan, on_bad_rows="skip")
    source = bf.data.csv(str(path), "price", names, table=rows)
    list(source)
    assert source.stats["bad_rows_skipped"] == 1 and scan.rows == 39
    assert scan.columns["city"].missing == sum(1 for i in range(40) if i % 7 == 0 and i != 11)
