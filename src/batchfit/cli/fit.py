"""What `batchfit fit` does (the parser lives in `batchfit.cli`; `evaluate` and
`predict` in `batchfit.cli.use`).

A run directory holds:
    model.safetensors   the trained model (architecture, weights, compile settings)
    run.json            exact settings, files, feature columns, normalisation
                        statistics, status and final metrics
    history.csv         one row per epoch (CSVLogger)
    history.png         loss and metrics per epoch (History.plot)
    backup/             BackupAndRestore state while a run is unfinished

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

import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchfit.callbacks import Callback
from batchfit.cli.data import (
    expand_files,
    header_of,
    open_source,
    resolve_features,
    train_rows_estimate,
)
from batchfit.cli.errors import CliError
from batchfit.cli.model_spec import build_model
from batchfit.cli.progress import RowProgress
from batchfit.cli.settings import FitSettings, differences
from batchfit.cli.split import RowSplit, TargetTap, this_rank
from batchfit.distributed import agree, on_main, say, sum_over_ranks

__all__ = ["fit_command", "read_run"]

RUN_FORMAT = 1
_ADAPT_BATCH = 65_536  # rows per batch of the statistics pass (fewer Python steps)


# -- run.json ---------------------------------------------------------------------------------
def read_run(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        raise CliError(f"{run_dir} is not a batchfit run directory: no run.json")
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CliError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise CliError(f"{path} is not a batchfit run description (format {RUN_FORMAT})")
    return run


def write_run(run_dir: Path, run: Mapping[str, Any]) -> None:
    """Write run.json atomically (temp file, rename); under torchrun, rank 0 writes."""
    from batchfit import distributed

    if not distributed.is_main():
        return
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(run, indent=2) + "\n")
    os.replace(tmp, run_dir / "run.json")


# -- fit --------------------------------------------------------------------------------------
def _start_or_resume(
    run_dir: Path, settings: FitSettings, resume: bool, overwrite: bool
) -> tuple[str, dict[str, Any] | None]:
    """('fresh' | 'resume' | 'done', the saved run when resuming); rank 0 decides.

    Refuses to clobber a different or finished run.
    """
    mode = _decide(run_dir, settings, resume, overwrite)
    return mode, read_run(run_dir) if mode == "resume" else None


def _decide(run_dir: Path, settings: FitSettings, resume: bool, overwrite: bool) -> str:
    from batchfit import distributed

    previous = run_dir / "run.json"
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
        return "fresh"
    if not previous.is_file():
        if resume:
            raise CliError(f"--resume: nothing to resume in {run_dir} (no run.json)")
        if run_dir.exists() and any(run_dir.iterdir()):
            raise CliError(
                f"--out {run_dir} exists and is not a batchfit run; choose another --out"
            )
        return "fresh"
    old = read_run(run_dir)
    # backup.safetensors from one process, backup-rank{r}.safetensors from several
    has_backup = any((run_dir / "backup").glob("backup*.safetensors*"))
    if old.get("status") != "complete" and not has_backup:
        if resume:
            say(f"No backup in {run_dir / 'backup'} yet: starting the run from the beginning")
        shutil.rmtree(run_dir)  # it failed or was stopped before its first backup
        return "fresh"
    changed = differences(old.get("settings", {}), settings)
    if changed:
        raise CliError(
            f"--out {run_dir} holds a run with other settings ({'; '.join(changed)}); "
            "repeat its settings to resume, or pass --overwrite to start again"
        )
    if old.get("status") == "complete":
        if resume or old["settings"].get("epochs") == settings.epochs:
            return "done"
        raise CliError(
            f"--out {run_dir} holds a finished run; pass --overwrite to train it again "
            "or choose another --out"
        )
    # each process backed up its own data position: resume with as many processes
    processes, now = int(old.get("world_size", 1)), distributed.world_size()
    if processes != now:
        raise CliError(
            f"--out {run_dir} holds a run started with {_processes(processes)}; resume it "
            f"with {_processes(processes)} (this is {_processes(now)}), or pass --overwrite"
        )
    return "resume"


def _processes(n: int) -> str:
    return "1 process" if n == 1 else f"{n} processes (torchrun --nproc_per_node={n})"


def _adapt(norm: Any, train_stats_source: RowSplit, want_target: bool) -> tuple[Any, Any]:
    """One streamed pass: feature statistics into `norm`, target moments on the side.

    Under torchrun each rank reads its shard and the sums are merged in rank
    order (`Normalization.adapt` does this for the features), so every rank
    ends with the same statistics.
    """
    from batchfit import distributed
    from batchfit.transforms._stats import merge_ranks

    target: dict[str, Any] = {}
    tap = TargetTap(train_stats_source, target)
    if norm is not None:
        norm.adapt(tap)
    elif want_target:
        mine = (
            tap.shard(distributed.rank(), distributed.world_size())
            if distributed.is_distributed()
            else tap
        )
        for _ in mine:
            pass
    if not want_target:
        return None, None
    moments = merge_ranks(target.get("y")) if distributed.is_distributed() else target.get("y")
    if moments is None or moments.count == 0:
        raise CliError("the training side of the data has no rows")
    return moments.mean.tolist(), moments.variance.tolist()


def _check_files(settings: FitSettings) -> tuple[list[str], list[str], list[str]]:
    """The data files, the feature columns and the validation files, checked."""
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
    return files, features, val_files


def fit_command(settings: FitSettings, *, resume: bool, overwrite: bool, quiet: bool) -> int:
    """Train from files as `settings` say, writing the run directory.

    Under torchrun, see NOTE [ The command under torchrun ].
    """
    import torch

    from batchfit import distributed, optimizers
    from batchfit.callbacks import BackupAndRestore, CSVLogger
    from batchfit.layers import Normalization

    run_dir = Path(settings.out or "")
    mode, previous = on_main(lambda: _start_or_resume(run_dir, settings, resume, overwrite))
    if mode == "done":
        say(f"{run_dir} already finished {settings.epochs} epochs; nothing to do")
        return 0
    files, features, val_files = agree(lambda: _check_files(settings))

    def split(batch_size: int, side: str, shuffle_buffer: int, files_: list[str]) -> RowSplit:
        inner = open_source(
            files_,
            settings.target,
            features,
            batch_size=batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=settings.seed,
        )
        fraction = settings.validation_split if not val_files else 0.0
        return RowSplit(inner, fraction, side)

    def sources() -> tuple[RowSplit, RowSplit | None]:
        train = split(settings.batch_size, "train", settings.shuffle_buffer, files)
        if val_files:
            return train, split(max(settings.batch_size, 4096), "validation", 0, val_files)
        if settings.validation_split:
            return train, split(max(settings.batch_size, 4096), "validation", 0, files)
        return train, None

    train, validation = agree(sources)
    on_main(lambda: run_dir.mkdir(parents=True, exist_ok=True))
    torch.manual_seed(settings.seed)
    norm = Normalization() if settings.normalize else None
    target_stats = None
    if previous is not None:
        saved = previous.get("normalization") or {}
        target_stats = saved.get("target")
        say(f"Resuming the run in {run_dir} from its backup")
    elif settings.normalize or settings.normalize_target:
        say("Computing normalisation statistics (one streamed pass over the training rows) ...")
        t0 = time.perf_counter()
        stats_source = split(_ADAPT_BATCH, "train", 0, files)
        mean, variance = _adapt(norm, stats_source, settings.normalize_target)
        target_stats = {"mean": mean, "variance": variance} if mean is not None else None
        say(f"  done in {time.perf_counter() - t0:.1f}s")

    def compiled() -> Any:
        model = build_model(
            settings.model,
            len(features),
            len(settings.target),
            feature_norm=norm,
            target_stats=(target_stats["mean"], target_stats["variance"]) if target_stats else None,
        )
        optimizer: dict[str, Any] = {"class_name": settings.optimizer}
        if settings.learning_rate is not None:
            optimizer["learning_rate"] = settings.learning_rate
        model.compile(
            optimizer=optimizers.get(optimizer), loss=settings.loss, metrics=settings.metrics
        )
        return model

    model = agree(compiled)

    normalization: dict[str, Any] = {"target": target_stats}
    if norm is not None and previous is None:
        normalization["features"] = {
            "columns": features,
            "mean": norm.mean.reshape(-1).tolist(),
            "variance": norm.variance.reshape(-1).tolist(),
            "rows": int(norm.count),
        }
    elif previous is not None:
        normalization = previous.get("normalization") or normalization
    run: dict[str, Any] = {
        "format": RUN_FORMAT,
        "status": "running",
        "command": sys.argv,
        "settings": settings.to_json(),
        "files": files,
        "validation_files": val_files,
        "validation": _validation_text(settings, val_files),
        "features": features,
        "target": settings.target,
        "normalization": normalization,
        "world_size": distributed.world_size(),
        "versions": {"batchfit": _version(), "torch": torch.__version__},
    }
    write_run(run_dir, run)

    estimate = train_rows_estimate(files)
    if estimate is not None and settings.validation_split and not val_files:
        estimate = round(estimate * (1 - settings.validation_split))
    # this rank's shards: fit leaves a sharded source alone, and the counts stay readable
    train = this_rank(train)
    validation = this_rank(validation) if validation is not None else None
    callbacks: list[Callback] = [
        CSVLogger(run_dir / "history.csv"),
        BackupAndRestore(run_dir / "backup", save_freq=settings.backup_every),
    ]
    if not quiet:
        callbacks.insert(0, RowProgress(train, estimate, live=sys.stdout.isatty()))
    processes = distributed.world_size()
    say(
        f"Training on {len(files)} file(s), {len(features)} features -> "
        f"{', '.join(settings.target)}; "
        f"validation: {run['validation']}" + (f"; {processes} processes" if processes > 1 else "")
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
    train_rows = sum_over_ranks(train.rows_last_epoch)
    validation_rows = sum_over_ranks(validation.rows_last_epoch) if validation is not None else None
    if not distributed.is_main():
        return 0  # rank 0 writes the model, the plot and run.json
    model.save(str(run_dir / "model.safetensors"))
    plot = run_dir / "history.png"
    try:
        history.plot(str(plot))
    except ImportError:
        plot = Path("(not drawn: pip install matplotlib)")
    final = {k: v[-1] for k, v in history.history.items() if v}
    run.update(
        status="complete",
        final=final,
        train_rows_per_epoch=train_rows,
        validation_rows=validation_rows,
        seconds=round(elapsed, 2),
    )
    write_run(run_dir, run)
    say(f"Model:   {run_dir / 'model.safetensors'}")
    say(f"History: {run_dir / 'history.csv'}")
    say(f"Plot:    {plot}")
    say(f"Run:     {run_dir / 'run.json'}")
    say("Final:   " + " - ".join(f"{k}: {v:.4f}" for k, v in final.items()))
    return 0


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
