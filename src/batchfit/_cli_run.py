"""What `batchfit fit` does (the parser lives in `batchfit.cli`; `evaluate` and
`predict` in `_cli_use`).

A run directory holds:
    model.safetensors   the trained model (architecture, weights, compile settings)
    run.json            exact settings, files, feature columns, normalisation
                        statistics, status and final metrics
    history.csv         one row per epoch (CSVLogger)
    history.png         loss and metrics per epoch (History.plot)
    backup/             BackupAndRestore state while a run is unfinished
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from batchfit._cli_data import (
    CliError,
    RowSplit,
    build_model,
    expand_files,
    header_of,
    open_source,
    resolve_features,
    train_rows_estimate,
)
from batchfit._cli_settings import FitSettings, differences
from batchfit.callbacks import Callback

__all__ = ["fit_command", "read_run"]

RUN_FORMAT = 1
_ADAPT_BATCH = 65_536  # rows per batch of the statistics pass (fewer Python steps)


def _say(message: str) -> None:
    print(message, flush=True)


class RowProgress(Callback):
    """Progress per epoch in rows: a live bar (rows/s, loss, ETA) on a terminal, lines otherwise.

    Rows come from the training `RowSplit`, which counts what it yields; the
    total is estimated from the files until the first epoch has counted it.
    Metrics are read only when the display refreshes (a host sync each time).
    """

    def __init__(
        self, train: RowSplit, rows_estimate: int | None, live: bool, interval: float = 0.5
    ) -> None:
        super().__init__()
        self.train, self.rows_estimate, self.live, self.interval = (
            train,
            rows_estimate,
            live,
            interval,
        )
        self._bar: Any = None
        self._start = 0.0
        self._next = 0.0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._start = time.perf_counter()
        self._next = self._start + (self.interval if self.live else 30.0)
        total = self.train.rows_last_epoch or self.rows_estimate
        if self.live:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                unit="rows",
                unit_scale=True,
                ncols=min(shutil.get_terminal_size((100, 24)).columns or 100, 120),
                file=sys.stdout,
            )

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + (self.interval if self.live else 30.0)
        rows = self.train.rows_this_epoch
        shown = {k: f"{v:.4g}" for k, v in (logs or {}).items()}  # host sync: reads metrics
        if self._bar is not None:
            self._bar.update(rows - self._bar.n)
            self._bar.set_postfix(shown, refresh=True)
        else:
            rate = rows / max(now - self._start, 1e-9)
            _say(
                f"  {rows:,} rows, {rate:,.0f} rows/s, "
                + ", ".join(f"{k} {v}" for k, v in shown.items())
            )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        elapsed = time.perf_counter() - self._start
        rows = self.train.rows_this_epoch
        if self._bar is not None:
            self._bar.update(rows - self._bar.n)
            self._bar.close()
            self._bar = None
        values = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items())
        _say(
            f"Epoch {epoch + 1}/{self.params.get('epochs')}: {rows:,} rows in {elapsed:.1f}s "
            f"({rows / max(elapsed, 1e-9):,.0f} rows/s) - {values}"
        )

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
def _start_or_resume(run_dir: Path, settings: FitSettings, resume: bool, overwrite: bool) -> str:
    """'fresh', 'resume' or 'done', refusing to clobber a different or finished run."""
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
    has_backup = any((run_dir / "backup").glob("backup.safetensors*"))
    if old.get("status") != "complete" and not has_backup:
        if resume:
            _say(f"No backup in {run_dir / 'backup'} yet: starting the run from the beginning")
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
    return "resume"


def _adapt(norm: Any, train_stats_source: RowSplit, want_target: bool) -> tuple[Any, Any]:
    """One streamed pass: feature statistics into `norm`, target moments on the side."""
    from batchfit.transforms import Moments

    target: dict[str, Moments] = {}

    def features() -> Iterator[tuple[np.ndarray]]:
        for batch in train_stats_source:
            if want_target:
                y = np.asarray(batch[1], np.float64).reshape(len(batch[1]), -1)
                target.setdefault("y", Moments.empty(y.shape[1])).update(y)
            yield (batch[0],)

    if norm is not None:
        norm.adapt(features())
    elif want_target:
        for _ in features():
            pass
    if not want_target:
        return None, None
    moments = target["y"]
    return moments.mean.tolist(), moments.variance.tolist()


def fit_command(settings: FitSettings, *, resume: bool, overwrite: bool, quiet: bool) -> int:
    """Train from files as `settings` say, writing the run directory."""
    import torch

    from batchfit import optimizers
    from batchfit.callbacks import BackupAndRestore, CSVLogger
    from batchfit.layers import Normalization

    run_dir = Path(settings.out or "")
    mode = _start_or_resume(run_dir, settings, resume, overwrite)
    if mode == "done":
        _say(f"{run_dir} already finished {settings.epochs} epochs; nothing to do")
        return 0
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

    train = split(settings.batch_size, "train", settings.shuffle_buffer, files)
    validation: RowSplit | None = None
    if val_files:
        validation = split(max(settings.batch_size, 4096), "validation", 0, val_files)
    elif settings.validation_split:
        validation = split(max(settings.batch_size, 4096), "validation", 0, files)

    run_dir.mkdir(parents=True, exist_ok=True)
    previous = read_run(run_dir) if mode == "resume" else None
    torch.manual_seed(settings.seed)
    norm = Normalization() if settings.normalize else None
    target_stats = None
    if previous is not None:
        saved = previous.get("normalization") or {}
        target_stats = saved.get("target")
        _say(f"Resuming the run in {run_dir} from its backup")
    elif settings.normalize or settings.normalize_target:
        _say("Computing normalisation statistics (one streamed pass over the training rows) ...")
        t0 = time.perf_counter()
        stats_source = split(_ADAPT_BATCH, "train", 0, files)
        mean, variance = _adapt(norm, stats_source, settings.normalize_target)
        target_stats = {"mean": mean, "variance": variance} if mean is not None else None
        _say(f"  done in {time.perf_counter() - t0:.1f}s")
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
    model.compile(optimizer=optimizers.get(optimizer), loss=settings.loss, metrics=settings.metrics)

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
        "versions": {"batchfit": _version(), "torch": torch.__version__},
    }
    write_run(run_dir, run)

    estimate = train_rows_estimate(files)
    if estimate is not None and settings.validation_split and not val_files:
        estimate = round(estimate * (1 - settings.validation_split))
    callbacks: list[Callback] = [
        CSVLogger(run_dir / "history.csv"),
        BackupAndRestore(run_dir / "backup", save_freq=settings.backup_every),
    ]
    if not quiet:
        callbacks.insert(0, RowProgress(train, estimate, live=sys.stdout.isatty()))
    _say(
        f"Training on {len(files)} file(s), {len(features)} features -> "
        f"{', '.join(settings.target)}; "
        f"validation: {run['validation']}"
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
        train_rows_per_epoch=train.rows_last_epoch,
        validation_rows=validation.rows_last_epoch if validation is not None else None,
        seconds=round(elapsed, 2),
    )
    write_run(run_dir, run)
    _say(f"Model:   {run_dir / 'model.safetensors'}")
    _say(f"History: {run_dir / 'history.csv'}")
    _say(f"Plot:    {plot}")
    _say(f"Run:     {run_dir / 'run.json'}")
    _say("Final:   " + " - ".join(f"{k}: {v:.4f}" for k, v in final.items()))
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
