"""Small built-in callbacks: TerminateOnNaN, LambdaCallback."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from batchfit.callbacks._base import Callback

__all__ = ["LambdaCallback", "TerminateOnNaN"]


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

    # LambdaCallback sets hooks per instance; CallbackList checks the class, so
    # route batch hooks through methods that look the instance attribute up.
    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        fn = self.__dict__.get("on_train_batch_end")
        if fn is not None:
            fn(batch, logs)

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        fn = self.__dict__.get("on_train_batch_begin")
        if fn is not None:
            fn(batch, logs)
