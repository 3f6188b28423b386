"""What `batchfit fit` does: `fit_command`, one named step after another.

The parser lives in `batchfit.cli.entry`, the run directory in
`batchfit.cli.run_dir`, `evaluate` and `predict` in `batchfit.cli.use`.

NOTE [ The command under torchrun ]
`torchrun --nproc_per_node=N -m batchfit fit ...` trains one run with N
processes. Every rank joins the process group before doing anything and
resolves the settings and files itself; rank 0 alone decides whether to start
afresh, resume or do nothing (it may delete a failed run) and tells the
others, so no rank reads the run directory while rank 0 changes it. Each rank
trains on its shard of the row-hash split (`RowSplit.shard`) and the
statistics pass reads a shard per rank and merges the sums in rank order, so
every rank holds the same statistics. Row counts are added across ranks.
Only rank 0 prints and writes the run directory; each rank writes its own
backup file (its data position), which rank 0 removes at the end.
A failure during the set-up (a bad flag value, file or column) is agreed
between ranks (`agree`): one rank prints it and every rank exits with 1.
A failure during training ends that rank; torchrun then stops the others and
exits with 1, so no rank waits for one that has gone.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from batchfit.callbacks import Callback
from batchfit.cli.data import (
    expand_files,
    header_of,
    open_source,
    query_columns,
    query_of,
    resolve_features,
    train_rows_estimate,
)
from batchfit.cli.errors import CliError
from batchfit.cli.model_spec import build_model, choose_head
from batchfit.cli.progress import RowProgress, SkippedRows
from batchfit.cli.run_dir import RUN_FORMAT, start_or_resume, write_run
from batchfit.cli.settings import FitSettings
from batchfit.cli.split import RowSplit, this_rank
from batchfit.cli.table import learn_table, read_table, table_rows, write_table
from batchfit.distributed import agree, on_main, say, sum_over_ranks

__all__ = ["fit_command"]


def fit_command(settings: FitSettings, *, resume: bool, overwrite: bool, quiet: bool) -> int:
    """Train from files as `settings` say, writing the run directory.

    Each step below is a function of this module, in the order they run.
    Under torchrun, see NOTE [ The command under torchrun ].
    """
    import torch

    from batchfit import distributed

    run_dir = Path(settings.out or "")
    mode, previous = on_main(lambda: start_or_resume(run_dir, settings, resume, overwrite))
    if mode == "done":
        say(f"{run_dir} already finished {settings.epochs} epochs; nothing to do")
        return 0
    inputs = agree(lambda: _check_files(settings))
    on_main(lambda: run_dir.mkdir(parents=True, exist_ok=True))
    torch.manual_seed(settings.seed)
    spec = agree(lambda: _table(settings, inputs, previous, run_dir))
    train, validation = agree(lambda: _open_sources(settings, inputs, spec))
    model = agree(lambda: _compiled_model(settings, spec))
    run = _describe_run(settings, inputs, spec, previous)
    on_main(lambda: write_table(run_dir, spec))
    write_run(run_dir, run)
    history, counts = _train(model, settings, inputs, spec, train, validation, run_dir, quiet)
    if not distributed.is_main():
        return 0  # rank 0 writes the model, the plots and run.json
    _write_results(run_dir, run, model, history, counts)
    _predictions_plot(run_dir, model, validation, spec)
    return 0


@dataclasses.dataclass
class _Inputs:
    """The checked files of a run and its feature columns."""

    files: list[str]
    features: list[str]
    validation_files: list[str]


def _check_files(settings: FitSettings) -> _Inputs:
    """The data files, the feature columns and the validation files, checked.

    With `--sql`, the query's columns instead (its `--order-by` key is not a
    feature unless `--features` names it).
    """
    if settings.sql is not None:
        columns = list(query_columns(settings).columns)
        if settings.order_by not in columns:
            raise CliError(
                f"--order-by: column {settings.order_by!r} not in the query; "
                f"its columns are {columns}"
            )
        drop = [*settings.drop, settings.order_by] if settings.order_by else settings.drop
        features = resolve_features(columns, settings.target, settings.features, drop, "--sql")
        return _Inputs([], features, [])
    files = expand_files(settings.data, "data")
    columns = header_of(files[0])
    features = resolve_features(
        columns, settings.target, settings.features, settings.drop, files[0]
    )
    val_files = (
        expand_files(settings.validation_data, "--validation-data")
        if settings.validation_data
        else []
    )
    for extra in files[1:] + val_files:
        if header_of(extra) != columns and not set(features + settings.target) <= set(
            header_of(extra)
        ):
            raise CliError(f"columns of {extra} differ from {files[0]}: expected {columns}")
    return _Inputs(files, features, val_files)


def _table(
    settings: FitSettings, inputs: _Inputs, previous: dict[str, Any] | None, run_dir: Path
) -> Any:
    """The encoding of the table: learnt in one streamed pass, or the resumed run's."""
    if previous is not None:
        say(f"Resuming the run in {run_dir} from its backup")
        return read_table(run_dir)
    fraction = settings.validation_split if not inputs.validation_files else 0.0
    return learn_table(settings, inputs.files, inputs.features, fraction)


def _split(
    settings: FitSettings,
    inputs: _Inputs,
    spec: Any,
    files: list[str],
    side: str,
    *,
    batch_size: int,
    shuffle_buffer: int,
) -> RowSplit:
    """One side of the row-hash split of `files` (every row when validation has its own files)."""
    inner = open_source(
        files,
        settings.target,
        [f.name for f in spec.features],
        batch_size=batch_size,
        shuffle_buffer=shuffle_buffer,
        seed=settings.seed,
        table=table_rows(spec, settings.target, settings, with_key=True),
        sql=query_of(settings),
    )
    fraction = settings.validation_split if not inputs.validation_files else 0.0
    return RowSplit(inner, fraction, side, keyed=True)


def _open_sources(
    settings: FitSettings, inputs: _Inputs, spec: Any
) -> tuple[RowSplit, RowSplit | None]:
    """The training source and the validation one (None without validation).

    Validation reads in batches of at least 4096 rows and unshuffled: only its
    sums matter, and larger batches are fewer Python steps.
    """
    train = _split(
        settings,
        inputs,
        spec,
        inputs.files,
        "train",
        batch_size=settings.batch_size,
        shuffle_buffer=settings.shuffle_buffer,
    )
    validation_batch = max(settings.batch_size, 4096)
    if inputs.validation_files:
        files = inputs.validation_files
    elif settings.validation_split:
        files = inputs.files
    else:
        return train, None
    return train, _split(
        settings, inputs, spec, files, "validation", batch_size=validation_batch, shuffle_buffer=0
    )


def _compiled_model(settings: FitSettings, spec: Any) -> Any:
    """The `--model` network (or the default for the target) compiled with a loss that fits."""
    from batchfit import optimizers
    from batchfit.layers import Normalization

    layers, loss, metrics, outputs = choose_head(settings, spec)
    norm = None
    if settings.normalize:
        mean, variance = spec.standardisation()
        norm = Normalization(mean=mean, variance=variance)
    target_stats = None
    if spec.task == "regression" and settings.normalize_target:
        target_stats = (spec.target_mean, spec.target_variance)
    model = build_model(
        layers,
        len(spec.output_names()),
        outputs,
        feature_norm=norm,
        target_stats=target_stats,
    )
    optimizer: dict[str, Any] = {"class_name": settings.optimizer}
    if settings.learning_rate is not None:
        optimizer["learning_rate"] = settings.learning_rate
    model.compile(optimizer=optimizers.get(optimizer), loss=loss, metrics=metrics)
    return model


def _describe_run(
    settings: FitSettings,
    inputs: _Inputs,
    spec: Any,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """The content of `run.json` while the run trains (status 'running')."""
    import torch

    from batchfit import distributed

    mean, variance = spec.standardisation()
    normalization: dict[str, Any] = {
        "features": (
            {"columns": spec.output_names(), "mean": mean, "variance": variance, "rows": spec.rows}
            if settings.normalize
            else None
        ),
        "target": (
            {"mean": spec.target_mean, "variance": spec.target_variance}
            if spec.task == "regression" and settings.normalize_target
            else None
        ),
    }
    return {
        "format": RUN_FORMAT,
        "status": "running",
        "command": _masked_argv(sys.argv),
        "settings": settings.to_json(),
        "files": inputs.files,
        "sql": settings.sql,
        "db": settings.to_json()["db"],
        "validation_files": inputs.validation_files,
        "validation": _validation_text(settings, inputs.validation_files),
        "features": [f.name for f in spec.features],
        "dropped": spec.dropped,
        "target": settings.target,
        "task": spec.task,
        "classes": spec.classes,
        "normalization": normalization,
        "world_size": distributed.world_size(),
        "versions": {"batchfit": _version(), "torch": torch.__version__},
    }


def _train(
    model: Any,
    settings: FitSettings,
    inputs: _Inputs,
    spec: Any,
    train: RowSplit,
    validation: RowSplit | None,
    run_dir: Path,
    quiet: bool,
) -> tuple[Any, dict[str, Any]]:
    """`model.fit` with the run's callbacks; the history and the row counts over every rank."""
    from batchfit import distributed
    from batchfit.callbacks import BackupAndRestore, CSVLogger

    files, val_files = inputs.files, inputs.validation_files
    estimate = train_rows_estimate(files) if files else None
    if estimate is not None and settings.validation_split and not val_files:
        estimate = round(estimate * (1 - settings.validation_split))
    # this rank's shards: fit leaves a sharded source alone, and the counts stay readable
    train = this_rank(train)
    validation = this_rank(validation) if validation is not None else None
    callbacks: list[Callback] = [
        CSVLogger(run_dir / "history.csv"),
        *_optional_callbacks(settings, run_dir, validation is not None),
        BackupAndRestore(run_dir / "backup", save_freq=settings.backup_every),
    ]
    may_skip = "skip" in (settings.on_bad_rows, settings.on_missing) or bool(spec.skipped)
    if may_skip:
        callbacks.insert(0, SkippedRows(train))
    if not quiet:
        callbacks.insert(0, RowProgress(train, estimate, live=sys.stdout.isatty()))
    processes = distributed.world_size()
    origin = f"{len(files)} file(s)" if files else "the query"
    say(
        f"Training on {origin}, {len(spec.features)} columns -> "
        f"{', '.join(settings.target)}; "
        f"validation: {_validation_text(settings, val_files)}"
        + (f"; {processes} processes" if processes > 1 else "")
    )
    t0 = time.perf_counter()
    history = model.fit(
        train,
        epochs=settings.epochs,
        verbose=0,
        callbacks=callbacks,
        validation_data=validation,
    )
    elapsed = time.perf_counter() - t0
    skipped = {
        key: sum_over_ranks(value) or 0
        for key, value in sorted(getattr(train.inner, "stats", {}).items())
        if key.endswith("_skipped")
    }
    counts = {
        "train_rows_per_epoch": sum_over_ranks(train.rows_last_epoch),
        "skipped_rows_per_epoch": {k: v for k, v in skipped.items() if v},
        "validation_rows": (
            sum_over_ranks(validation.rows_last_epoch) if validation is not None else None
        ),
        "seconds": round(elapsed, 2),
    }
    return history, counts


def _optional_callbacks(settings: FitSettings, run_dir: Path, validating: bool) -> list[Callback]:
    """`--early-stopping`, `--checkpoint-best` and `--tensorboard`, watching val_loss if any."""
    from batchfit import distributed
    from batchfit.callbacks import EarlyStopping, ModelCheckpoint, TensorBoard

    monitor = "val_loss" if validating else "loss"
    chosen: list[Callback] = []
    if settings.early_stopping is not None:
        chosen.append(
            EarlyStopping(
                monitor=monitor, patience=settings.early_stopping, restore_best_weights=True
            )
        )
    if settings.checkpoint_best and distributed.is_main():
        chosen.append(
            ModelCheckpoint(run_dir / "best.safetensors", monitor=monitor, save_best_only=True)
        )
    if settings.tensorboard and distributed.is_main():
        chosen.append(TensorBoard(log_dir=settings.tensorboard))
    return chosen


def _write_results(
    run_dir: Path, run: dict[str, Any], model: Any, history: Any, counts: dict[str, Any]
) -> None:
    """Rank 0: the model, the plot and the finished `run.json`, then where they are."""
    model.save(str(run_dir / "model.safetensors"))
    plot = run_dir / "history.png"
    try:
        history.plot(str(plot))
    except ImportError:
        plot = Path("(not drawn: pip install matplotlib)")
    final = {k: v[-1] for k, v in history.history.items() if v}
    run.update(status="complete", final=final, **counts)
    write_run(run_dir, run)
    say(f"Model:   {run_dir / 'model.safetensors'}")
    say(f"Table:   {run_dir / 'table.json'} (how columns become model inputs)")
    say(f"History: {run_dir / 'history.csv'}")
    say(f"Plot:    {plot}")
    say(f"Run:     {run_dir / 'run.json'}")
    say("Final:   " + " - ".join(f"{k}: {v:.4f}" for k, v in final.items()))
    for key, value in counts.get("skipped_rows_per_epoch", {}).items():
        say(f"Skipped: {value:,} rows per epoch ({key.replace('_', ' ')})")


_PLOT_ROWS = 20_000


def _predictions_plot(run_dir: Path, model: Any, validation: RowSplit | None, spec: Any) -> None:
    """`predictions.png` from the first validation rows (predicted against actual)."""
    if validation is None:
        return
    import numpy as np

    try:
        from batchfit.cli.plots import predictions_plot
    except ImportError:
        return
    truth: list[np.ndarray] = []
    guesses: list[np.ndarray] = []
    rows = 0
    for batch in validation:
        out = np.asarray(model.predict_on_batch(batch[0]))
        y = np.asarray(batch[1])
        if spec.task == "regression":
            truth.append(y.reshape(len(y), -1)[:, 0])
            guesses.append(out.reshape(len(out), -1)[:, 0])
        else:
            truth.append(y.astype(np.int64))
            probs = out.reshape(len(out), -1)
            guesses.append(
                (probs[:, 0] >= 0.5).astype(np.int64) if probs.shape[1] == 1 else probs.argmax(1)
            )
        rows += len(y)
        if rows >= _PLOT_ROWS:
            break
    if not rows:
        return
    path = run_dir / "predictions.png"
    try:
        predictions_plot(
            path,
            np.concatenate(truth)[:_PLOT_ROWS],
            np.concatenate(guesses)[:_PLOT_ROWS],
            kind="regression" if spec.task == "regression" else "classification",
            class_names=spec.classes or None,
            target_name=spec.targets[0],
        )
    except ImportError:
        return
    say(f"Checked: {path} (the first {min(rows, _PLOT_ROWS):,} validation rows)")


def _masked_argv(argv: list[str]) -> list[str]:
    """The command line with any password in a database URI masked (`--db URI`, `--db=URI`)."""
    from batchfit.data._sql_connect import mask_uri

    masked = []
    for arg in argv:
        if "://" in arg:
            flag, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
            arg = flag + sep + mask_uri(value)
        masked.append(arg)
    return masked


def _validation_text(settings: FitSettings, val_files: list[str]) -> str:
    if val_files:
        return f"the {len(val_files)} file(s) of --validation-data"
    if settings.validation_split:
        return (
            f"{settings.validation_split:.0%} of rows, chosen by a hash of each row's values "
            "(deterministic; the same rows every epoch)"
        )
    return "none"


def _version() -> str:
    from batchfit import __version__

    return __version__
