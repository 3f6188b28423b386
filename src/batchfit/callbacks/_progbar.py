"""The progress bar: Keras' verbose=1 (a bar per epoch) and verbose=2 (a line per epoch).

`evaluate` and `predict` get the same: a bar over their batches, or one line at
the end. Inside `fit` the validation pass draws nothing of its own, as in Keras:
its values end up on the epoch's line.

Metrics are read only when the bar redraws (at most every `interval` seconds),
so on a GPU the bar costs one host sync per redraw, never one per batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from tqdm import tqdm

from batchfit.callbacks._base import Callback

__all__ = ["ProgbarLogger"]


def _fmt(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """Prints progress: a live bar (verbose=1) or one line per epoch (verbose=2)."""

    def __init__(self, verbose: int = 1, interval: float = 0.2, file: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.interval = interval
        self.file = file
        self._bar: tqdm | None = None
        self._next_refresh = 0.0
        self._seen = 0
        self._epoch_start = 0.0
        self._in_fit = False

    def _out(self) -> Any:
        return self.file if self.file is not None else sys.stdout

    def _start(self, desc: str) -> None:
        self._epoch_start = time.perf_counter()
        self._seen = 0
        if self.verbose == 1:
            self._bar = tqdm(
                total=self.params.get("steps"),
                desc=desc,
                unit="batch",
                file=self._out(),
                dynamic_ncols=True,
                leave=True,
                mininterval=self.interval,
            )
            self._next_refresh = self._epoch_start + self.interval

    def _finish(self, head: str, logs: Mapping[str, float]) -> None:
        elapsed = time.perf_counter() - self._epoch_start
        if self._bar is not None:
            self._bar.update(self._seen - self._bar.n)
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            per_step = elapsed / max(self._seen, 1) * 1e3
            line = f"{head}{elapsed:.0f}s {per_step:.1f}ms/step"
            print(f"{line} - {_fmt(logs)}" if logs else line, file=self._out(), flush=True)

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._in_fit = True

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._start(f"Epoch {epoch + 1}/{self.params.get('epochs', 1)}")

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self._advance(batch, logs)

    def on_test_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not self._in_fit:
            self._start("Evaluate")

    def on_test_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        if not self._in_fit:
            self._advance(batch, logs)

    def on_test_end(self, logs: Mapping[str, float] | None = None) -> None:
        if not self._in_fit:
            self._finish(f"{self._seen}/{self._seen} - ", dict(logs or {}))

    def on_predict_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._start("Predict")

    def on_predict_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._advance(batch, None)

    def on_predict_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._finish(f"{self._seen}/{self._seen} - ", {})

    def _advance(self, batch: int, logs: Mapping[str, float] | None) -> None:
        self._seen = batch + 1
        if self._bar is None:
            return
        now = time.perf_counter()
        if now >= self._next_refresh:
            self._next_refresh = now + self.interval
            self._bar.update(self._seen - self._bar.n)
            if logs is not None:  # host sync here: reads the metrics
                self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=True)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._finish(f"Epoch {epoch + 1}/{self.params.get('epochs', 1)} - ", dict(logs or {}))

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._in_fit = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None
