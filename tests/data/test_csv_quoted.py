"""Quoted fields holding line breaks, commas and doubled quotes (RFC 4180).

Cuts between units must fall only on line breaks outside quotes, so small
`block_bytes` (cuts land everywhere) give exactly the rows a CSV reader gives.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import tempfile

import numpy as np
import pandas as pd
import pytest
from contract import epoch_batches, rows_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import batchfit.data as bd
from batchfit.data._csv import CsvSource

# text pieces: line breaks, commas, quotes and whole CSV-looking rows inside a field
PIECES = ["nice house", "with garden", "\n", "\n\n", ", ", '"', '""', "2,3.5,7\n", "x,", " "]
BLOCKS = [1, 7, 64, 100, 257, 512, 4096]


def _text(rng: np.random.Generator, allow_empty: bool) -> str:
    if allow_empty and rng.random() < 0.1:
        return ""
    return "".join(rng.choice(PIECES) for _ in range(rng.integers(1, 6)))


def _rows(n: int, seed: int, allow_empty: bool = True) -> list[list[object]]:
    """`id, description, f0, price` with `price = 2*id + 1`; numbers exact in float32."""
    rng = np.random.default_rng(seed)
    return [
        [i, _text(rng, allow_empty), float(rng.integers(-400, 400)) / 4, 2 * i + 1]
        for i in range(n)
    ]


def _encode(rows: list[list[object]], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header or ["id", "description", "f0", "price"])
    writer.writerows(rows)
    return out.getvalue().encode()


def _write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if str(path).endswith(".gz") else data)
    return str(path)


def _reference(path: str) -> np.ndarray:
    """`id, f0, price` as pandas reads them."""
    frame = pd.read_csv(path, keep_default_na=False)
    return frame[["id", "f0", "price"]].to_numpy(np.float32)


def _stacked(batches: list) -> np.ndarray:
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches]).reshape(len(x), 1)
    return np.hstack([x, y])


def _source(path: str, **options) -> CsvSource:
    options = {"batch_size": 16, "prefetch": 0, **options}
    return bd.csv(path, target="price", features=["id", "f0"], **options)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("quoted")
    rows = _rows(300, seed=3)
    assert sum("\n" in r[1] for r in rows) > 100  # many rows span lines
    data = _encode(rows)
    clean = _encode(_rows(300, seed=4, allow_empty=False))  # parsed by polars, not row by row
    return {
        "plain": _write(tmp / "q.csv", data),
        "gzip": _write(tmp / "q.csv.gz", data),
        "clean": _write(tmp / "clean.csv", clean),
        "clean-gzip": _write(tmp / "clean.csv.gz", clean),
        "crlf": _write(tmp / "crlf.csv", data.replace(b"\n", b"\r\n")),
    }


@pytest.mark.parametrize("kind", ["plain", "gzip", "clean", "clean-gzip", "crlf"])
@pytest.mark.parametrize("block_bytes", BLOCKS)
def test_rows_equal_a_csv_reader(files, kind, block_bytes, monkeypatch) -> None:
    path = files[kind]
    expected = _reference(path)
    assert len(expected) == 300
    if kind.startswith("clean"):  # no missing values: polars parses every unit itself

        def fail(*args, **kwargs):
            raise AssertionError("slow path taken")

        monkeypatch.setattr(CsvSource, "_parse_slow", fail)
    source = _source(path, block_bytes=block_bytes)
    got = _stacked(epoch_batches(source))
    np.testing.assert_array_equal(got, expected)  # every row once, in file order
    assert source.stats["rows_read"] == 300
    assert source.stats["bad_rows_skipped"] == 0
    if not path.endswith(".gz"):
        assert len(source._units) == 300 if block_bytes == 1 else len(source._units) > 1


@pytest.mark.parametrize("kind", ["plain", "gzip"])
def test_skipping_bad_rows_drops_nothing(files, kind) -> None:
    source = _source(files[kind], block_bytes=64, on_bad_rows="skip")
    np.testing.assert_array_equal(_stacked(epoch_batches(source)), _reference(files[kind]))
    assert source.stats["bad_rows_skipped"] == 0


@pytest.mark.parametrize("block_bytes", [1, 64, 512])
def test_shuffled_and_sharded(files, block_bytes) -> None:
    path = files["plain"]
    ids = np.arange(300)
    source = _source(path, block_bytes=block_bytes, shuffle=True, shuffle_buffer=50, seed=1)
    got = rows_of(epoch_batches(source, 1))
    assert not np.array_equal(got, ids)
    np.testing.assert_array_equal(np.sort(got), ids)
    shards = [
        rows_of(
            epoch_batches(_source(path, block_bytes=block_bytes, shuffle=True, seed=2).shard(r, 3))
        )
        for r in range(3)
    ]
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), ids)


def test_prefetching_source_agrees(files) -> None:
    expected = _reference(files["plain"])
    got = _stacked(list(_source(files["plain"], block_bytes=100, prefetch=2)))
    np.testing.assert_array_equal(got, expected)


def _lines_before(data: bytes, row: int) -> int:
    """Physical line (1-based) where data row `row` (0-based) starts."""
    reader = csv.reader(io.StringIO(data.decode(), newline=""))
    next(reader)  # header
    for i, _ in enumerate(reader):
        if i == row - 1:
            return reader.line_num + 1
    raise AssertionError(row)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("allow_empty", [False, True])  # polars' fast path, or row by row
@pytest.mark.parametrize("block_bytes", [64, 100_000])
def test_errors_name_the_physical_line(tmp_path, gz, allow_empty, block_bytes) -> None:
    rows = _rows(80, seed=5, allow_empty=allow_empty)
    rows[70][2] = "nan"
    data = _encode(rows)
    line = _lines_before(data, 70)
    assert line > 100  # earlier rows span several lines
    path = _write(tmp_path / ("n.csv.gz" if gz else "n.csv"), data)
    with pytest.raises(
        ValueError, match=rf"non-finite value .* in column 'f0' at .*n\.csv(\.gz)? line {line}\b"
    ):
        list(_source(path, block_bytes=block_bytes))

    rows[70][2] = "abc"
    path = _write(tmp_path / ("m.csv.gz" if gz else "m.csv"), _encode(rows))
    with pytest.raises(
        ValueError, match=rf"malformed row at .*m\.csv(\.gz)? line {line}: column 'f0'"
    ):
        list(_source(path, block_bytes=block_bytes))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("on_bad_rows", ["raise", "skip"])
@pytest.mark.parametrize("block_bytes", [1, 64, 100_000])
def test_unclosed_quote_is_an_error(tmp_path, gz, on_bad_rows, block_bytes) -> None:
    rows = _rows(60, seed=6)
    for row in rows[40:]:  # a quote after the stray one would pair with it
        row[1] = "plain text"
    data = _encode(rows)
    line = _lines_before(data, 40)
    bad = data.replace(f"\n{40},".encode(), f'\n{40},"never closed,'.encode(), 1)
    assert bad != data
    path = _write(tmp_path / ("u.csv.gz" if gz else "u.csv"), bad)
    with pytest.raises(
        ValueError, match=rf"unclosed quote in the row at .*u\.csv(\.gz)? line {line}:"
    ):
        list(_source(path, block_bytes=block_bytes, on_bad_rows=on_bad_rows))


@pytest.mark.parametrize("gz", [False, True])
def test_unclosed_quote_on_the_last_line(tmp_path, gz) -> None:
    data = _encode(_rows(10, seed=7, allow_empty=False)) + b'10,"no end\n1,2\n'
    line = data.count(b"\n") - 1
    path = _write(tmp_path / ("u.csv.gz" if gz else "u.csv"), data)
    with pytest.raises(
        ValueError, match=rf"unclosed quote in the row at .*u\.csv(\.gz)? line {line}:"
    ):
        list(_source(path, block_bytes=32))


def test_unclosed_quote_in_the_header(tmp_path) -> None:
    path = _write(tmp_path / "h.csv", b'id,"description,f0,price\n1,a,2,3\n')
    with pytest.raises(ValueError, match=r"unclosed quote in the row at .*h\.csv line 1:"):
        _source(path)


@pytest.mark.parametrize("gz", [False, True])
def test_header_with_a_quoted_line_break(tmp_path, gz) -> None:
    rows = _rows(50, seed=8)
    data = _encode(rows, header=["id", 'long\ndescription, with "quotes"', "f0", "price"])
    path = _write(tmp_path / ("h.csv.gz" if gz else "h.csv"), data)
    source = _source(path, block_bytes=50)
    assert source.column_names == ["id", 'long\ndescription, with "quotes"', "f0", "price"]
    expected = np.array([[r[0], r[2], r[3]] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(_stacked(epoch_batches(source)), expected)


def test_text_column_still_refused_as_a_feature(files) -> None:
    with pytest.raises(TypeError, match=r"(?s)column 'description' .* expected numbers"):
        bd.csv(files["clean"], target="price")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.text(alphabet='a,"\n ', max_size=12), min_size=1, max_size=40),
    block_bytes=st.integers(1, 200),
    gz=st.booleans(),
    delimiter=st.sampled_from([",", ";"]),
)
def test_any_text_any_cut(texts, block_bytes, gz, delimiter) -> None:
    rows = [[i, text, i / 2, 2 * i + 1] for i, text in enumerate(texts)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    writer.writerow(["id", "description", "f0", "price"])
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(os.path.join(tmp, "t.csv.gz" if gz else "t.csv"), out.getvalue().encode())
        source = _source(path, block_bytes=block_bytes, delimiter=delimiter, on_bad_rows="skip")
        got = _stacked(epoch_batches(source))
    expected = np.array([[r[0], r[2], r[3]] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)
    assert source.stats["bad_rows_skipped"] == 0


@pytest.mark.parametrize("gz", [False, True])
def test_stray_quotes_in_unquoted_fields(tmp_path, gz, monkeypatch) -> None:
    """`5" pipe` is read as is (row by row); the cuts between a pair of such quotes
    are lost, which is an error once the quote stays open for `OPEN_BYTES`."""
    import batchfit.data._csv_cuts as cuts_module

    rows = _rows(200, seed=9)
    for row in rows[30:]:
        row[1] = "plain text"
    rows[40][1], rows[190][1] = "5in pipe", "7in tube"
    data = _encode(rows).replace(b"in pipe", b'" pipe').replace(b"in tube", b'" tube')
    assert data.count(b'5" pipe,') == data.count(b'7" tube,') == 1
    path = _write(tmp_path / ("s.csv.gz" if gz else "s.csv"), data)
    source = _source(path, block_bytes=64)
    expected = np.array([[r[0], r[2], r[3]] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(_stacked(epoch_batches(source)), expected)

    monkeypatch.setattr(cuts_module, "OPEN_BYTES", 300)
    line = _lines_before(data, 40)
    with pytest.raises(
        ValueError, match=rf"unclosed quote in the row at .*s\.csv(\.gz)? line {line}:"
    ):
        list(_source(path, block_bytes=64))


@pytest.mark.parametrize("gz", [False, True])
def test_newlines_in_values_false_cuts_at_every_line_break(tmp_path, gz) -> None:
    rows = [[i, f'"{i}" inch', float(i) / 4, 2 * i + 1] for i in range(200)]  # quotes, no breaks
    data = _encode(rows)
    path = _write(tmp_path / ("q.csv.gz" if gz else "q.csv"), data)
    want = _stacked(epoch_batches(_source(path, block_bytes=64)))
    fast = _source(path, block_bytes=64, newlines_in_values=False)
    np.testing.assert_array_equal(_stacked(epoch_batches(fast)), want)
    if not gz:  # each cut: the first line break at or after 64 bytes into the unit
        start, cuts = data.index(b"\n") + 1, []
        while start < len(data):
            stop = data.find(b"\n", start + 63) + 1 or len(data)
            cuts.append((0, start, stop))
            start = stop
        assert fast._units == cuts


def test_newlines_in_values_false_never_trains_on_split_records(files) -> None:
    source = _source(files["plain"], block_bytes=64, newlines_in_values=False)
    with pytest.raises(ValueError, match=r"malformed row at .*q\.csv line \d+"):
        epoch_batches(source)
