"""Data and model helpers behind the `batchfit` command (see `batchfit.cli`).

NOTE [ Validation split of a stream ]
Keras' `validation_split` takes the last fraction of in-memory arrays; a
stream has no "last fraction" until it has been read. The command instead
sends each row to validation when a hash of its values (features and target,
as float32 bits) falls below the fraction. The split is deterministic, does
not depend on file order, block boundaries, batch size or shuffling, needs no
extra pass, and puts duplicate rows on the same side (no leakage through
copies). Both sides read every file each epoch; the cost is parsing twice,
which is small next to training. `--validation-data FILES` uses separate
files instead.
"""

from __future__ import annotations

import csv as _csv
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from batchfit.data import Source

__all__ = [
    "RowSplit",
    "build_model",
    "expand_files",
    "file_kind",
    "header_of",
    "open_source",
    "parse_model_spec",
    "row_hash_unit",
    "train_rows_estimate",
]

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zst", ".csv.bz2", ".tsv")
_PARQUET_SUFFIXES = (".parquet", ".pq")


class CliError(ValueError):
    """A user mistake the command reports on one line (exit code 1)."""


# -- files ------------------------------------------------------------------------------------
def expand_files(patterns: Sequence[str], what: str) -> list[str]:
    """Files named by paths or globs (a shell may already have expanded them)."""
    import glob

    files: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
            if not found:
                raise CliError(f"{what}: {pattern!r} matches no files")
            files.extend(found)
        elif os.path.isdir(pattern):
            found = sorted(str(p) for p in Path(pattern).iterdir() if file_kind(str(p), None))
            if not found:
                raise CliError(f"{what}: directory {pattern!r} holds no .csv or .parquet files")
            files.extend(found)
        elif os.path.isfile(pattern):
            files.append(pattern)
        else:
            raise CliError(f"{what}: file {pattern!r} does not exist")
    if not files:
        raise CliError(f"{what}: no files given")
    kinds = {file_kind(f, what) for f in files}
    if len(kinds) > 1:
        raise CliError(f"{what}: mix of CSV and Parquet files; give one kind at a time")
    return files


def file_kind(path: str, what: str | None) -> str | None:
    """'csv' or 'parquet' from the file name; None (or an error naming `what`) otherwise."""
    name = path.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if what is None:
        return None
    raise CliError(
        f"{what}: cannot tell the format of {path!r}; expected a name ending in "
        f"{', '.join(_CSV_SUFFIXES + _PARQUET_SUFFIXES)}"
    )


def header_of(path: str) -> list[str]:
    """Column names of a CSV or Parquet file, read without reading the data."""
    if file_kind(path, "data") == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowInvalid, OSError) as e:
            raise CliError(f"{path} is not a readable Parquet file: {e}") from None
    import pyarrow as pa

    with pa.input_stream(path, compression="detect") as stream:
        head = stream.read(1 << 16)
    line = head.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    if not line.strip():
        raise CliError(f"{path} is empty: expected a header line and at least one row")
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    return next(_csv.reader([line], delimiter=delimiter))


def resolve_features(
    columns: Sequence[str],
    target: Sequence[str],
    features: Sequence[str] | None,
    drop: Sequence[str],
    where: str,
) -> list[str]:
    """The feature columns: given ones, or every column but the targets and dropped ones."""
    for kind, names in (("--target", target), ("--features", features or []), ("--drop", drop)):
        missing = [n for n in names if n not in columns]
        if missing:
            raise CliError(
                f"{kind}: column(s) {missing} not in {where}; its columns are {list(columns)}"
            )
    if features:
        clash = sorted(set(features) & set(target))
        if clash:
            raise CliError(f"--features: {clash} is also the --target")
        return list(features)
    chosen = [c for c in columns if c not in target and c not in drop]
    if not chosen:
        raise CliError(f"no feature columns left in {where} after --target and --drop")
    return chosen


def open_source(
    files: Sequence[str],
    target: Sequence[str] | None,
    features: Sequence[str],
    *,
    batch_size: int,
    shuffle_buffer: int = 0,
    seed: int = 0,
    prefetch: int = 2,
) -> Source:
    """A streaming `batchfit.data.csv` or `.parquet` source, chosen by file extension."""
    import batchfit as bf

    kind = file_kind(files[0], "data")
    target_arg: str | list[str] | None = None
    if target:
        target_arg = target[0] if len(target) == 1 else list(target)
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "shuffle_buffer": shuffle_buffer,
        "seed": seed,
        "prefetch": prefetch,
    }
    if kind == "csv":
        if files[0].lower().endswith(".tsv"):
            options["delimiter"] = "\t"
        return bf.data.csv(list(files), target_arg, list(features), **options)
    return bf.data.parquet(list(files), target_arg, list(features), **options)


def train_rows_estimate(files: Sequence[str]) -> int | None:
    """Rows in the files: exact for Parquet, from bytes per row of a sample for plain CSV."""
    total = 0
    for path in files:
        if file_kind(path, "data") == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
            continue
        if path.lower().endswith((".gz", ".zst", ".bz2")):
            return None
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            sample = f.read(1 << 20)
        lines = sample.count(b"\n")
        if lines <= 1:
            total += 1
            continue
        per_row = len(sample[: sample.rfind(b"\n") + 1]) / lines
        total += max(1, round(size / per_row) - 1)
    return total


# -- the row-hash split ----------------------------------------------------------------------
_PRIME = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT33 = np.uint64(33)
_SHIFT11 = np.uint64(11)


def row_hash_unit(*parts: np.ndarray, salt: int = 0) -> np.ndarray:
    """One number in [0, 1) per row, a hash of the rows' float32 bits (NOTE above)."""
    columns = [np.asarray(p, np.float32).reshape(len(p), -1) for p in parts]
    bits = np.ascontiguousarray(np.concatenate(columns, axis=1)).view(np.uint32)
    h = np.full(bits.shape[0], np.uint64(0xCBF29CE484222325 ^ (salt & 0xFFFF)), np.uint64)
    for j in range(bits.shape[1]):
        h ^= bits[:, j].astype(np.uint64)
        h *= _PRIME  # wraps modulo 2**64, as a hash should
    h ^= h >> _SHIFT33
    h *= _MIX1
    h ^= h >> _SHIFT33
    h *= _MIX2
    h ^= h >> _SHIFT33
    return (h >> _SHIFT11).astype(np.float64) * (1.0 / (1 << 53))


class RowSplit(Source):
    """One side of a row-hash split of a source, counting the rows it yields.

    Each inner batch becomes one (smaller) batch of the rows on this side;
    a batch left empty is skipped. The position saved for a resume is the
    inner source's, so the split resumes exactly where the inner source does.
    With `fraction=0` it passes batches through and only counts rows.
    Under torchrun the command shards the split itself (`shard` shards the
    inner source; the hash picks rows wherever they land), so the counts are
    this rank's and the command adds them across ranks.

    Args:
        inner: a batch source yielding `(x, y)` or `(x,)`.
        fraction: share of rows sent to validation, in [0, 1).
        side: 'train' keeps the other rows, 'validation' these.
    """

    def __init__(self, inner: Source, fraction: float = 0.0, side: str = "train") -> None:
        super().__init__()
        if side not in ("train", "validation"):
            raise ValueError(f"side must be 'train' or 'validation', got {side!r}")
        self.inner, self.fraction, self.side = inner, float(fraction), side
        self.batch_size = inner.batch_size
        # the inner source's shard, so `fit` and `evaluate` leave a sharded split alone
        self.rank: int = getattr(inner, "rank", 0)
        self.world_size: int = getattr(inner, "world_size", 1)
        self.rows_this_epoch = 0
        self.rows_last_epoch: int | None = None

    def _keep(self, batch: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.fraction:
            return batch
        mask = row_hash_unit(*batch) < self.fraction
        if self.side == "train":
            mask = ~mask
        return tuple(part[mask] for part in batch)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        self.inner.load_state_dict(
            {**self.inner.state_dict(), "epoch": self._epoch, "batches_done": self._batches_done}
        )
        self.rows_this_epoch = 0
        batches = iter(self.inner)
        try:
            for batch in batches:
                self._batches_done += 1  # counts inner batches, kept or not
                kept = self._keep(batch)
                rows = len(kept[0])
                if rows:
                    self.rows_this_epoch += rows
                    yield kept
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # ends the inner prefetch thread when the consumer stops early
        self.rows_last_epoch = self.rows_this_epoch
        self._batches_done = 0

    def _num_batches(self) -> int | None:
        return self.inner.num_batches if not self.fraction else None

    @property
    def stats(self) -> dict[str, int]:
        return self.inner.stats

    @stats.setter
    def stats(self, value: dict[str, int]) -> None:
        del value  # the inner source owns the counters

    def state_dict(self) -> dict[str, Any]:
        return {**self.inner.state_dict(), "epoch": self._epoch, "batches_done": self._batches_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
        self._epoch, self._batches_done = int(state["epoch"]), int(state["batches_done"])

    def shard(self, rank: int, world_size: int) -> RowSplit:
        return RowSplit(self.inner.shard(rank, world_size), self.fraction, self.side)

    def close(self) -> None:
        self.inner.close()


# -- models -----------------------------------------------------------------------------------
_SPEC_HELP = (
    "expected comma-separated layers: dense:UNITS[:ACTIVATION], dropout:RATE, "
    "batchnorm, activation:NAME"
)


def parse_model_spec(spec: str) -> list[tuple[str, list[str]]]:
    """`"dense:64:relu,dropout:0.1,dense:1"` as `[(kind, args), ...]`, checked."""
    from batchfit import activations

    layers: list[tuple[str, list[str]]] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            raise CliError(f"--model: empty layer in {spec!r}; {_SPEC_HELP}")
        kind, *args = [p.strip() for p in item.split(":")]
        kind = kind.lower()
        ok = True
        try:
            if kind == "dense" and len(args) in (1, 2):
                ok = int(args[0]) > 0
                if len(args) == 2:
                    activations.get(args[1])
            elif kind == "dropout" and len(args) == 1:
                ok = 0.0 <= float(args[0]) < 1.0
            elif kind == "batchnorm" and not args:
                pass
            elif kind == "activation" and len(args) == 1:
                activations.get(args[0])
            else:
                ok = False
        except ValueError as e:
            raise CliError(f"--model: bad layer {item!r}: {e}") from None
        if not ok:
            raise CliError(f"--model: bad layer {item!r}; {_SPEC_HELP}")
        layers.append((kind, args))
    if not layers or layers[-1][0] not in ("dense", "activation"):
        raise CliError(f"--model: {spec!r} must end with a dense layer; {_SPEC_HELP}")
    return layers


def build_model(
    spec: str,
    n_features: int,
    n_targets: int,
    *,
    feature_norm: Any = None,
    target_stats: tuple[list[float], list[float]] | None = None,
) -> Any:
    """A `Sequential` from a `--model` spec, with optional normalisation layers.

    Args:
        spec: the `--model` string.
        n_features: input width.
        n_targets: width the last dense layer must have.
        feature_norm: a `Normalization` layer (adapted, or to be restored) to put first.
        target_stats: `(mean, variance)` of the target; adds an inverted
            `Normalization` last, so the network learns a standardised target
            but predicts (and is scored) in the target's own units.
    """
    from batchfit.layers import Activation, BatchNormalization, Dense, Dropout, Input, Normalization
    from batchfit.models import Sequential

    layers = parse_model_spec(spec)
    dense_units = [int(args[0]) for kind, args in layers if kind == "dense"]
    if not dense_units:
        raise CliError(f"--model: {spec!r} has no dense layer; {_SPEC_HELP}")
    if dense_units[-1] != n_targets:
        raise CliError(
            f"--model: the last dense layer has {dense_units[-1]} units but there "
            f"{'is' if n_targets == 1 else 'are'} {n_targets} target column(s)"
        )
    model = Sequential([Input(shape=(n_features,))])
    if feature_norm is not None:
        model.add(feature_norm)
    for kind, args in layers:
        if kind == "dense":
            model.add(Dense(int(args[0]), activation=args[1] if len(args) > 1 else None))
        elif kind == "dropout":
            model.add(Dropout(float(args[0])))
        elif kind == "batchnorm":
            model.add(BatchNormalization())
        else:
            model.add(Activation(args[0]))
    if target_stats is not None:
        mean, variance = target_stats
        model.add(Normalization(mean=mean, variance=variance, invert=True))
    return model
