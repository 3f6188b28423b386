"""The one streamed pass over a raw table: counts, moments and vocabularies per column.

`TableScan.observe(frame)` takes the typed frame of one block (see
NOTE [ Column kinds ]) and adds to per-column sums that merge by addition, so
blocks and ranks combine in any grouping. Vocabulary memory is bounded: a
column keeps at most `keep` distinct values (NOTE [ Bounded vocabularies ]).
`TableScan.finish()` turns the sums into the `TableSpec` that encodes rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ColumnScan", "TableScan", "date_parts"]

#: derived numeric parts of a date column, in output order
DATE_PARTS = ("year", "month", "day", "weekday", "hour", "days")

_SMALL_DISTINCT = 20  # distinct values a number column remembers (to spot class labels)


def date_parts(values: Any) -> np.ndarray:
    """`(rows, 6)` float64 parts of a Datetime series: year ... hour, days since 1970."""
    import polars as pl

    d = pl.col("d")
    frame = pl.DataFrame({"d": values}).select(
        d.dt.year().cast(pl.Float64).alias("year"),
        d.dt.month().cast(pl.Float64).alias("month"),
        d.dt.day().cast(pl.Float64).alias("day"),
        d.dt.weekday().cast(pl.Float64).alias("weekday"),
        (d.dt.hour() + d.dt.minute() / 60.0).cast(pl.Float64).alias("hour"),
        (d.dt.epoch("us").cast(pl.Float64) / 86_400e6).alias("days"),
    )
    return frame.to_numpy()


@dataclass
class _Sums:
    """count, sum and sum of squared deviations of `dim` numbers (Chan's merge)."""

    dim: int
    count: int = 0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if self.mean.shape != (self.dim,):
            self.mean, self.m2 = np.zeros(self.dim), np.zeros(self.dim)

    def add(self, x: np.ndarray) -> None:
        if not len(x):
            return
        other = _Sums(self.dim, len(x), x.mean(axis=0), ((x - x.mean(axis=0)) ** 2).sum(axis=0))
        self.merge(other)

    def merge(self, other: _Sums) -> None:
        if not other.count:
            return
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        self.count = n


@dataclass
class ColumnScan:
    """What the pass learns about one column (which fields fill depends on its kind)."""

    name: str
    kind: str
    date_format: str | None = None
    keep: int = 1000
    filled: int = 0
    missing: int = 0
    sums: _Sums | None = None
    lo: float = np.inf
    hi: float = -np.inf
    integral: bool = True
    distinct: set[float] | None = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    pruned: int = 0  # rows whose value was dropped from `counts` to bound memory
    numeric_ok: bool = True  # an `unknown` column: every value so far parsed as a number

    def observe(self, values: Any) -> None:
        """Add one block's typed values (a polars Series, nulls for missing cells)."""
        import polars as pl

        self.missing += values.null_count()
        present = values.drop_nulls()
        self.filled += present.len()
        if not present.len():
            return
        if self.kind == "number":
            self._numbers(present.to_numpy().astype(np.float64))
        elif self.kind == "bool":
            self._numbers(present.cast(pl.Float64).to_numpy())
        elif self.kind == "datetime":
            parts = date_parts(present)
            self.sums = self.sums or _Sums(parts.shape[1])
            self.sums.add(parts)
        else:  # category, or unknown (which may turn out to be numbers)
            text = present.cast(pl.String)
            if self.kind == "unknown" and self.numeric_ok:
                numbers = text.cast(pl.Float64, strict=False)
                if numbers.null_count():
                    self.numeric_ok = False
                else:
                    self._numbers(numbers.to_numpy())
            counted = text.value_counts(sort=False)
            for value, count in counted.iter_rows():
                self.counts[value] = self.counts.get(value, 0) + int(count)
            self._bound()

    def _numbers(self, x: np.ndarray) -> None:
        self.sums = self.sums or _Sums(1)
        self.sums.add(x.reshape(-1, 1))
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        if self.integral:
            self.integral = bool(np.all(x == np.round(x)))
        if self.distinct is not None:
            self.distinct.update(np.unique(x)[: _SMALL_DISTINCT + 1].tolist())
            if len(self.distinct) > _SMALL_DISTINCT:
                self.distinct = None

    def _bound(self) -> None:
        """NOTE [ Bounded vocabularies ]

        A column keeps at most `2 * keep` distinct values. Past that, the
        values with the smallest counts (ties: the larger string) are dropped
        down to `keep`, their rows counted in `pruned`; a dropped value that
        comes back starts counting again. So the counts of frequent values are
        exact (they are never dropped once common) and those of rare ones
        may be low: the vocabulary (at most `max_categories`, well below
        `keep`) is the true top wherever the values near the cut are much
        more frequent than the tail, as in most real columns. A column that
        overflowed hashes the values outside its vocabulary into buckets
        instead of one "other" slot.
        """
        if len(self.counts) <= 2 * self.keep:
            return
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        for value, count in ranked[self.keep :]:
            self.pruned += count
            del self.counts[value]

    def merge(self, other: ColumnScan) -> None:
        """Add another block's or rank's scan of the same column."""
        self.filled += other.filled
        self.missing += other.missing
        if other.sums is not None:
            if self.sums is None:
                self.sums = _Sums(other.sums.dim)
            self.sums.merge(other.sums)
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        self.integral = self.integral and other.integral
        if self.distinct is not None and other.distinct is not None:
            self.distinct |= other.distinct
            if len(self.distinct) > _SMALL_DISTINCT:
                self.distinct = None
        else:
            self.distinct = None
        self.numeric_ok = self.numeric_ok and other.numeric_ok
        for value, count in other.counts.items():
            self.counts[value] = self.counts.get(value, 0) + count
        self.pruned += other.pruned
        self._bound()

    def settle(self) -> None:
        """Decide an `unknown` column's kind from what the pass saw."""
        if self.kind != "unknown":
            return
        if not self.filled:
            self.kind = "empty"
        elif self.numeric_ok:
            self.kind, self.counts = "number", {}
        else:
            self.kind, self.sums = "category", None


class TableScan:
    """Per-column scans of the rows one pass reads (see the module docstring).

    Args:
        kinds: `{column: (kind, date_format)}` from the sample.
        keep: distinct values a category column keeps while scanning.
    """

    def __init__(self, kinds: dict[str, tuple[str, str | None]], keep: int = 1000) -> None:
        self.columns = {
            name: ColumnScan(name, kind, fmt, keep=keep) for name, (kind, fmt) in kinds.items()
        }
        self.rows = 0
        self.skipped: dict[str, int] = {}

    def observe(self, typed: dict[str, Any], rows: int) -> None:
        """Add one block: `typed[name]` is the column's typed Series."""
        self.rows += rows
        for name, values in typed.items():
            self.columns[name].observe(values)

    def count_skipped(self, key: str, rows: int) -> None:
        if rows:
            self.skipped[key] = self.skipped.get(key, 0) + rows

    def merge(self, other: TableScan) -> None:
        self.rows += other.rows
        for name, column in other.columns.items():
            self.columns[name].merge(column)
        for key, rows in other.skipped.items():
            self.count_skipped(key, rows)
