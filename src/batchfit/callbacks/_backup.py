"""BackupAndRestore: survive a crash (even `kill -9`) and resume at the same batch."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from batchfit import distributed
from batchfit._engine.state import read_state, write_state
from batchfit.callbacks._base import Callback

__all__ = ["BackupAndRestore"]


class _Capturable(Protocol):
    def capture(self) -> dict[str, Any]: ...


class BackupAndRestore(Callback):
    """Backs the whole training state up, and resumes from it when `fit` runs again.

    The backup holds what NOTE [ Exact resume ] in `batchfit._engine.state`
    lists; resuming after a crash at any point ends with the weights an
    uninterrupted run would have (bit for bit on CPU). `fit` takes the backup
    after every other callback has run for that batch or epoch.

    Args:
        backup_dir: folder for `backup.safetensors` (and `backup.safetensors.prev`).
        save_freq: 'epoch', or an int: back up every that many batches.
        delete_checkpoint: remove the backup when training finishes normally.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._batches = 0

    @property
    def path(self) -> Path:
        """This rank's file: each rank saves its own data position and RNG states."""
        return self.backup_dir / backup_name()

    def load(self) -> dict[str, Any] | None:
        """The newest readable backup, the previous one if that is damaged, or None."""
        return load_backup(self.backup_dir)

    def after_batch(self, fit_state: _Capturable) -> None:
        self._batches += 1
        if isinstance(self.save_freq, int) and self._batches % self.save_freq == 0:
            write_state(fit_state.capture(), self.path)

    def after_epoch(self, fit_state: _Capturable) -> None:
        if self.save_freq == "epoch":
            write_state(fit_state.capture(), self.path)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if not self.delete_checkpoint:
            return
        # every rank meets here, whatever its disk shows (nodes may not share one),
        # so no rank deletes while another still reads
        distributed.barrier()
        for path in (self.path, self.path.with_name(self.path.name + ".prev")):
            path.unlink(missing_ok=True)
        if distributed.is_main():
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # not empty: rank 0's files on a shared disk
                self.backup_dir.rmdir()

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self._batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._batches = int(state["batches"])


def backup_name() -> str:
    if distributed.world_size() > 1:
        return f"backup-rank{distributed.rank()}.safetensors"
    return "backup.safetensors"


def load_backup(where: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Read the backup in folder (or file) `where`, falling back to the previous one."""
    where = Path(where)
    path = where if where.is_file() else where / backup_name()
    previous = path.with_name(path.name + ".prev")
    if not path.exists() and not previous.exists():
        return None
    errors = []
    for candidate in (path, previous):
        if candidate.exists():
            try:
                return read_state(candidate)
            except ValueError as e:
                errors.append(str(e))
    raise ValueError("no usable backup: " + "; ".join(errors))
