"""BackupAndRestore: survive a crash (even `kill -9`) and resume at the same batch."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from batchfit import distributed
from batchfit._engine.checkpoint import Checkpointer
from batchfit.callbacks._base import Callback

__all__ = ["BackupAndRestore"]


class BackupAndRestore(Callback):
    """Backs the whole training state up, and resumes from it when `fit` runs again.

    The backup holds what NOTE [ Exact resume ] in `batchfit._engine.checkpoint`
    lists; resuming after a crash at any point ends with the weights an
    uninterrupted run would have (bit for bit on CPU). `fit` takes the backup
    after every other callback has run for that batch or epoch.

    Args:
        backup_dir: folder for `backup.safetensors` (and `backup.safetensors.prev`).
        save_freq: 'epoch', or an int: back up every that many batches.
        delete_checkpoint: remove the backup when training finishes normally.
        check_data: refuse to resume when the data changed since the backup (a
            file grew, was rewritten or replaced; arrays hold other values): the
            saved position would point at other rows. False resumes anyway.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
        check_data: bool = True,
    ) -> None:
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self.check_data = bool(check_data)
        self._batches = 0

    saves_training_state = True

    @property
    def path(self) -> Path:
        """This rank's file: each rank saves its own data position and RNG states."""
        return self._checkpointer().path

    def _checkpointer(self) -> Checkpointer:
        # made when used: the rank (and so the file name) is known only under torchrun
        return Checkpointer(self.backup_dir)

    def restore_point(self) -> dict[str, Any] | None:
        """The newest readable backup, the previous one if that is damaged, or None."""
        return self._checkpointer().load()

    def after_batch(self, state: Callable[[], dict[str, Any]]) -> None:
        self._batches += 1
        if isinstance(self.save_freq, int) and self._batches % self.save_freq == 0:
            self._checkpointer().save(state())

    def after_epoch(self, state: Callable[[], dict[str, Any]]) -> None:
        if self.save_freq == "epoch":
            self._checkpointer().save(state())

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if not self.delete_checkpoint:
            return
        # every rank meets here, whatever its disk shows (nodes may not share one),
        # so no rank deletes while another still reads
        distributed.barrier()
        self._checkpointer().remove()
        if distributed.is_main():
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # not empty: rank 0's files on a shared disk
                self.backup_dir.rmdir()

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self._batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._batches = int(state["batches"])
