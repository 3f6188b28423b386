"""The progress bar: Keras' verbose=1 (a bar per epoch) and verbose=2 (a line per epoch).

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

    def _out(self) -> Any:
        return self.file if self.file is not None else sys.stdout

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._epoch_start = time.perf_counter()
        self._seen = 0
        epochs = self.params.get("epochs", 1)
        if self.verbose == 1:
            self._bar = tqdm(
                total=self.params.get("steps"),
                desc=f"Epoch {epoch + 1}/{epochs}",
                unit="batch",
                file=self._out(),
                dynamic_ncols=True,
                leave=True,
                mininterval=self.interval,
            )
            self._next_refresh = self._epoch_start + self.interval

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
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
        logs = dict(logs or {})
        elapsed = time.perf_counter() - self._epoch_start
        if self._bar is not None:
            self._bar.update(self._seen - self._bar.n)
            self._bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            epochs = self.params.get("epochs", 1)
            per_step = elapsed / max(self._seen, 1) * 1e3
            print(
                f"Epoch {epoch + 1}/{epochs} - {elapsed:.0f}s {per_step:.1f}ms/step - {_fmt(logs)}",
                file=self._out(),
                flush=True,
            )

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
