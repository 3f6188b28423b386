"""The entry of the `batchfit` command: the parser, the exit codes, the process group.

`main` parses the flags, joins torchrun's process group when there is one,
runs the sub-command (`batchfit.cli.fit`, `.use`, `.demo`) and turns every
failure into one `batchfit: error: ...` line and an exit code (see
`batchfit.cli`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["build_parser", "main"]

_FIT_EPILOG = """\
Files are streamed (never loaded whole): CSV (.csv, .csv.gz, .tsv) through
batchfit.data.csv, Parquet (.parquet) through batchfit.data.parquet.

Tables as they come: one streamed pass finds each column's kind (numbers,
booleans, dates, strings, missing cells spelled as pandas reads them) and its
statistics. Strings are one-hot encoded, dates split into numeric parts,
missing cells imputed with a missing-indicator column; constant and empty
columns are dropped. A string, boolean or small-integer target is
classification (labels in, labels out). The encoding is saved as
OUT/table.json and used again by evaluate and predict.

Validation: --validation-split F holds out a fraction F of the rows, chosen by
a hash of each row's values, so the split is the same every epoch and on every
re-run, whatever the file order, batch size or shuffling, and duplicate rows
land on the same side. Or give separate files with --validation-data.

Resume: fit backs its whole state up to OUT/backup every --backup-every batches.
If the run is interrupted (Ctrl-C, kill -9, a crash), running the same command
again, or `batchfit fit --resume --out OUT`, continues at the batch it reached
and ends with the model an uninterrupted run would give.

--config run.toml takes the same settings from a file (keys are the flag names:
batch_size = 256, metrics = ["mae"], data = ["houses/*.csv"]); flags override it.

Writes OUT/model.safetensors, OUT/table.json, OUT/history.csv, OUT/history.png
and OUT/run.json (and OUT/best.safetensors with --checkpoint-best).
"""


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit code 2) and no abbreviated flags.

    Abbreviations are off so a typo like `--epoch` is an error, not `--epochs`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    # Every setting defaults to None ("not given") so --config values can fill it.
    p.add_argument("data", nargs="*", metavar="PATHS", help="CSV or Parquet files, globs or dirs")
    p.add_argument("--sql", metavar="QUERY", help="train on a SQL query instead of files (--db)")
    p.add_argument(
        "--db",
        metavar="URI",
        help="database of --sql: postgresql://user@host/db (password from PGPASSWORD or "
        "~/.pgpass; one in the URI is masked everywhere), duckdb:///file.duckdb or duckdb://",
    )
    p.add_argument(
        "--order-by", metavar="KEY", help="a unique column of --sql (e.g. id); not a feature"
    )
    p.add_argument("--target", help="column(s) to predict (comma-separated for several)")
    p.add_argument("--features", help="feature columns (default: every column but the target)")
    p.add_argument("--drop", help="columns to leave out of the features (e.g. id,date)")
    p.add_argument(
        "--model",
        help='layers, e.g. "dense:64:relu,dropout:0.1,dense:1" '
        "(dense:UNITS[:ACTIVATION], dropout:RATE, batchnorm, activation:NAME); "
        'default "dense:64:relu,dense:64:relu" and the output the target calls for '
        "(dense:1; dense:1:sigmoid for two classes; dense:K:softmax for K classes)",
    )
    p.add_argument(
        "--loss",
        help="Keras loss name (default mse; binary_crossentropy or "
        "sparse_categorical_crossentropy for labels)",
    )
    p.add_argument("--metrics", help="comma-separated Keras metric names, e.g. mae,rmse")
    p.add_argument("--optimizer", help="Keras optimizer name (default adam)")
    p.add_argument("--learning-rate", type=float, help="optimizer learning rate")
    p.add_argument("--epochs", type=int, help="passes over the data (default 1)")
    p.add_argument("--batch-size", type=int, help="rows per gradient step (default 32)")
    p.add_argument(
        "--validation-split", type=float, help="fraction of rows held out by row hash (0-1)"
    )
    p.add_argument("--validation-data", help="validation files instead (comma-separated/globs)")
    p.add_argument(
        "--shuffle-buffer", type=int, help="rows mixed in the shuffle buffer (default 100000)"
    )
    p.add_argument("--seed", type=int, help="seed of weights and data order (default 0)")
    p.add_argument(
        "--normalize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="standardise numeric features with a Normalization layer (default on; "
        "the statistics come from the one streamed pass over the training rows)",
    )
    p.add_argument(
        "--normalize-target",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="learn a standardised target; an inverted Normalization layer maps predictions "
        "back to the target's units (regression; default on)",
    )
    p.add_argument(
        "--task",
        choices=("auto", "regression", "classification"),
        help="auto (default): labels (strings, booleans, integers with at most 10 values) "
        "are classification, other numbers regression",
    )
    p.add_argument(
        "--on-bad-rows",
        choices=("error", "skip"),
        help="a row with a cell that does not fit its column (a word in a number column, "
        "a wrong field count): stop with its line (default) or skip and count it",
    )
    p.add_argument(
        "--on-missing",
        choices=("impute", "skip", "error"),
        help="a missing feature cell (empty, NA, NaN, null, ...): impute the training mean "
        "plus a missing-indicator column (default), skip the row, or stop",
    )
    p.add_argument(
        "--max-categories",
        type=int,
        help="one-hot columns per string column at most (default 100; more values are hashed)",
    )
    p.add_argument(
        "--min-category-count",
        type=int,
        help="rarer values share the <other> slot (default 5)",
    )
    p.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better val_loss (or loss), "
        "restoring the best weights",
    )
    p.add_argument(
        "--checkpoint-best",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the best epoch's model as best.safetensors in the run directory",
    )
    p.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs to DIR")
    p.add_argument("--out", help="run directory (required)")
    p.add_argument("--backup-every", type=int, help="batches between backups (default 1000)")
    p.add_argument("--config", help="TOML file of settings (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")
    p.add_argument("--overwrite", action="store_true", help="delete --out and start again")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _add_threads(p)


_THREADS_HELP = (
    "torch threads for the math (default 1: small models on few cores run several times "
    "faster with one thread, leaving the others to parse files)"
)


def _add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive_int, default=1, help=_THREADS_HELP)


def _add_query_options(p: argparse.ArgumentParser) -> None:
    """`--sql/--db/--order-by` for evaluate and predict (default: the run's own query)."""
    p.add_argument("--sql", metavar="QUERY", help="read a query instead of DATA files")
    p.add_argument("--db", metavar="URI", help="database of the query (given again if masked)")
    p.add_argument("--order-by", metavar="KEY", help="unique key column of the query")


def build_parser() -> argparse.ArgumentParser:
    """The `batchfit` argument parser (sub-commands fit, evaluate, predict, demo)."""
    from batchfit import __version__

    parser = _Parser(
        prog="batchfit",
        description="Train Keras-style models on CSV/Parquet files larger than memory.",
    )
    parser.add_argument("--version", action="version", version=f"batchfit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    fit = sub.add_parser(
        "fit",
        help="train a model on CSV/Parquet files",
        description="Train a model on CSV or Parquet files, streamed in batches.",
        epilog=_FIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_fit_options(fit)

    ev = sub.add_parser(
        "evaluate",
        help="loss and metrics of a trained run on files",
        description="Loss and metrics of the model in RUN_DIR on DATA (streamed).",
    )
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("data", nargs="*", metavar="DATA")
    _add_query_options(ev)
    ev.add_argument("--batch-size", type=_positive_int, default=4096, help="rows per batch")
    ev.add_argument(
        "--subset",
        choices=("all", "validation", "train"),
        default="all",
        help="'validation'/'train': only the rows the run's --validation-split put there",
    )
    _add_threads(ev)

    pr = sub.add_parser(
        "predict",
        help="stream predictions to a CSV or Parquet file",
        description="Predict with the model in RUN_DIR on DATA, streaming to --output "
        "(rows in file order: the --keep columns, <target>_pred per target, and for "
        "classification the label in <target>_pred plus one probability column per class).",
    )
    pr.add_argument("run_dir", metavar="RUN_DIR")
    pr.add_argument("data", nargs="*", metavar="DATA")
    _add_query_options(pr)
    pr.add_argument(
        "--output", required=True, help="file to write: .csv or .parquet (by its extension)"
    )
    pr.add_argument(
        "--keep", help="input columns copied into the predictions (e.g. id), comma-separated"
    )
    pr.add_argument("--batch-size", type=_positive_int, default=4096, help="rows per batch")
    _add_threads(pr)

    demo = sub.add_parser(
        "demo",
        help="generate a housing CSV and train on it, against the known noise floor",
        description="Generate a housing-like CSV with a known price model and noise, stream "
        "it through fit with a validation split, and compare the validation error with the "
        "noise floor (the best error any model can reach).",
    )
    from batchfit.cli.demo import DEFAULT_EPOCHS, DEFAULT_ROWS

    demo.add_argument(
        "--rows", type=_positive_int, default=DEFAULT_ROWS, help=f"rows (default {DEFAULT_ROWS:,})"
    )
    demo.add_argument("--out", default="demo-output", help="directory (default demo-output)")
    demo.add_argument(
        "--epochs", type=_positive_int, default=DEFAULT_EPOCHS, help="training epochs"
    )
    demo.add_argument("--quiet", action="store_true", help="no progress output")
    _add_threads(demo)

    # `batchfit example-data` (batchfit/cli/example_data.py): no torch, no training
    from batchfit.cli.example_data import DEFAULT_ROWS as EXAMPLE_ROWS
    from batchfit.cli.example_data import DEFAULT_SEED as EXAMPLE_SEED

    example = sub.add_parser(
        "example-data",
        help="write example tables (houses.csv, penguins.csv) to try fit on",
        description="Write raw example tables as people have them: houses.csv (regression, "
        "target price: numbers, string categories, True/False, a date column, missing cells "
        "spelled '', NA and NaN) and penguins.csv (classification, target species: the "
        "Palmer penguins table when the palmerpenguins package is installed, else a "
        "generated one with its columns). Seeded: the same files on every machine.",
    )
    example.add_argument(
        "--name", choices=("houses", "penguins", "all"), default="all", help="which table(s)"
    )
    example.add_argument(
        "--rows", type=_positive_int, help=f"rows of houses.csv (default {EXAMPLE_ROWS:,})"
    )
    example.add_argument("--out", default="example-data", help="directory (default example-data)")
    example.add_argument(
        "--seed", type=int, default=EXAMPLE_SEED, help=f"seed (default {EXAMPLE_SEED})"
    )
    example.add_argument("--overwrite", action="store_true", help="replace existing files")
    example.set_defaults(threads=1)  # no math to thread; _run sets torch's threads for all
    return parser


def _fit_settings(args: argparse.Namespace) -> Any:
    from batchfit.cli.run_dir import read_run
    from batchfit.cli.settings import flags_given, load_toml, merge_settings

    from_file = load_toml(args.config) if args.config else {}
    flags = flags_given(args)
    layers: list[dict[str, Any]] = [from_file, flags]
    out = flags.get("out") or from_file.get("out")
    if args.resume and out and (Path(out) / "run.json").is_file():
        saved = read_run(Path(out)).get("settings", {})
        layers.insert(0, {k: v for k, v in saved.items() if k != "out"})
    return merge_settings(*layers)


def _run(args: argparse.Namespace) -> int:
    import torch

    from batchfit import distributed

    torch.set_num_threads(args.threads)
    if args.command == "demo" and distributed.torchrun_env():
        from batchfit.cli.errors import CliError

        raise CliError("batchfit demo runs in one process: start it without torchrun")
    # under torchrun every rank joins the group first, so the ranks can agree on failures
    _state["joined"] = distributed.init()
    ok = False
    try:
        code = _command(args)
        ok = True
        return code
    finally:
        _leave_group(ok)


def _leave_group(ok: bool) -> None:
    """End the process group torchrun's ranks joined (nothing in one process).

    After a success every rank waits for the others first. Left to the
    interpreter's exit instead, gloo's threads sometimes abort the process
    ("terminate called without an active exception", exit code -6).
    """
    import torch.distributed as dist

    from batchfit import distributed

    if not distributed.is_distributed():
        return
    if ok:
        distributed.barrier()
    dist.destroy_process_group()


def _command(args: argparse.Namespace) -> int:
    from batchfit.cli import fit, use
    from batchfit.distributed import agree

    if args.command == "fit":
        # every rank has read run.json before rank 0 may change the run directory
        settings = agree(lambda: _fit_settings(args))
        return fit.fit_command(
            settings, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet
        )
    if args.command == "evaluate":
        return use.evaluate_command(
            Path(args.run_dir), _data_choice(args), args.batch_size, args.subset
        )
    if args.command == "predict":
        keep = [c.strip() for c in (args.keep or "").split(",") if c.strip()]
        return use.predict_command(
            Path(args.run_dir), _data_choice(args), args.output, args.batch_size, keep=keep
        )
    if args.command == "example-data":
        from batchfit.cli.example_data import example_data_command

        return example_data_command(
            Path(args.out), args.name, args.rows, args.seed, overwrite=args.overwrite
        )
    from batchfit.cli.demo import run_demo

    return run_demo(rows=args.rows, out=Path(args.out), epochs=args.epochs, quiet=args.quiet)


def _data_choice(args: argparse.Namespace) -> Any:
    from batchfit.cli.use import DataChoice

    return DataChoice(list(args.data), args.sql, args.db, args.order_by)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    Under torchrun, once the process group is left, the process ends here
    with `os._exit` (after flushing stdout and stderr): C++ threads of the
    gloo backend sometimes abort the interpreter's own teardown ("terminate
    called without an active exception", exit code -6), which would turn a
    finished run into a failed job.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    code = _main(args)
    if _state["joined"]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


_state = {"joined": False}  # whether this process joined a torchrun process group


def _main(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:
        if not _rank():
            print("batchfit: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure becomes one line (BATCHFIT_TRACEBACK=1 for all)
        distributed = sys.modules.get("batchfit.distributed")  # loaded if ranks agreed
        if distributed is not None and isinstance(error, distributed.OtherRankFailed):
            return 1  # under torchrun: the failing rank printed why
        if os.environ.get("BATCHFIT_TRACEBACK"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, (MemoryError, AssertionError, AttributeError, NameError)):
            message = f"{type(error).__name__}: {message} (a bug? rerun with BATCHFIT_TRACEBACK=1)"
        rank = _rank()
        if rank is not None and isinstance(error, RuntimeError) and "by peer" in message:
            # gloo's "Connection closed by peer": this rank waited for one that had failed
            message = "lost the connection to another process, which failed or stopped first"
        where = f" (rank {rank})" if rank else ""
        print(f"batchfit: error{where}: {message}", file=sys.stderr)
        return 1


def _rank() -> int | None:
    """This process's rank under torchrun (None in one process), without starting anything."""
    if "batchfit.distributed" in sys.modules:
        from batchfit import distributed

        if distributed.is_distributed():
            return distributed.rank()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ:
        return int(os.environ["RANK"])
    return None
