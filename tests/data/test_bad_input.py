"""Bad input gives a clear error saying what was expected, what came, and where."""

from __future__ import annotations

import gzip
import logging
import os

import numpy as np
import pandas as pd
import pytest
from contract import epoch_batches, rows_of
from datafiles import table, write_csv, write_parquet

import batchfit.data as bd

HEADER = "id,f0,price\n"


def _rows(n: int, start: int = 0) -> list[str]:
    return [f"{i},{i * 0.5},{2 * i + 1}\n" for i in range(start, start + n)]


def _write(path, lines: list[str], gz: bool = False) -> str:
    data = "".join(lines).encode()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return str(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("5,6\n", "expected 3 fields, got 2"),
        ("5,6,7,8\n", "expected 3 fields, got 4"),
        ("5,abc,7\n", "column 'f0': expected a number, got 'abc'"),
        ("5,,7\n", "column 'f0': expected a number, got ''"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, gz, bad, problem) -> None:
    lines = [HEADER, *_rows(60), bad, *_rows(30, start=60)]  # the bad row is line 62
    path = _write(tmp_path / ("h.csv.gz" if gz else "h.csv"), lines, gz)
    source = bd.csv(path, target="price", batch_size=7, block_bytes=100)
    with pytest.raises(ValueError, match=rf"malformed row at .*h\.csv(\.gz)? line 62: {problem}"):
        list(source)
    skipping = bd.csv(path, target="price", batch_size=7, block_bytes=100, on_bad_rows="skip")
    ids = rows_of(epoch_batches(skipping))
    np.testing.assert_array_equal(ids, np.arange(90))
    assert skipping.stats["bad_rows_skipped"] == 1
    assert skipping.stats["rows_read"] == 90


def test_skipped_rows_logged_once_per_file(tmp_path, caplog) -> None:
    path = _write(tmp_path / "h.csv", [HEADER, "1,2\n", *_rows(5), "x,y,z\n", *_rows(3)])
    source = bd.csv(path, target="price", on_bad_rows="skip", prefetch=0)
    with caplog.at_level(logging.WARNING, logger="batchfit.data"):
        assert sum(len(b[0]) for b in source) == 8
    assert source.stats["bad_rows_skipped"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "h.csv line 2" in messages[0]


def test_blank_lines_are_ignored(tmp_path) -> None:
    path = _write(tmp_path / "h.csv", [HEADER, *_rows(4), "\n", *_rows(2, start=4), "\n\n"])
    assert sum(len(b[0]) for b in bd.csv(path, target="price")) == 6


@pytest.mark.parametrize(("value", "shown"), [("nan", "nan"), ("inf", "inf"), ("-inf", "-inf")])
def test_nan_names_column_and_line(tmp_path, value, shown) -> None:
    lines = [HEADER, *_rows(40), f"40,{value},81\n", *_rows(10, start=41)]  # line 42
    path = _write(tmp_path / "h.csv", lines)
    with pytest.raises(
        ValueError, match=rf"non-finite value .*{shown}.* in column 'f0' at .*h\.csv line 42"
    ):
        list(bd.csv(path, target="price", block_bytes=64))
    source = bd.csv(path, target="price", block_bytes=64, on_nan="skip", batch_size=8)
    ids = rows_of(epoch_batches(source))
    assert 40 not in ids and len(ids) == 50
    assert source.stats["nan_rows_skipped"] == 1


def test_nan_in_target_is_reported(tmp_path) -> None:
    path = _write(tmp_path / "h.csv", [HEADER, *_rows(3), "3,1.5,nan\n"])
    with pytest.raises(ValueError, match=r"column 'price' at .*line 5"):
        list(bd.csv(path, target="price"))


def test_missing_columns_list_what_exists(tmp_path) -> None:
    path = write_csv(str(tmp_path / "h.csv"), table(5))
    with pytest.raises(
        ValueError, match=r"target column\(s\) \['cost'\] not found .*columns are \['id', 'f0'"
    ):
        bd.csv(path, target="cost")
    with pytest.raises(ValueError, match=r"feature column\(s\) \['zz'\] not found"):
        bd.csv(path, target="price", features=["id", "zz"])
    parquet = write_parquet(str(tmp_path / "h.parquet"), table(5), 2)
    with pytest.raises(ValueError, match=r"target column\(s\) \['cost'\] not found .*columns are"):
        bd.parquet(parquet, target="cost")
    with pytest.raises(ValueError, match=r"not found in frame chunk 0; the columns are"):
        list(bd.frames([pd.DataFrame(table(5))], target="cost"))


def test_non_numeric_column_named_with_type(tmp_path) -> None:
    path = _write(tmp_path / "h.csv", ["id,city,price\n", "1,Seattle,3\n", "2,Kent,5\n"])
    with pytest.raises(
        TypeError, match=r"column 'city' .* holds String values \(e\.g\. 'Seattle'\)"
    ):
        bd.csv(path, target="price")
    assert len(list(bd.csv(path, target="price", features=["id"]))) == 1  # leaving it out works
    frame = pd.DataFrame({"id": [1, 2], "city": ["a", "b"], "price": [1.0, 2.0]})
    parquet = str(tmp_path / "h.parquet")
    frame.to_parquet(parquet)
    with pytest.raises(TypeError, match=r"column 'city' .* has type (string|large_string)"):
        bd.parquet(parquet, target="price")
    with pytest.raises(TypeError, match=r"column 'city' in frame chunk 0 has type (object|str)"):
        list(bd.frames([frame], target="price"))


def test_empty_inputs(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"matches no CSV files"):
        bd.csv(str(tmp_path / "*.csv"), target="price")
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        bd.csv(str(tmp_path / "nope.csv"), target="price")
    empty = _write(tmp_path / "empty.csv", [])
    with pytest.raises(ValueError, match=r"empty\.csv is empty: expected a header line"):
        bd.csv(empty, target="price")
    header_only = _write(tmp_path / "header.csv", [HEADER])
    with pytest.raises(ValueError, match=r"header\.csv has a header but no rows"):
        bd.csv(header_only, target="price")
    gz_header_only = _write(tmp_path / "header.csv.gz", [HEADER], gz=True)
    with pytest.raises(ValueError, match=r"header\.csv\.gz is empty"):
        list(bd.csv(gz_header_only, target="price"))
    cols = table(0)
    with pytest.raises(ValueError, match=r"e\.parquet is empty"):
        bd.parquet(write_parquet(str(tmp_path / "e.parquet"), cols, 10), target="price")
    np.save(tmp_path / "x.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"x\.npy' is empty"):
        bd.npy(tmp_path / "x.npy")


def test_mismatched_columns_name_both_files(tmp_path) -> None:
    a = write_csv(str(tmp_path / "a.csv"), table(5))
    b = write_csv(str(tmp_path / "b.csv"), {k: v for k, v in table(5).items() if k != "f1"})
    with pytest.raises(ValueError, match=r"columns differ between .*a\.csv and .*b\.csv"):
        bd.csv([a, b], target="price")
    pa_ = write_parquet(str(tmp_path / "a.parquet"), table(5), 5)
    pb = write_parquet(
        str(tmp_path / "b.parquet"), {k: v for k, v in table(5).items() if k != "f1"}, 5
    )
    with pytest.raises(ValueError, match=r"columns differ between .*a\.parquet and .*b\.parquet"):
        bd.parquet([pa_, pb], target="price")
    frames = [pd.DataFrame(table(5)), pd.DataFrame(table(5)).drop(columns="f1")]
    with pytest.raises(ValueError, match=r"frame chunk 1 lacks column\(s\) \['f1'\]"):
        list(bd.frames(frames, target="price"))


def test_npy_row_mismatch_and_nan(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    np.save(tmp_path / "y.npy", np.zeros(4))
    with pytest.raises(ValueError, match=r"y\.npy has 4 rows but .*x\.npy has 5"):
        bd.npy(tmp_path / "x.npy", tmp_path / "y.npy")
    x = np.zeros((5, 2))
    x[3, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match=r"non-finite value .* at row 3 of .*x\.npy"):
        list(bd.npy(tmp_path / "x.npy"))


def test_parquet_nulls_are_reported_or_skipped(tmp_path) -> None:
    cols = {k: list(v) for k, v in table(6).items()}
    cols["f0"][4] = None
    path = str(tmp_path / "n.parquet")
    pd.DataFrame(cols).to_parquet(path)
    with pytest.raises(ValueError, match=r"column 'f0' at .*n\.parquet row 4"):
        list(bd.parquet(path, target="price"))
    source = bd.parquet(path, target="price", on_nan="skip")
    assert sum(len(b[0]) for b in source) == 5 and source.stats["nan_rows_skipped"] == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"shuffle_buffer": -1}, "shuffle_buffer must be an integer >= 0"),
        ({"on_nan": "ignore"}, r"on_nan must be one of \['raise', 'skip'\]"),
        ({"on_bad_rows": "drop"}, r"on_bad_rows must be one of"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match) -> None:
    path = write_csv(str(tmp_path / "h.csv"), table(5))
    with pytest.raises(ValueError, match=match):
        bd.csv(path, target="price", **kwargs)


def test_bad_shard_arguments(tmp_path) -> None:
    source = bd.csv(write_csv(str(tmp_path / "h.csv"), table(5)), target="price")
    with pytest.raises(ValueError, match=r"rank must be an integer in \[0, 2\), got 2"):
        source.shard(2, 2)
    assert os.path.exists(source.files[0])


def test_frames_without_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="frames\\(\\) got no rows this epoch"):
        list(bd.frames([], target="price"))
    with pytest.raises(ValueError, match="frames\\(\\) got no rows"):
        list(bd.frames(lambda: iter([pd.DataFrame(table(0))]), target="price"))
