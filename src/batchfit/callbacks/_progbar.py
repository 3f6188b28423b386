"""The progress line of `fit`, `evaluate` and `predict`: Keras 3's `ProgbarLogger`.

verbose=1 draws Keras' bar (`keras.utils.Progbar`) over each epoch's batches,
verbose=2 writes one line per epoch; both print "Epoch 1/5" above an epoch
when there are several. `evaluate` and `predict` get the same over their
batches. Inside `fit` the validation pass draws nothing of its own: its values
end up on the epoch's line.

The metrics are read only when the bar redraws (at most every `interval`
seconds, and only on a terminal), so on a GPU the bar costs one host sync per
redraw, never one per batch.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from batchfit._progress import Progbar
from batchfit.callbacks._base import Callback

__all__ = ["ProgbarLogger"]


class ProgbarLogger(Callback):
    """Prints progress: a live bar (verbose=1) or one line per epoch (verbose=2)."""

    def __init__(self, verbose: int = 1, interval: float = 0.05, file: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.interval = interval
        self.file = file
        self._bar: Progbar | None = None
        self._seen = 0
        self._in_fit = False

    def _out(self) -> Any:
        return self.file if self.file is not None else sys.stdout

    def _start(self) -> None:
        self._seen = 0
        self._bar = Progbar(
            self.params.get("steps"),
            verbose=self.verbose,
            interval=self.interval,
            stateless_metrics=(),  # the logs hold each metric's running result: shown as given
            file=self.file,
        )

    def _advance(self, batch: int, logs: Mapping[str, float] | None) -> None:
        self._seen = batch + 1
        bar = self._bar
        if bar is None or self.verbose != 1:
            return
        # reading the logs is a host sync: only when the bar will draw
        bar.update(self._seen, list(logs.items()) if logs and bar.due() else None, False)

    def _finish(self, logs: Mapping[str, float] | None) -> None:
        bar = self._bar
        if bar is None:
            return
        if bar.target is None:
            bar.target = self._seen
        bar.update(bar.target, list((logs or {}).items()), finalize=True)
        self._bar = None

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._in_fit = True

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._start()
        epochs = self.params.get("epochs", 1)
        if self.verbose and epochs > 1:
            print(f"Epoch {epoch + 1}/{epochs}", file=self._out(), flush=True)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self._advance(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._finish(logs)

    def on_test_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not self._in_fit:
            self._start()

    def on_test_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        if not self._in_fit:
            self._advance(batch, logs)

    def on_test_end(self, logs: Mapping[str, float] | None = None) -> None:
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._start()

    def on_predict_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._advance(batch, None)

    def on_predict_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._finish(None)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._in_fit = False
        self._bar = None
