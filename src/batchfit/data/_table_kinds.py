"""What kind each column of a raw table holds, and its cells as typed values.

NOTE [ Column kinds ]
A table as people have it holds numbers, booleans, strings, dates and empty
cells. Each column gets one kind, decided from a sample of the first file:

- `number`: at least 90% of the filled cells parse as floats (the others are
  bad rows, refused or skipped with their line named);
- `bool`: every filled cell is one of `true/false/True/False/TRUE/FALSE`
  (a column of only `0`/`1` is a number, which encodes the same way);
- `datetime`: every filled cell parses with one of `DATE_FORMATS` (the first
  that fits all of them is kept, so every block parses the same way);
- `category`: anything else (strings, codes);
- `unknown`: no filled cell in the sample; the streamed pass decides
  (`number` if every cell it sees parses, `empty` if it sees none).

Missing cells are those pandas reads as missing (`NULL_SPELLINGS`: empty,
`NA`, `NaN`, `null`, `None`, `N/A`, ...; the CSV parse turns them into nulls)
and Parquet nulls (a Parquet string "NA" is a value, as pandas reads it). A number column is
parsed by polars as Float64 directly; the other kinds are read as strings and
converted here, so a cell that does not fit its column's kind (a word in a
number column, a bad date) is found and named by its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "BOOL_WORDS",
    "DATE_FORMATS",
    "KINDS",
    "NULL_SPELLINGS",
    "detect_kind",
    "read_dtype",
    "to_typed",
]

#: pandas' default `na_values` (`pandas.read_csv`), so a table reads as pandas reads it
NULL_SPELLINGS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)

BOOL_WORDS = {"true": True, "false": False}

#: tried in order; ISO forms first, then the two common day-first/month-first
#: forms are NOT guessed (01/02/2024 is ambiguous), only year-first ones
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
)

KINDS = ("number", "bool", "category", "datetime", "unknown", "empty")


def detect_kind(series: Any) -> tuple[str, str | None]:
    """The kind of one sampled column (NOTE [ Column kinds ]) and its date format."""
    import polars as pl

    dtype = series.dtype
    if dtype == pl.Null:
        return "unknown", None
    if dtype == pl.Boolean:
        return "bool", None
    if dtype.is_numeric():
        return "number", None
    if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime):
        return "datetime", None
    if dtype in (pl.Categorical, pl.Enum) or isinstance(dtype, pl.Enum):
        return "category", None
    if dtype != pl.String:
        raise TypeError(f"holds {dtype} values; expected numbers, booleans, strings or dates")
    values = series.drop_nulls()
    if values.len() == 0:
        return "unknown", None
    not_numbers = values.cast(pl.Float64, strict=False).null_count()
    if not_numbers <= values.len() // 10:
        return "number", None  # mostly numbers: the odd word is a bad row, named by its line
    if values.str.to_lowercase().is_in(list(BOOL_WORDS)).all():
        return "bool", None
    date_format = _date_format(values)
    if date_format is not None:
        return "datetime", date_format
    return "category", None


def _date_format(values: Any) -> str | None:
    for date_format in DATE_FORMATS:
        try:
            parsed = values.str.to_datetime(date_format, strict=False, time_zone="UTC")
        except Exception:  # polars refuses some format/zone pairs outright
            continue
        if parsed.null_count() == 0:
            return date_format
    return None


def read_dtype(kind: str) -> Any:
    """The polars dtype a CSV column of `kind` is parsed as."""
    import polars as pl

    return pl.Float64 if kind == "number" else pl.String


def to_typed(series: Any, kind: str, date_format: str | None) -> tuple[Any, np.ndarray | None]:
    """`series` converted to its kind's values, and a mask of cells that did not fit.

    Returns `(values, bad)`: a Float64 series for numbers, Boolean for bools,
    String for categories and Datetime (UTC) for dates, with nulls where a cell
    is missing; `bad` marks filled cells that could not be converted, and
    infinite numbers (None when there are none).
    """
    values, bad = _to_typed(series, kind, date_format)
    if kind != "number":
        return values, bad
    values = values.fill_nan(None)
    infinite = values.is_infinite().fill_null(False).to_numpy()
    if infinite.any():
        bad = infinite if bad is None else bad | infinite
    return values, bad


def _to_typed(series: Any, kind: str, date_format: str | None) -> tuple[Any, np.ndarray | None]:
    import polars as pl

    dtype = series.dtype
    if kind in ("empty", "unknown"):
        return series, None
    if kind == "category":
        if dtype == pl.String:
            return series, None
        if dtype == pl.Boolean:
            return series.cast(pl.String).str.replace("true", "True").str.replace(
                "false", "False"
            ), None
        if dtype.is_float():
            series = series.fill_nan(None)
            ints = series.drop_nulls()
            if ints.len() and (ints == ints.round(0)).all():
                return series.cast(pl.Int64).cast(pl.String), None
        return series.cast(pl.String), None
    if dtype == pl.String:
        filled = series.is_not_null()
        if kind == "number":
            values = series.cast(pl.Float64, strict=False)
        elif kind == "bool":
            values = series.str.to_lowercase().replace_strict(
                BOOL_WORDS, default=None, return_dtype=pl.Boolean
            )
        else:
            values = series.str.to_datetime(date_format, strict=False, time_zone="UTC")
        bad = (filled & values.is_null()).to_numpy()
        return values, bad if bad.any() else None
    if kind == "number":
        if dtype == pl.Boolean or dtype.is_numeric():
            return series.cast(pl.Float64).fill_nan(None), None
    elif kind == "bool":
        if dtype == pl.Boolean:
            return series, None
        if dtype.is_numeric():
            values = series.cast(pl.Float64).fill_nan(None)
            ok = values.is_null() | values.is_in([0.0, 1.0])
            bad = (~ok).to_numpy()
            return values.cast(pl.Boolean), bad if bad.any() else None
    elif kind == "datetime":
        if dtype == pl.Date:
            return series.cast(pl.Datetime("us", "UTC")), None
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                series = series.dt.replace_time_zone("UTC")
            return series.dt.convert_time_zone("UTC"), None
    raise TypeError(f"holds {dtype} values, which do not fit a {kind} column")


def sample_kinds(frame: Any, names: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """`detect_kind` of each named column of a sample frame, errors naming the column."""
    kinds: dict[str, tuple[str, str | None]] = {}
    for name in names:
        try:
            kinds[name] = detect_kind(frame[name])
        except TypeError as e:
            raise TypeError(f"column {name!r} {e}") from None
    return kinds
