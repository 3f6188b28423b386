"""The `batchfit` command: train, evaluate and predict from CSV/Parquet files without code.

    batchfit fit houses/*.csv --target price --model "dense:64:relu,dense:1" --out runs/houses
    batchfit evaluate runs/houses val.parquet
    batchfit predict runs/houses new/*.csv --output preds.parquet
    batchfit demo
    batchfit example-data

Exit codes: 0 success, 1 failure (a bad file, column, value; printed as one
`batchfit: error: ...` line), 2 usage (an unknown or malformed flag), 130
interrupted. Set `BATCHFIT_TRACEBACK=1` to see the full traceback of a failure.

Under torchrun (`torchrun --nproc_per_node=N -m batchfit fit ...`) fit,
evaluate and predict share the work between the processes; see NOTE [ The
command under torchrun ] in `batchfit.cli.fit`.

The package, one module a job (docs/architecture.md, "The command on top"):
    entry.py       the parser, `main`, exit codes, the process group
    settings.py    `fit`'s settings from flags, TOML files and run.json
    data.py        which files, their columns, a csv/parquet source on them
    split.py       `RowSplit` (the row-hash validation split), `TargetTap`
    model_spec.py  `--model` specs parsed, checked and built
    run_dir.py     run.json; start afresh, resume or stop
    fit.py         `batchfit fit`, one named step after another
    use.py         `batchfit evaluate` and `batchfit predict`
    progress.py    rows/s, loss and ETA per epoch
    plots.py       predictions.png: predicted against actual, or a confusion matrix
    demo.py        `batchfit demo`
    example_data.py  `batchfit example-data`: raw example tables to try fit on
    errors.py      `CliError`
"""

from __future__ import annotations

from batchfit.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
