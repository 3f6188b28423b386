"""The command's raw tables: the one pass that learns the encoding, and its readers.

The encoding itself is `batchfit.data`'s (NOTE [ Encoding a raw table ] in
`batchfit/data/_table.py`); this module chooses the command's options for it,
runs the pass over this rank's shard of the training rows (merging the ranks'
statistics in rank order), saves it as `table.json` and says what it found.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from batchfit.cli.data import open_source, query_columns, query_of
from batchfit.cli.errors import CliError
from batchfit.distributed import say

__all__ = ["learn_table", "read_table", "table_rows", "write_table"]

TABLE_FILE = "table.json"
_PASS_BATCH = 65_536


def flag_hint(option: str, value: str) -> str:
    """How a refused row's message names the flag that would let it through."""
    return f"--{option.replace('_', '-')} {value}"


def _sample_kinds(
    settings: Any, files: Sequence[str], names: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    from batchfit.data._table_kinds import sample_kinds
    from batchfit.data._table_rows import sample_frame

    where = "--sql" if settings.sql is not None else files[0]
    try:
        if settings.sql is not None:
            return sample_kinds(query_columns(settings), names)
        delimiter = "\t" if files[0].lower().endswith(".tsv") else ","
        return sample_kinds(sample_frame(files[0], names, delimiter), names)
    except TypeError as e:
        raise CliError(f"{where}: {e}; leave it out with --drop") from None


def table_rows(
    spec: Any,
    targets: Sequence[str],
    settings: Any,
    *,
    with_key: bool,
    keep: Sequence[str] = (),
) -> Any:
    """A `TableRows` that encodes blocks with `spec`, with the run's row policies."""
    from batchfit.data._table_rows import TableRows

    return TableRows(
        [f.name for f in spec.features],
        list(targets),
        spec.kinds(),
        spec=spec,
        on_bad_rows="raise" if settings.on_bad_rows == "error" else "skip",
        on_missing="raise" if settings.on_missing == "error" else settings.on_missing,
        with_key=with_key,
        keep=keep,
        hint=flag_hint,
    )


def learn_table(
    settings: Any, files: list[str], features: list[str], validation_fraction: float
) -> Any:
    """One streamed pass over the training rows: the `TableSpec` of the run."""
    from batchfit import distributed
    from batchfit.data._table import TableSpec
    from batchfit.data._table_rows import TableRows
    from batchfit.data._table_scan import TableScan

    say("Reading the table (one streamed pass over the training rows) ...")
    t0 = time.perf_counter()
    kinds = _sample_kinds(settings, files, features + settings.target)
    scan = TableScan(kinds, keep=max(1000, 2 * settings.max_categories))
    rows = TableRows(
        features,
        settings.target,
        kinds,
        scan=scan,
        on_bad_rows="raise" if settings.on_bad_rows == "error" else "skip",
        on_missing="raise" if settings.on_missing == "error" else settings.on_missing,
        scan_fraction=validation_fraction,
        hint=flag_hint,
    )
    source = open_source(
        files,
        settings.target,
        features,
        batch_size=_PASS_BATCH,
        shuffle_buffer=0,
        table=rows,
        sql=query_of(settings),
    )
    if distributed.is_distributed():
        source = source.shard(distributed.rank(), distributed.world_size())
    for _ in source:
        pass  # the pass yields no batches: each block went into `scan`
    skipped = {k: v for k, v in source.stats.items() if k.endswith("_skipped") and v}
    if distributed.is_distributed():
        scans = distributed.gather_objects((scan, skipped))
        scan, skipped = scans[0]
        for other, more in scans[1:]:
            scan.merge(other)
            for key, value in more.items():
                skipped[key] = skipped.get(key, 0) + value
    for key, value in skipped.items():
        scan.count_skipped(key, value)
    if scan.rows == 0:
        raise CliError("the training side of the data has no rows")
    try:
        spec = TableSpec.from_scan(
            scan,
            features,
            settings.target,
            task=settings.task,
            min_count=settings.min_category_count,
            max_categories=settings.max_categories,
        )
    except ValueError as e:
        raise CliError(f"--target: {e} (--task chooses)") from None
    if not spec.features:
        raise CliError(
            f"no feature column left: {', '.join(f'{k} ({v})' for k, v in spec.dropped.items())}"
        )
    say(f"  done in {time.perf_counter() - t0:.1f}s")
    _describe(spec)
    return spec


def _describe(spec: Any) -> None:
    """The columns by kind, what was dropped and what the target is."""
    by_kind: dict[str, list[str]] = {}
    for feature in spec.features:
        label = feature.name
        if feature.kind == "category":
            extra = " + hashed" if feature.hash_bins else ""
            label += f" ({len(feature.vocabulary)} values{extra})"
        by_kind.setdefault(feature.kind, []).append(label)
    names = {"number": "numbers", "bool": "booleans", "category": "categories", "datetime": "dates"}
    for kind in ("number", "bool", "category", "datetime"):
        if kind in by_kind:
            say(f"  {names[kind]}: {', '.join(by_kind[kind])}")
    with_missing = [f.name for f in spec.features if f.indicator]
    if with_missing:
        say(f"  missing cells imputed (with an indicator) in: {', '.join(with_missing)}")
    if spec.dropped:
        say("  dropped: " + ", ".join(f"{k} ({v})" for k, v in spec.dropped.items()))
    for key, value in spec.skipped.items():
        say(f"  skipped {value:,} rows ({key.replace('_', ' ').replace(' skipped', '')})")
    target = ", ".join(spec.targets)
    if spec.task == "regression":
        say(f"  target {target}: a number (regression)")
    else:
        shown = ", ".join(spec.classes[:10]) + (", ..." if len(spec.classes) > 10 else "")
        say(
            f"  target {target}: {len(spec.classes)} classes ({shown}); "
            f"--task regression to predict it as a number"
            if spec.target_kind == "number"
            else f"  target {target}: {len(spec.classes)} classes ({shown})"
        )
    say(f"  {len(spec.output_names())} model inputs from {len(spec.features)} columns")


def write_table(run_dir: Path, spec: Any) -> None:
    from batchfit._io import atomic_write

    text = json.dumps(spec.to_json(), indent=1)
    atomic_write(run_dir / TABLE_FILE, text.encode("utf-8"))


def read_table(run_dir: Path) -> Any:
    """The run's `TableSpec`, checked field by field (a doctored file is one clear error)."""
    from batchfit.data._table import TableSpec

    path = run_dir / TABLE_FILE
    if not path.is_file():
        raise CliError(f"{run_dir} has no {TABLE_FILE}: the run did not get past its first pass")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TableSpec.from_json(data, str(path))
    except (ValueError, TypeError, RecursionError) as e:
        raise CliError(f"{path} is not a valid table description: {e}") from None
