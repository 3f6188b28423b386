"""Callbacks that watch a metric: EarlyStopping, ReduceLROnPlateau (Keras 3 rules)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from batchfit.callbacks._base import Callback

__all__ = ["EarlyStopping", "ReduceLROnPlateau", "monitor_mode"]

_MAX_HINTS = ("acc", "auc", "precision", "recall")


def monitor_mode(monitor: str, mode: str) -> str:
    """'min' or 'max' for `monitor`; 'auto' maximises accuracy-like metrics."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if "loss" in name or "error" in name:
        return "min"
    return "max" if any(h in name for h in _MAX_HINTS) else "min"


class _Monitor(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        super().__init__()
        self.monitor = monitor
        self.mode = monitor_mode(monitor, mode)
        self.min_delta = abs(float(min_delta))

    def _improved(self, current: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "max":
            return current - self.min_delta > reference
        return current + self.min_delta < reference

    def _current(self, logs: Mapping[str, float] | None) -> float | None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__}: metric {self.monitor!r} is not in the logs "
                f"(available: {', '.join(sorted(logs or {}))})",
                stacklevel=3,
            )
        return value


class EarlyStopping(_Monitor):
    """Stops training when `monitor` stops improving (Keras semantics).

    Args:
        monitor: the log key to watch, e.g. 'val_loss'.
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement before stopping.
        mode: 'min', 'max' or 'auto' (from the name).
        baseline: training stops unless the monitor beats this within `patience`.
        restore_best_weights: end training with the best epoch's weights.
        start_from_epoch: epochs of warm-up before improvement is tracked.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not getattr(self, "_restored", False):
            self._reset()
        self._restored = False

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        current = self._current(logs)
        if current is None or self.model is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None and self.model is not None:
            if self.verbose:
                best = self.best_epoch + 1
                print(f"Restoring model weights from the end of the best epoch: {best}.")
            self.model.set_weights(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = state["best"]
        self.best_epoch = int(state["best_epoch"])
        weights = state.get("best_weights")
        self.best_weights = None if weights is None else [np.asarray(w) for w in weights]
        self._restored = True


class ReduceLROnPlateau(_Monitor):
    """Multiplies the learning rate by `factor` when `monitor` plateaus (Keras semantics)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got {factor}")
        super().__init__(monitor, mode, min_delta)
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not getattr(self, "_restored", False):  # a resumed run keeps its counters
            self.best, self.wait, self.cooldown_counter = None, 0, 0
        self._restored = False

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.model is None or self.model.optimizer is None:
            return
        optimizer = self.model.optimizer
        if isinstance(logs, dict):
            logs["learning_rate"] = optimizer.learning_rate
        current = self._current(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = optimizer.learning_rate
                if old > self.min_lr:
                    optimizer.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose:
                        print(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                            f"{optimizer.learning_rate}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self._restored = True
