"""What `batchfit evaluate` and `predict` do with a finished run directory.

Both read the files as the run's table (`table.json`), encoded exactly as in
training. Under torchrun (NOTE [ The command under torchrun ] in
`batchfit.cli.fit`) every rank checks the run and the files (`agree`: one
message, every rank exits, on a failure); `evaluate` scores a shard per rank
and adds the sums and row counts; `predict` runs on rank 0, which writes the
file in row order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from batchfit.cli.data import expand_files, header_of, open_source, query_columns
from batchfit.cli.errors import CliError
from batchfit.cli.predictions import output_kind, write_predictions
from batchfit.cli.run_dir import read_run
from batchfit.cli.split import RowSplit, this_rank
from batchfit.cli.table import read_table, table_rows
from batchfit.distributed import agree, say, sum_over_ranks

__all__ = ["DataChoice", "evaluate_command", "predict_command"]


def _load(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from batchfit.models import load_model

    run = read_run(run_dir)
    path = run_dir / "model.safetensors"
    if not path.is_file():
        raise CliError(f"{run_dir} has no model.safetensors: the run did not finish (resume it)")
    return load_model(str(path)), run


class DataChoice:
    """Where `evaluate`/`predict` read: DATA files, `--sql` on `--db`, or the run's own query."""

    def __init__(
        self,
        files: list[str],
        sql: str | None = None,
        db: str | None = None,
        order_by: str | None = None,
    ) -> None:
        self.files, self.sql, self.db, self.order_by = files, sql, db, order_by

    def resolve(self, run: dict[str, Any]) -> tuple[list[str], tuple[str, str, str] | None]:
        """The files, or `(query, URI, key)`, checked against the run."""
        if self.files and self.sql:
            raise CliError("give DATA files or --sql, not both")
        if self.files:
            return expand_files(self.files, "data"), None
        settings = run.get("settings", {})
        query = self.sql or settings.get("sql")
        if not query:
            raise CliError("no data: give DATA files (or --sql QUERY --db URI)")
        db = self.db or settings.get("db")
        if not db or "***" in db:
            raise CliError("--db URI is needed for the query (the run does not hold the password)")
        key = self.order_by or settings.get("order_by")
        if not key:
            raise CliError("--order-by KEY is needed for --sql (a unique column of the query)")
        return [], (query, db, key)


def _check_columns(
    files: list[str], needed: list[str], query: tuple[str, str, str] | None = None
) -> None:
    if query is not None:
        from types import SimpleNamespace

        names = list(query_columns(SimpleNamespace(sql=query[0], db=query[1])).columns)
        missing = [c for c in needed if c not in names]
        if missing:
            raise CliError(f"column(s) {missing} missing from --sql; its columns are {names}")
        return
    for path in files:
        names = header_of(path)
        missing = [c for c in needed if c not in names]
        if missing:
            raise CliError(f"column(s) {missing} missing from {path}; its columns are {names}")


def _table_source(
    run_dir: Path,
    run: dict[str, Any],
    files: list[str],
    targets: list[str],
    batch_size: int,
    *,
    keyed: bool,
    keep: list[str] | None = None,
    query: tuple[str, str, str] | None = None,
) -> Any:
    """A source reading `files` (or `query`) as the run's table: encoded as in training."""
    from batchfit.cli.settings import FitSettings

    spec = read_table(run_dir)
    settings = FitSettings(
        **{k: v for k, v in run["settings"].items() if k in FitSettings.__dataclass_fields__}
    )
    rows = table_rows(spec, targets, settings, with_key=keyed, keep=keep or [])
    features = [f.name for f in spec.features]
    source = open_source(
        files, targets or None, features, batch_size=batch_size, table=rows, sql=query
    )
    return source, spec


def evaluate_command(run_dir: Path, data: DataChoice, batch_size: int, subset: str) -> int:
    """Loss and metrics of a trained run on files or a query (or one side of its split)."""

    def prepare() -> tuple[Any, RowSplit]:
        model, run = _load(run_dir)
        files, query = data.resolve(run)
        _check_columns(files, run["features"] + run["target"], query)
        inner, _ = _table_source(
            run_dir, run, files, run["target"], batch_size, keyed=True, query=query
        )
        fraction = run["settings"].get("validation_split", 0.0) if subset != "all" else 0.0
        if subset != "all" and not fraction:
            raise CliError(f"--subset {subset}: the run in {run_dir} used no --validation-split")
        side = subset if subset != "all" else "train"
        return model, RowSplit(inner, fraction, side, keyed=True)

    model, source = agree(prepare)
    source = this_rank(source)  # evaluate leaves a sharded source alone; its count stays ours
    values = model.evaluate(source, verbose=0, return_dict=True)
    rows = sum_over_ranks(source.rows_last_epoch) or 0
    say(f"{rows:,} rows: " + " - ".join(f"{k}: {v:.4f}" for k, v in values.items()))
    return 0


def predict_command(
    run_dir: Path, data: DataChoice, output: str, batch_size: int, *, keep: list[str] | None = None
) -> int:
    """Stream predictions to a CSV or Parquet file (by `output`'s extension).

    One column `<target>_pred` per target; for classification the label in
    `<target>_pred` and one probability column `<target>_prob_<class>` per
    class. `keep` columns of the input are copied in front, row for row.
    Rows are in file order (a query's: its key order); under torchrun rank 0
    predicts and writes.
    """
    from batchfit import distributed

    keep = list(keep or [])

    def prepare() -> tuple[Any, Any, Any, Any]:
        writer_kind = output_kind(output)
        model, run = _load(run_dir)
        files, query = data.resolve(run)
        _check_columns(files, run["features"] + keep, query)
        source, spec = _table_source(
            run_dir, run, files, [], batch_size, keyed=False, keep=keep, query=query
        )
        return model, source, spec, writer_kind

    model, source, spec, writer_kind = agree(prepare)
    if not distributed.is_main():
        return 0
    t0 = time.perf_counter()
    rows = write_predictions(model, source, keep, spec, output, writer_kind)
    say(f"Wrote {rows:,} predictions to {output} in {time.perf_counter() - t0:.1f}s")
    return 0
