"""Reading the blocks of a raw table: `TableRows` (encoded) and `RawColumns` (as they are).

CSV and Parquet sources parse a block into a polars frame and hand it to one
of these (their `table=` option): NOTE [ Encoding a raw table ] in
`_table.py` says what happens to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from batchfit.data._nodes import Chunk
from batchfit.data._stream import Columns
from batchfit.data._table import TableSpec
from batchfit.data._table_kinds import NULL_SPELLINGS, read_dtype, to_typed
from batchfit.data._table_scan import TableScan

__all__ = ["RawColumns", "TableRows", "raw_columns", "row_key", "sample_frame", "table_columns"]


class _BlockReader:
    """What both readers tell a source: which columns, parsed as what, nulls spelled how."""

    kinds: dict[str, tuple[str, str | None]]

    def read_dtype(self, name: str) -> Any:
        return read_dtype(self.kinds[name][0])

    @property
    def null_values(self) -> list[str]:
        return list(NULL_SPELLINGS)


class TableRows(_BlockReader):
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
        key = row_key(typed, read) if (self.with_key or self.scan_fraction) else None
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


def row_key(typed: Mapping[str, Any], names: Sequence[str]) -> np.ndarray:
    """Each row's place in [0, 1): a hash of its typed cells (polars' row hash, seeded).

    polars does not promise the same hash across its versions: a run resumed
    under another polars version may split its rows differently.
    """
    import polars as pl

    frame = pl.DataFrame({n: typed[n] for n in names})
    hashed = frame.hash_rows(seed=_KEY_SEED).to_numpy()
    return (hashed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


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
    options: dict[str, Any] = {
        "separator": delimiter,
        "schema": {n: pl.String for n in header},
        "columns": list(names),
        "null_values": list(NULL_SPELLINGS),
        "n_rows": _SAMPLE_ROWS,
    }
    try:
        return pl.read_csv(sample, **options)
    except pl.exceptions.PolarsError:
        # a malformed row in the sample: read it leniently; the pass names the line
        return pl.read_csv(sample, truncate_ragged_lines=True, ignore_errors=True, **options)


class RawColumns(_BlockReader):
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
