"""Built-in callbacks: checkpoints, schedules, CSV and TensorBoard logs, NaN guard."""

from __future__ import annotations

import csv
import inspect
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from batchfit import distributed
from batchfit._io import atomic_write, refuse_symlink
from batchfit.callbacks._base import Callback
from batchfit.callbacks._monitor import monitor_mode

__all__ = [
    "CSVLogger",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "TensorBoard",
    "TerminateOnNaN",
]


class TerminateOnNaN(Callback):
    """Stops training quietly when the loss becomes NaN or infinite.

    Without it, `fit` raises an error naming the epoch and batch. The batch
    whose loss was not finite never updates the weights.
    """

    handles_nonfinite_loss = True

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss) and self.model is not None:
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. `LambdaCallback(on_epoch_end=fn)`."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        super().__init__()
        valid = {n for n in dir(Callback) if n.startswith("on_")}
        for name, fn in hooks.items():
            if name not in valid:
                raise ValueError(f"unknown hook {name!r}; valid hooks: {', '.join(sorted(valid))}")
            setattr(self, name, fn)


class ModelCheckpoint(Callback):
    """Saves the model (safetensors) every epoch or every N batches, or only the best.

    Args:
        filepath: where to save; may hold `{epoch}` and log keys, e.g.
            `"ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"`.
        monitor: the log key compared with `save_best_only`.
        save_best_only: save only when `monitor` improves.
        save_weights_only: save weights without the architecture and compile settings.
        mode: 'min', 'max' or 'auto'.
        save_freq: 'epoch', or an int number of batches.
        initial_value_threshold: a best value to beat from the start.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.mode = monitor_mode(monitor, mode)
        self.save_freq = save_freq
        self.best = initial_value_threshold
        self._batches = 0
        self._epoch = 0

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _save(self, epoch: int, logs: Mapping[str, float] | None) -> None:
        assert self.model is not None
        logs = dict(logs or {})
        if not distributed.is_main():  # same logs on every rank: rank 0 decides and writes
            value = logs.get(self.monitor)
            if self.save_best_only and value is not None and self._better(value):
                self.best = value
            return
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                return
            best = "None" if self.best is None else f"{self.best:.5f}"
            if not self._better(value):
                if self.verbose:  # Keras' messages, word for word
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
                return
            self.best = value
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {value:.5f}, "
                    f"saving model to {path}"
                )
        elif self.verbose:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        if isinstance(self.save_freq, int):
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._save(self._epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "batches": self._batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self._batches = int(state["batches"])


class LearningRateScheduler(Callback):
    """Sets the learning rate from a schedule, per epoch (Keras) or per batch.

    Args:
        schedule: `fn(epoch, lr) -> lr` (or `fn(epoch)`); with `per="batch"` it
            receives the optimizer step instead of the epoch. A
            `torch.optim.lr_scheduler.LRScheduler` is stepped instead.
        per: 'epoch' or 'batch'.
    """

    def __init__(self, schedule: Any, verbose: int = 0, per: str = "epoch") -> None:
        super().__init__()
        if per not in ("epoch", "batch"):
            raise ValueError(f"per must be 'epoch' or 'batch', got {per!r}")
        self.schedule = schedule
        self.verbose = verbose
        self.per = per
        self._torch = isinstance(schedule, torch.optim.lr_scheduler.LRScheduler)
        self._takes_lr = not self._torch and _positional_arity(schedule) >= 2

    def _apply(self, index: int) -> None:
        assert self.model is not None and self.model.optimizer is not None
        optimizer = self.model.optimizer
        if self._takes_lr:
            lr = self.schedule(index, optimizer.learning_rate)
        else:
            lr = self.schedule(index)
        if not isinstance(lr, (float, int)) or not math.isfinite(lr):
            raise ValueError(f"the schedule must return a finite float, got {lr!r}")
        optimizer.learning_rate = float(lr)
        if self.verbose:
            print(
                f"{self.per.capitalize()} {index + 1}: LearningRateScheduler setting rate to {lr}."
            )

    def _sync_from_torch(self) -> None:
        assert self.model is not None and self.model.optimizer is not None
        opt = self.model.optimizer
        if opt.torch_optimizer is not None:
            opt._lr = float(opt.torch_optimizer.param_groups[0]["lr"])

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.per == "epoch" and not self._torch:
            self._apply(epoch)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.per == "epoch" and self._torch:
            self.schedule.step()
            self._sync_from_torch()
        if isinstance(logs, dict) and self.model is not None and self.model.optimizer is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.per == "batch" and not self._torch:
            assert self.model is not None and self.model.optimizer is not None
            self._apply(self.model.optimizer.iterations)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.per == "batch" and self._torch:
            self.schedule.step()
            self._sync_from_torch()

    def state_dict(self) -> dict[str, Any]:
        return {"torch": self.schedule.state_dict()} if self._torch else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._torch and "torch" in state:
            self.schedule.load_state_dict(state["torch"])


def _positional_arity(fn: Any) -> int:
    """How many positional arguments `fn` takes (Keras schedules take 1 or 2)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


class CSVLogger(Callback):
    """Writes one CSV row per epoch (epoch, then the logs in sorted order)."""

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ):
        super().__init__()
        self.filename = Path(filename)
        self.separator = separator
        self.append = append
        self._keys: list[str] | None = None
        self._rows = 0
        self._restored = False

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not distributed.is_main():
            return
        refuse_symlink(self.filename)  # NOTE [ Safe writes ] in batchfit/_io.py
        if self._restored:
            # resuming: drop rows written after the backup we resume from
            lines = (
                self.filename.read_text().splitlines(keepends=True)
                if self.filename.exists()
                else []
            )
            keep = lines[: self._rows + 1] if self._rows else []
            atomic_write(self.filename, "".join(keep).encode())
        elif not self.append:
            atomic_write(self.filename, b"")
        elif self.filename.exists():
            with self.filename.open() as f:
                rows = list(csv.reader(f, delimiter=self.separator))
            self._keys = rows[0][1:] if rows else None
            self._rows = max(len(rows) - 1, 0)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        logs = dict(logs or {})
        if self._keys is None:
            self._keys = sorted(logs)
        if not distributed.is_main():
            self._rows += 1
            return
        # O_NOFOLLOW: a symlink planted since the run began is refused, not written through
        fd = os.open(self.filename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if self._rows == 0 and f.tell() == 0:
                writer.writerow(["epoch", *self._keys])
            writer.writerow([epoch, *(logs.get(k, "NA") for k in self._keys)])
            f.flush()
        self._rows += 1

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self._rows, "keys": self._keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rows = int(state["rows"])
        self._keys = state["keys"]
        self._restored = True


class TensorBoard(Callback):
    """Logs losses, metrics, the learning rate and weight histograms for TensorBoard.

    Written with `torch.utils.tensorboard` under Keras' names: `epoch_<key>` per epoch
    in `train/` and `validation/`, `batch_<key>` every `update_freq` batches (at the
    optimizer's step), `epoch_learning_rate`, and with `histogram_freq=n` a histogram of
    every weight every n epochs.

    Args:
        log_dir: where event files go (`train/` and `validation/` below it).
        histogram_freq: epochs between weight histograms (0: none).
        update_freq: 'epoch', 'batch', or an int number of batches between writes.
        write_graph, write_images, write_steps_per_second, profile_batch,
        embeddings_freq, embeddings_metadata: Keras' other arguments, accepted; the
            graph, images, profiler and embeddings are not written.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
    ) -> None:
        super().__init__()
        if update_freq not in ("epoch", "batch") and not (
            isinstance(update_freq, int) and update_freq > 0
        ):
            raise ValueError(
                f"update_freq must be 'epoch', 'batch' or an int > 0, got {update_freq!r}"
            )
        if not isinstance(histogram_freq, int) or histogram_freq < 0:
            raise ValueError(f"histogram_freq must be an int >= 0, got {histogram_freq!r}")
        self.log_dir = Path(log_dir)
        self.histogram_freq = histogram_freq
        self.update_freq = 1 if update_freq == "batch" else update_freq
        del write_graph, write_images, write_steps_per_second, profile_batch
        del embeddings_freq, embeddings_metadata
        self._writers: dict[str, Any] = {}
        self._step = 0

    def _writer(self, which: str) -> Any:
        if not distributed.is_main():
            return _NullWriter()
        if which not in self._writers:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # pragma: no cover
                raise ImportError("TensorBoard logging needs: pip install tensorboard") from e
            self._writers[which] = SummaryWriter(str(self.log_dir / which))
        return self._writers[which]

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self._step += 1
        if isinstance(self.update_freq, int) and self._step % self.update_freq == 0:
            for key, value in (logs or {}).items():
                self._writer("train").add_scalar(f"batch_{key}", value, self._step)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        logs = dict(logs or {})
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(optimizer.learning_rate)
        for key, value in logs.items():
            which, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writer(which).add_scalar(f"epoch_{name}", value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0 and self.model is not None:
            writer = self._writer("train")
            module = self.model.module
            for name, weight in [*module.named_parameters(), *module.named_buffers()]:
                if weight.is_floating_point():
                    writer.add_histogram(name, weight.detach().float().cpu(), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def state_dict(self) -> dict[str, Any]:
        return {"step": self._step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._step = int(state["step"])


class _NullWriter:
    """What ranks other than 0 write TensorBoard events to."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None: ...

    def add_histogram(self, *args: Any, **kwargs: Any) -> None: ...
