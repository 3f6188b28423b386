"""The Keras callback protocol and the list that dispatches it.

`CallbackList` finds, once, which callbacks override each batch hook, so a
batch with no interested callback costs one attribute check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchfit.models import Model

__all__ = ["Callback", "CallbackList"]

_BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class: override the hooks you need (Keras names and arguments).

    `self.model` is the model being trained and `self.params` holds
    `epochs`, `steps` and `verbose`. Set `self.model.stop_training = True` to
    stop at the end of the current batch.
    """

    #: a callback that deals with NaN losses itself (TerminateOnNaN) sets this
    handles_nonfinite_loss = False

    def __init__(self) -> None:
        self.model: Model | None = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Model) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_test_begin(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_test_end(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_predict_begin(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_predict_end(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_predict_batch_begin(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...

    # Keras 2 names of the train-batch hooks
    def on_batch_begin(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...
    def on_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a resume needs to continue this callback exactly (JSON-friendly)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state


def _overrides(cb: Callback, hook: str) -> bool:
    """Whether `cb` does something on `hook` (a method, or a function set on the instance)."""
    return hook in vars(cb) or getattr(type(cb), hook) is not getattr(Callback, hook)


class CallbackList:
    """Dispatches each hook to every callback, in order."""

    def __init__(self, callbacks: Iterable[Callback], model: Model, params: dict[str, Any]):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be batchfit.callbacks.Callback instances, got {cb!r}"
                )
            cb.set_model(model)
            cb.set_params(params)
        self._batch: dict[str, list[Any]] = {}
        for hook in _BATCH_HOOKS:
            self._batch[hook] = [getattr(cb, hook) for cb in self.callbacks if _overrides(cb, hook)]
        for cb in self.callbacks:
            for old, new in (
                ("on_batch_begin", "on_train_batch_begin"),
                ("on_batch_end", "on_train_batch_end"),
            ):
                if _overrides(cb, old):
                    self._batch[new].append(getattr(cb, old))
        self.wants_train_batch_begin = bool(self._batch["on_train_batch_begin"])
        self.wants_train_batch_end = bool(self._batch["on_train_batch_end"])
        self.wants_test_batch = bool(
            self._batch["on_test_batch_begin"] or self._batch["on_test_batch_end"]
        )
        self.wants_predict_batch = bool(
            self._batch["on_predict_batch_begin"] or self._batch["on_predict_batch_end"]
        )
        self.handles_nonfinite_loss = any(cb.handles_nonfinite_loss for cb in self.callbacks)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def batch(self, hook: str, batch: int, logs: Mapping[str, float] | None) -> None:
        for fn in self._batch[hook]:
            fn(batch, logs)
