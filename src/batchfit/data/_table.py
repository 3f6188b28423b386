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
The target is a number (regression) or labels (classification: strings,
booleans, or integers with at most `MAX_INT_CLASSES` values), encoded as
class indices into `classes`. Rows whose target is missing are skipped and
counted, in the pass and in every later read.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from batchfit.data._nodes import Chunk
from batchfit.data._stream import Columns
from batchfit.data._table_kinds import NULL_SPELLINGS, read_dtype, to_typed
from batchfit.data._table_scan import DATE_PARTS, ColumnScan, TableScan, date_parts

__all__ = ["FeatureSpec", "RawColumns", "TableRows", "TableSpec", "raw_columns", "table_columns"]

TABLE_FORMAT = 1
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
        _check_spec(data, where)
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
        return [_int_label(v) for v in sorted(column.distinct)]
    if column.pruned or len(column.counts) > MAX_CLASSES:
        raise ValueError(
            f"target {column.name!r} has more than {MAX_CLASSES} distinct labels; "
            "is it a number to predict (regression)?"
        )
    return sorted(column.counts)


def _int_label(value: float) -> str:
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


# -- reading blocks -----------------------------------------------------------------


class TableRows:
    """What a CSV or Parquet source does with each block of a raw table.

    The source parses a block into a polars frame (numbers as Float64, the
    rest as strings, or Parquet's own types) and calls `chunk(frame, locate)`.
    This converts each column to its kind, settles bad cells (`on_bad_rows`),
    missing targets (skipped) and missing features (`on_missing`), then either
    adds the rows to a `TableScan` (scan mode: nothing is yielded) or encodes
    them into `(x, y[, key])` (encode mode). `key` is each row's place in
    [0, 1) for the command's validation split, a hash of its cells.

    Args:
        features, targets: the columns read.
        kinds: `{column: (kind, date_format)}`.
        spec: the encoding (encode mode), or None (scan mode).
        scan: the pass's statistics (scan mode).
        on_bad_rows: "raise" or "skip" rows with a cell that does not fit its kind.
        on_missing: "impute", "skip" or "raise" on a missing feature cell.
        with_key: yield the split key as a last part (encode mode).
        scan_fraction: in scan mode, observe only rows whose key is at least this.
        hint: how the message of a refused row says to skip such rows.
    """

    def __init__(
        self,
        features: Sequence[str],
        targets: Sequence[str],
        kinds: Mapping[str, tuple[str, str | None]],
        *,
        spec: TableSpec | None = None,
        scan: TableScan | None = None,
        on_bad_rows: str = "raise",
        on_missing: str = "impute",
        with_key: bool = False,
        scan_fraction: float = 0.0,
        keep: Sequence[str] = (),
        hint: Callable[[str, str], str] | None = None,
    ) -> None:
        if (spec is None) == (scan is None):
            raise ValueError("TableRows needs a spec (encode) or a scan (one pass), not both")
        if on_bad_rows not in ("raise", "skip"):
            raise ValueError(f"on_bad_rows must be 'raise' or 'skip', got {on_bad_rows!r}")
        if on_missing not in ("impute", "skip", "raise"):
            raise ValueError(f"on_missing must be impute, skip or raise, got {on_missing!r}")
        self.features, self.targets, self.keep = list(features), list(targets), list(keep)
        self.kinds = dict(kinds)
        for name in self.keep:
            self.kinds.setdefault(name, ("category", None))
        self.spec, self.scan = spec, scan
        self.on_bad_rows, self.on_missing = on_bad_rows, on_missing
        self.with_key, self.scan_fraction = with_key, float(scan_fraction)
        self.hint = hint or (lambda option, value: f"pass {option}={value!r}")
        self._labels = spec.label_index() if spec is not None and spec.classes else None

    @property
    def needed(self) -> list[str]:
        return list(dict.fromkeys(self.features + self.targets + self.keep))

    def read_dtype(self, name: str) -> Any:
        return read_dtype(self.kinds[name][0])

    @property
    def null_values(self) -> list[str]:
        return list(NULL_SPELLINGS)

    def stat_keys(self) -> tuple[str, ...]:
        return ("bad_rows_skipped", "missing_target_rows_skipped", "missing_rows_skipped")

    def chunk(
        self, frame: Any, locate: Callable[[int], str], stats: dict[str, int]
    ) -> Chunk | None:
        """One block: scanned (returns None) or encoded into a `Chunk`."""
        import polars as pl

        rows = frame.height
        keep = np.ones(rows, bool)
        typed: dict[str, Any] = {}
        kept_raw = [frame[name] for name in self.keep]
        for name in self.features + self.targets:
            kind, date_format = self.kinds[name]
            try:
                values, bad = to_typed(frame[name], kind, date_format)
            except TypeError as e:
                raise TypeError(f"column {name!r} at {locate(0)} {e}") from None
            if bad is not None:
                keep = self._bad(keep, bad, frame[name], name, kind, locate, stats)
            typed[name] = values
        read = self.features + self.targets
        key = _row_key(typed, read) if (self.with_key or self.scan_fraction) else None
        for name in self.targets:
            missing = typed[name].is_null().to_numpy() & keep
            if missing.any():
                stats["missing_target_rows_skipped"] += int(missing.sum())
                keep &= ~missing
        if self.on_missing != "impute":
            for name in self.features:
                missing = typed[name].is_null().to_numpy() & keep
                if not missing.any():
                    continue
                if self.on_missing == "raise":
                    row = int(np.flatnonzero(missing)[0])
                    raise ValueError(
                        f"missing value in column {name!r} at {locate(row)} "
                        f"({self.hint('on_missing', 'impute')} to fill it with the "
                        f"training mean, or {self.hint('on_missing', 'skip')} to skip such rows)"
                    )
                stats["missing_rows_skipped"] += int(missing.sum())
                keep &= ~missing
        if not keep.all():
            mask = pl.Series(keep)
            typed = {name: values.filter(mask) for name, values in typed.items()}
            kept_raw = [values.filter(mask) for values in kept_raw]
            positions = np.flatnonzero(keep)
            key = key[keep] if key is not None else None
            inner = locate
            locate = lambda i: inner(int(positions[i]))  # noqa: E731
        kept = int(keep.sum())
        if self.scan is not None:
            if key is not None and self.scan_fraction:
                train = pl.Series(key >= self.scan_fraction)
                typed = {name: values.filter(train) for name, values in typed.items()}
                kept = int(train.sum())
            self.scan.observe(typed, kept)
            return None
        if not kept:
            return None
        assert self.spec is not None
        parts: list[np.ndarray] = [self.spec.encode(typed, kept)]
        if self.targets:
            parts.append(self._target(typed, locate))
        if kept_raw:
            kept_values = np.empty((kept, len(kept_raw)), dtype=object)
            for j, values in enumerate(kept_raw):
                kept_values[:, j] = values.to_list()
            parts.append(kept_values)
        if self.with_key and key is not None:
            parts.append(key)
        return Chunk(tuple(parts), locate)

    def _bad(
        self,
        keep: np.ndarray,
        bad: np.ndarray,
        raw: Any,
        name: str,
        kind: str,
        locate: Callable[[int], str],
        stats: dict[str, int],
    ) -> np.ndarray:
        fresh = bad & keep
        if not fresh.any():
            return keep
        if self.on_bad_rows == "raise":
            row = int(np.flatnonzero(fresh)[0])
            raise ValueError(
                f"malformed row at {locate(row)}: column {name!r} holds {kind} values, "
                f"got {raw[row]!r} ({self.hint('on_bad_rows', 'skip')} to skip such rows)"
            )
        stats["bad_rows_skipped"] += int(fresh.sum())
        return keep & ~bad

    def _target(self, typed: Mapping[str, Any], locate: Callable[[int], str]) -> np.ndarray:
        import polars as pl

        assert self.spec is not None
        if self._labels is None:
            y = np.stack([typed[t].cast(pl.Float64).to_numpy() for t in self.targets], axis=1)
            y = y.astype(np.float32)
            return y.reshape(-1) if len(self.targets) == 1 else y
        values = _label_strings(typed[self.targets[0]])
        codes = values.replace_strict(self._labels, default=None, return_dtype=pl.Int64)
        if codes.null_count():
            row = int(np.flatnonzero(codes.is_null().to_numpy())[0])
            raise ValueError(
                f"label {values[row]!r} of target {self.targets[0]!r} at {locate(row)} was "
                f"not among the training classes {self.spec.classes}"
            )
        return codes.to_numpy().astype(np.float32)


def table_columns(table: TableRows | RawColumns, given: Columns) -> Columns:
    """The `Columns` a source over a raw table reports: encoded names, its targets."""
    names = table.spec.output_names() if isinstance(table, TableRows) and table.spec else []
    return Columns(names, table.targets, None, given.y_is_vector)


def _label_strings(values: Any) -> Any:
    """Class labels as the strings `TableSpec.classes` holds ("True", "3", "Adelie")."""
    import polars as pl

    if values.dtype == pl.Boolean:
        return values.cast(pl.Int8).replace_strict({0: "False", 1: "True"}, return_dtype=pl.String)
    if values.dtype.is_numeric():
        n = pl.lit(values.cast(pl.Float64))
        whole = n.cast(pl.Int64).cast(pl.String)
        return pl.select(
            pl.when(n == n.round(0)).then(whole).otherwise(n.cast(pl.String))
        ).to_series()
    return values


_KEY_SEED = 0x5EED


def _row_key(typed: Mapping[str, Any], names: Sequence[str]) -> np.ndarray:
    """Each row's place in [0, 1): a hash of its typed cells (polars' row hash, seeded).

    polars does not promise the same hash across its versions: a run resumed
    under another polars version may split its rows differently.
    """
    import polars as pl

    frame = pl.DataFrame({n: typed[n] for n in names})
    hashed = frame.hash_rows(seed=_KEY_SEED).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


# -- checking a spec read from a file ---------------------------------------------------

_FEATURE_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "kind": (str,),
    "date_format": (str, type(None)),
    "parts": (list,),
    "mean": (list,),
    "variance": (list,),
    "indicator": (bool,),
    "vocabulary": (list,),
    "counts": (list,),
    "hash_bins": (int,),
}
_SPEC_FIELDS: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "features": (list,),
    "targets": (list,),
    "target_kind": (str,),
    "task": (str,),
    "classes": (list,),
    "target_mean": (list,),
    "target_variance": (list,),
    "dropped": (dict,),
    "rows": (int,),
    "skipped": (dict,),
    "min_count": (int,),
    "max_categories": (int,),
    "hash_bins": (int,),
}


def _check_fields(data: Any, fields: Mapping[str, tuple[type, ...]], where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(fields))
    missing = sorted(set(fields) - set(data))
    if unknown or missing:
        raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    for key, types in fields.items():
        value = data[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise ValueError(f"{where}.{key}: expected {types[0].__name__}, got {value!r:.60}")


def _check_list(values: list[Any], types: tuple[type, ...], where: str) -> None:
    for i, value in enumerate(values):
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"{where}[{i}]: expected {types[0].__name__}, got {value!r:.60}")


def _check_spec(data: Any, where: str) -> None:
    from batchfit.data._table_kinds import DATE_FORMATS

    _check_fields(data, _SPEC_FIELDS, where)
    if data["format"] != TABLE_FORMAT:
        raise ValueError(f"{where}.format: expected {TABLE_FORMAT}, got {data['format']!r}")
    if data["task"] not in ("regression", "binary", "multiclass"):
        raise ValueError(f"{where}.task: unknown task {data['task']!r}")
    for key, types in (
        ("targets", (str,)),
        ("classes", (str,)),
        ("target_mean", (float, int)),
        ("target_variance", (float, int)),
    ):
        _check_list(data[key], types, f"{where}.{key}")
    for i, feature in enumerate(data["features"]):
        at = f"{where}.features[{i}]"
        _check_fields(feature, _FEATURE_FIELDS, at)
        if feature["kind"] not in ("number", "bool", "category", "datetime"):
            raise ValueError(f"{at}.kind: unknown kind {feature['kind']!r}")
        if feature["date_format"] is not None and feature["date_format"] not in DATE_FORMATS:
            raise ValueError(f"{at}.date_format: unknown format {feature['date_format']!r}")
        _check_list(feature["parts"], (int,), f"{at}.parts")
        if any(not 0 <= p < len(DATE_PARTS) for p in feature["parts"]):
            raise ValueError(f"{at}.parts: expected indices below {len(DATE_PARTS)}")
        _check_list(feature["mean"], (float, int), f"{at}.mean")
        _check_list(feature["variance"], (float, int), f"{at}.variance")
        _check_list(feature["vocabulary"], (str,), f"{at}.vocabulary")
        _check_list(feature["counts"], (int,), f"{at}.counts")
        if not 0 <= feature["hash_bins"] <= 1 << 16:
            raise ValueError(f"{at}.hash_bins: expected 0 to 65536, got {feature['hash_bins']}")
        numeric = feature["kind"] != "category"
        width = (len(feature["parts"]) if feature["kind"] == "datetime" else 1) if numeric else 0
        if numeric and not (len(feature["mean"]) == len(feature["variance"]) == width):
            raise ValueError(f"{at}: mean and variance need {width} values each")


_SAMPLE_BYTES = 1 << 20
_SAMPLE_ROWS = 10_000


def sample_frame(path: str, names: Sequence[str], delimiter: str = ",") -> Any:
    """The first rows of a CSV (as strings) or Parquet file (its own types), for `detect_kind`."""
    import polars as pl

    if path.lower().endswith((".parquet", ".pq")):
        return pl.read_parquet(path, columns=list(names), n_rows=_SAMPLE_ROWS)
    from batchfit.data._csv_cuts import last_boundary, read_header
    from batchfit.data._files import open_binary

    header, _ = read_header(path, delimiter)
    with open_binary(path) as stream:
        sample = stream.read(_SAMPLE_BYTES)
    if len(sample) == _SAMPLE_BYTES:
        sample = sample[: max(last_boundary(sample, 0, len(sample)), 0)]
    try:
        return pl.read_csv(
            sample,
            separator=delimiter,
            schema={n: pl.String for n in header},
            columns=list(names),
            null_values=list(NULL_SPELLINGS),
            n_rows=_SAMPLE_ROWS,
        )
    except pl.exceptions.PolarsError:
        # a malformed row in the sample: read it leniently; the pass names the line
        return pl.read_csv(
            sample,
            separator=delimiter,
            schema={n: pl.String for n in header},
            columns=list(names),
            null_values=list(NULL_SPELLINGS),
            n_rows=_SAMPLE_ROWS,
            truncate_ragged_lines=True,
            ignore_errors=True,
        )


class RawColumns:
    """Columns read as they are, for `csv(..., columns=[...])` and `parquet(..., columns=[...])`.

    Each column comes out as a 1-D NumPy array of its values: float64 for
    numbers (NaN where a cell is missing), bool for booleans (a column with
    missing cells comes out as object, None there), object holding `str` for
    anything else, a missing cell as `""` (tf.data's CSV default for strings,
    which Keras' `StringLookup` accepts). A batch is `(values,)` for one column and
    `({name: values},)` for several, as Keras' preprocessing layers' `adapt`
    and a data pipeline want them; nothing is checked for finiteness.
    """

    raw = True

    def __init__(self, names: Sequence[str], kinds: Mapping[str, tuple[str, str | None]]) -> None:
        self.names = list(names)
        self.kinds = dict(kinds)
        self.on_bad_rows = "raise"
        self.targets: list[str] = []
        self.spec = None

    @property
    def needed(self) -> list[str]:
        return self.names

    def read_dtype(self, name: str) -> Any:
        return read_dtype(self.kinds[name][0])

    @property
    def null_values(self) -> list[str]:
        return list(NULL_SPELLINGS)

    def stat_keys(self) -> tuple[str, ...]:
        return ()

    def hint(self, option: str, value: str) -> str:
        return f"pass {option}={value!r}"

    def chunk(
        self, frame: Any, locate: Callable[[int], str], stats: dict[str, int]
    ) -> Chunk | None:
        import polars as pl

        del stats
        if not frame.height:
            return None
        parts = []
        for name in self.names:
            kind = self.kinds[name][0]
            values, bad = to_typed(frame[name], "category" if kind == "datetime" else kind, None)
            if bad is not None:
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"malformed row at {locate(row)}: column {name!r} holds {kind} values, "
                    f"got {frame[name][row]!r}"
                )
            if values.dtype == pl.Float64:
                parts.append(values.to_numpy().astype(np.float64, copy=False))
            elif values.dtype == pl.Boolean and not values.null_count():
                parts.append(values.to_numpy())
            elif values.dtype == pl.String:
                parts.append(np.asarray(values.fill_null("").to_list(), dtype=object))
            else:
                parts.append(np.asarray(values.to_list(), dtype=object))
        return Chunk(tuple(parts), locate)


def raw_columns(
    path: str,
    available: Sequence[str],
    columns: Sequence[str],
    target: Any,
    features: Any,
    delimiter: str = ",",
) -> RawColumns:
    """The `RawColumns` reader of `columns=[...]`, its kinds sampled from `path`."""
    from batchfit.data._table_kinds import sample_kinds

    if target is not None or features is not None:
        raise ValueError("columns=[...] reads columns as they are: give it without target/features")
    if isinstance(columns, str) or not columns:
        raise ValueError(f"columns must be a non-empty list of column names, got {columns!r}")
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(
            f"column(s) {missing} not found in {path}; the columns are {list(available)}"
        )
    try:
        kinds = sample_kinds(sample_frame(path, columns, delimiter), columns)
    except TypeError as e:
        raise TypeError(f"{path}: {e}") from None
    return RawColumns(columns, kinds)
