"""The run directory of `batchfit fit`: its `run.json`, and whether to start, resume or stop.

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
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchfit._io import atomic_write
from batchfit.cli.errors import CliError
from batchfit.cli.settings import FitSettings, differences
from batchfit.distributed import say

__all__ = ["RUN_FORMAT", "read_run", "start_or_resume", "write_run"]

RUN_FORMAT = 1


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run description in `run_dir/run.json`, checked to be one of ours."""
    path = run_dir / "run.json"
    if not path.is_file():
        raise CliError(f"{run_dir} is not a batchfit run directory: no run.json")
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CliError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise CliError(f"{path} is not a batchfit run description (format {RUN_FORMAT})")
    for key, kind, what in _RUN_KEYS:
        if key in run and not kind(run[key]):
            raise CliError(f"{path}: {key!r} must be {what}, got {run[key]!r:.80}")
    for key in ("settings", "features", "target"):
        if key not in run:
            raise CliError(f"{path}: the key {key!r} is missing (a damaged run description)")
    return run


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: the keys of run.json the commands read, with the kind each must have
_RUN_KEYS = (
    ("settings", lambda v: isinstance(v, dict), "a table of settings"),
    ("features", _names, "a list of column names"),
    ("target", _names, "a list of column names"),
    ("status", lambda v: isinstance(v, str), "a string"),
    ("world_size", lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a count"),
)


def write_run(run_dir: Path, run: Mapping[str, Any]) -> None:
    """Write run.json atomically (NOTE [ Safe writes ] in `_io.py`); under torchrun, rank 0."""
    from batchfit import distributed

    if not distributed.is_main():
        return
    atomic_write(run_dir / "run.json", (json.dumps(run, indent=2) + "\n").encode())


def start_or_resume(
    run_dir: Path, settings: FitSettings, resume: bool, overwrite: bool
) -> tuple[str, dict[str, Any] | None]:
    """('fresh' | 'resume' | 'done', the saved run when resuming); rank 0 decides.

    Refuses to clobber a different or finished run.
    """
    mode = _decide(run_dir, settings, resume, overwrite)
    return mode, read_run(run_dir) if mode == "resume" else None


def _decide(run_dir: Path, settings: FitSettings, resume: bool, overwrite: bool) -> str:
    """The mode of `start_or_resume`, deleting a run that failed before its first backup."""
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
