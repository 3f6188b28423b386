"""Raw tables as numbers: kinds, one streamed pass, and the encoding of each block.

NOTE [ Encoding a raw table ]
`batchfit fit raw.csv --target col` reads a table of any kinds of columns
(NOTE [ Column kinds ] in `_table_kinds.py`) in two steps:

1. One streamed pass (`TableRows` in scan mode) over the training rows fills
   a `TableScan`: per column the missing count, the moments of its numbers
   and the counts of its categories (bounded: NOTE [ Bounded vocabularies ]).
   `TableSpec.from_scan` turns it into the encoding, saved as JSON in the run.
2. Every block read afterwards (training, validation, evaluate, predict) is
   encoded by that `TableSpec` (`TableRows` in encode mode), identically:
   - a number or boolean: its value, a missing cell imputed with the training
     mean, plus a `<col>_missing` 0/1 column when the training rows had any;
   - a date: its year, month, day, weekday, hour and days since 1970 (the
     parts that vary), imputed the same way;
   - a category: one-hot over the vocabulary (values seen at least
     `min_count` times, at most `max_categories` of them, most frequent
     first), one `<other>` slot for rare and unseen values (or `hash_bins`
     buckets chosen by a CRC-32 of the value when the column had more values
     than the cap), and a `<missing>` slot;
   - constant and all-missing columns are dropped, and said so.
   The numeric outputs' means and variances (after imputation) are part of
   the spec, for a `Normalization` layer; one-hot and indicator columns keep
   mean 0 and variance 1, so standardising leaves them 0/1.
Reading blocks is `_table_rows.py` (`TableRows`, and `RawColumns` for
columns read as they are); checking a spec read from a file is
`_table_check.py`.

The target is a number (regression) or labels (classification: strings,
booleans, or integers with at most `MAX_INT_CLASSES` values), encoded as
class indices into `classes`. Rows whose target is missing are skipped and
counted, in the pass and in every later read.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from batchfit.data._table_check import TABLE_FORMAT, check_spec
from batchfit.data._table_scan import DATE_PARTS, ColumnScan, TableScan, date_parts

__all__ = ["MAX_CLASSES", "FeatureSpec", "TableSpec", "int_label"]

MAX_INT_CLASSES = 10  # an integer target with at most this many values is labels
MAX_CLASSES = 1000


@dataclass
class FeatureSpec:
    """How one feature column becomes numbers (see NOTE [ Encoding a raw table ])."""

    name: str
    kind: str
    date_format: str | None = None
    parts: list[int] = field(default_factory=list)  # date parts kept (indices into DATE_PARTS)
    mean: list[float] = field(default_factory=list)
    variance: list[float] = field(default_factory=list)
    indicator: bool = False
    vocabulary: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    hash_bins: int = 0  # 0: one <other> slot

    def output_names(self) -> list[str]:
        if self.kind == "category":
            other = (
                [f"{self.name}=<hash {k}>" for k in range(self.hash_bins)]
                if self.hash_bins
                else [f"{self.name}=<other>"]
            )
            return (
                [f"{self.name}={v}" for v in self.vocabulary] + other + [f"{self.name}=<missing>"]
            )
        if self.kind == "datetime":
            names = [f"{self.name}.{DATE_PARTS[p]}" for p in self.parts]
        else:
            names = [self.name]
        return names + ([f"{self.name}_missing"] if self.indicator else [])

    def standardised(self) -> tuple[list[float], list[float]]:
        """Per output column: the mean and variance a `Normalization` should use."""
        if self.kind == "category":
            width = len(self.output_names())
            return [0.0] * width, [1.0] * width
        extra = [0.0] if self.indicator else []
        return self.mean + extra, self.variance + ([1.0] if self.indicator else [])


@dataclass
class TableSpec:
    """The encoding of a table, learnt in one pass; saved as `table.json` in a run."""

    features: list[FeatureSpec]
    targets: list[str]
    target_kind: str = "number"
    task: str = "regression"  # regression | binary | multiclass
    classes: list[str] = field(default_factory=list)
    target_mean: list[float] = field(default_factory=list)
    target_variance: list[float] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    min_count: int = 5
    max_categories: int = 100
    hash_bins: int = 16

    # -- building ---------------------------------------------------------------------
    @classmethod
    def from_scan(
        cls,
        scan: TableScan,
        features: Sequence[str],
        targets: Sequence[str],
        *,
        task: str = "auto",
        min_count: int = 5,
        max_categories: int = 100,
        hash_bins: int = 16,
    ) -> TableSpec:
        """The encoding the pass's statistics call for (NOTE above)."""
        spec = cls(
            [],
            list(targets),
            min_count=min_count,
            max_categories=max_categories,
            hash_bins=hash_bins,
            rows=scan.rows,
            skipped=dict(scan.skipped),
        )
        for name in features:
            column = scan.columns[name]
            column.settle()
            reason = _why_dropped(column)
            if reason:
                spec.dropped[name] = reason
                continue
            feature = spec._feature(column)
            if feature is None:
                spec.dropped[name] = "constant"
            else:
                spec.features.append(feature)
        spec._target([scan.columns[t] for t in targets], task)
        return spec

    def _feature(self, column: ColumnScan) -> FeatureSpec | None:
        feature = FeatureSpec(column.name, column.kind, column.date_format)
        if column.kind == "category":
            ranked = sorted(column.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            kept = [(v, c) for v, c in ranked if c >= self.min_count][: self.max_categories]
            feature.vocabulary = [v for v, _ in kept]
            feature.counts = [c for _, c in kept]
            overflow = column.pruned > 0 or len(ranked) > self.max_categories
            feature.hash_bins = self.hash_bins if overflow else 0
            if len(ranked) <= 1 and not column.missing and not column.pruned:
                return None
            return feature
        assert column.sums is not None
        n_all = column.filled + column.missing
        variance = column.sums.m2 / n_all  # imputed cells sit at the mean
        keep = [j for j in range(column.sums.dim) if variance[j] > 0]
        if not keep:
            return None
        if column.kind == "datetime":
            feature.parts = keep
        feature.mean = [float(column.sums.mean[j]) for j in keep]
        feature.variance = [float(variance[j]) for j in keep]
        feature.indicator = column.missing > 0
        return feature

    def _target(self, columns: list[ColumnScan], task: str) -> None:
        if task not in ("auto", "regression", "classification"):
            raise ValueError(f"task must be auto, regression or classification, got {task!r}")
        for column in columns:
            column.settle()
            if not column.filled:
                raise ValueError(f"target column {column.name!r} has no values")
        first = columns[0]
        self.target_kind = first.kind
        labels = first.kind in ("category", "bool") or (
            first.kind == "number"
            and first.integral
            and first.distinct is not None
            and len(first.distinct) <= MAX_INT_CLASSES
        )
        if task == "classification" or (task == "auto" and labels):
            if len(columns) != 1:
                raise ValueError("classification takes one target column")
            self.classes = _classes(first)
            if len(self.classes) < 2:
                raise ValueError(f"target {first.name!r} holds one value only: {self.classes}")
            self.task = "binary" if len(self.classes) == 2 else "multiclass"
            return
        for column in columns:
            if column.kind not in ("number", "bool") or column.sums is None:
                raise ValueError(
                    f"target {column.name!r} holds {column.kind} values, which cannot be "
                    "predicted as a number; predict it as labels (classification)"
                )
        self.task = "regression"
        self.target_mean = [float(c.sums.mean[0]) for c in columns if c.sums is not None]
        self.target_variance = [
            float(c.sums.m2[0] / max(c.sums.count, 1)) for c in columns if c.sums is not None
        ]

    # -- reading back -------------------------------------------------------------------
    def output_names(self) -> list[str]:
        return [name for f in self.features for name in f.output_names()]

    def standardisation(self) -> tuple[list[float], list[float]]:
        means: list[float] = []
        variances: list[float] = []
        for feature in self.features:
            m, v = feature.standardised()
            means += m
            variances += v
        return means, variances

    def kinds(self) -> dict[str, tuple[str, str | None]]:
        """`{column: (kind, date_format)}` of the columns read: features and targets."""
        kinds = {f.name: (f.kind, f.date_format) for f in self.features}
        for name in self.targets:
            kinds[name] = (self.target_kind, None)
        return kinds

    def to_json(self) -> dict[str, Any]:
        return {"format": TABLE_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> TableSpec:
        """A spec read from a file, every field's type checked first."""
        check_spec(data, where)
        body = {k: v for k, v in data.items() if k != "format"}
        body["features"] = [FeatureSpec(**f) for f in body["features"]]
        return cls(**body)

    # -- encoding -----------------------------------------------------------------------
    def encode(self, typed: Mapping[str, Any], rows: int) -> np.ndarray:
        """The float32 `(rows, width)` feature matrix of typed columns."""
        width = len(self.output_names())
        out = np.zeros((width, rows), np.float32)  # column by column, transposed once at the end
        at = 0
        for feature in self.features:
            at = _encode_one(feature, typed[feature.name], out, at)
        return np.ascontiguousarray(out.T)

    def label_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}


def _why_dropped(column: ColumnScan) -> str | None:
    if column.kind == "empty" or not column.filled:
        return "every cell is missing"
    return None


def _classes(column: ColumnScan) -> list[str]:
    if column.kind == "bool":
        return ["False", "True"]
    if column.kind == "number":
        assert column.distinct is not None
        return [int_label(v) for v in sorted(column.distinct)]
    if column.pruned or len(column.counts) > MAX_CLASSES:
        raise ValueError(
            f"target {column.name!r} has more than {MAX_CLASSES} distinct labels; "
            "is it a number to predict (regression)?"
        )
    return sorted(column.counts)


def int_label(value: float) -> str:
    return str(int(value))


def _encode_one(feature: FeatureSpec, values: Any, out: np.ndarray, at: int) -> int:
    """Write one column's outputs into rows `at...` of the transposed matrix `out`."""
    import polars as pl

    if feature.kind == "category":
        vocab = len(feature.vocabulary)
        slots = feature.hash_bins or 1
        index = {v: i for i, v in enumerate(feature.vocabulary)}
        codes = values.replace_strict(index, default=vocab, return_dtype=pl.Int64).to_numpy()
        codes = codes.copy()
        codes[values.is_null().to_numpy()] = vocab + slots
        if feature.hash_bins:
            other = codes == vocab
            if other.any():
                strings = values.filter(pl.Series(other)).to_list()
                codes[other] = vocab + np.fromiter(
                    (zlib.crc32(s.encode("utf-8")) % feature.hash_bins for s in strings),
                    np.int64,
                    len(strings),
                )
        out[at + codes, np.arange(len(codes))] = 1.0
        return at + vocab + slots + 1
    if feature.kind == "datetime":
        numbers = np.full((len(values), len(DATE_PARTS)), np.nan)
        present = values.is_not_null().to_numpy()
        if present.any():
            numbers[present] = date_parts(values.filter(pl.Series(present)))
        numbers = numbers[:, feature.parts]
    else:
        numbers = values.cast(pl.Float64).to_numpy().reshape(-1, 1)
    gaps = np.isnan(numbers)
    if gaps.any():
        numbers = np.where(gaps, np.asarray(feature.mean), numbers)
    width = numbers.shape[1]
    out[at : at + width] = numbers.T
    at += width
    if feature.indicator:
        out[at] = gaps.any(axis=1)
        at += 1
    return at
