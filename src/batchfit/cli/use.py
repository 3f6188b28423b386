"""What `batchfit evaluate` and `predict` do with a finished run directory.

Under torchrun (NOTE [ The command under torchrun ] in `batchfit.cli.fit`) every rank
checks the run and the files (`agree`: one message, every rank exits, on a
failure); `evaluate` scores a shard per rank and adds the sums and row counts;
`predict` shares the batches between ranks and rank 0 writes the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from batchfit.cli.data import expand_files, header_of, open_source
from batchfit.cli.errors import CliError
from batchfit.cli.run_dir import read_run
from batchfit.cli.split import RowSplit, this_rank
from batchfit.distributed import agree, say, sum_over_ranks

__all__ = ["evaluate_command", "predict_command"]


def _load(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from batchfit.models import load_model

    run = read_run(run_dir)
    path = run_dir / "model.safetensors"
    if not path.is_file():
        raise CliError(f"{run_dir} has no model.safetensors: the run did not finish (resume it)")
    return load_model(str(path)), run


def _check_columns(files: list[str], needed: list[str]) -> None:
    for path in files:
        names = header_of(path)
        missing = [c for c in needed if c not in names]
        if missing:
            raise CliError(f"column(s) {missing} missing from {path}; its columns are {names}")


def evaluate_command(run_dir: Path, data: list[str], batch_size: int, subset: str) -> int:
    """Loss and metrics of a trained run on files (or on one side of its split)."""

    def prepare() -> tuple[Any, RowSplit]:
        model, run = _load(run_dir)
        files = expand_files(data, "data")
        _check_columns(files, run["features"] + run["target"])
        inner = open_source(files, run["target"], run["features"], batch_size=batch_size)
        fraction = run["settings"].get("validation_split", 0.0) if subset != "all" else 0.0
        if subset != "all" and not fraction:
            raise CliError(f"--subset {subset}: the run in {run_dir} used no --validation-split")
        return model, RowSplit(inner, fraction, subset if subset != "all" else "train")

    model, source = agree(prepare)
    source = this_rank(source)  # evaluate leaves a sharded source alone; its count stays ours
    values = model.evaluate(source, verbose=0, return_dict=True)
    rows = sum_over_ranks(source.rows_last_epoch) or 0
    say(f"{rows:,} rows: " + " - ".join(f"{k}: {v:.4f}" for k, v in values.items()))
    return 0


def predict_command(run_dir: Path, data: list[str], output: str, batch_size: int) -> int:
    """Stream predictions to a Parquet file, one column per target (`<target>_pred`)."""

    def prepare() -> tuple[Any, Any, list[str]]:
        if not output.lower().endswith((".parquet", ".pq")):
            raise CliError(f"--output {output!r}: predictions are written as Parquet (.parquet)")
        model, run = _load(run_dir)
        files = expand_files(data, "data")
        _check_columns(files, run["features"])
        source = open_source(files, None, run["features"], batch_size=batch_size)
        return model, source, [f"{t}_pred" for t in run["target"]]

    model, source, names = agree(prepare)
    t0 = time.perf_counter()
    written = model.predict(source, verbose=0, output=output, output_columns=names)
    if written is not None:  # under torchrun, rank 0 wrote the file
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(output).metadata.num_rows
        say(
            f"Wrote {rows:,} predictions ({', '.join(names)}) to {output} "
            f"in {time.perf_counter() - t0:.1f}s"
        )
    return 0
