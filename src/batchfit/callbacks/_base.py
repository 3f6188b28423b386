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
    #: a callback that saves the whole training state (BackupAndRestore) sets this and
    #: provides `restore_point()`, `after_batch(state)` and `after_epoch(state)`, which
    #: `fit` calls after every other callback, with `state` building the state on demand
    saves_training_state = False

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

    def __init__(
        self, callbacks: Iterable[Callback], model: Model, params: dict[str, Any] | None = None
    ):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be batchfit.callbacks.Callback instances, got {cb!r}"
                )
            cb.set_model(model)
        self.set_params(params or {})
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
        self.state_savers: list[Any] = [cb for cb in self.callbacks if cb.saves_training_state]

    def set_params(self, params: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.set_params(params)

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def call(self, hook: str, *args: Any) -> None:
        """Run `hook` on every callback; as in Keras, `logs` is never None (an empty dict)."""
        if args and args[-1] is None:
            args = (*args[:-1], {})
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def batch(self, hook: str, batch: int, logs: Mapping[str, float] | None) -> None:
        for fn in self._batch[hook]:
            fn(batch, {} if logs is None else logs)

    def state_dict(self) -> list[list[Any]]:
        """Each callback's state, tagged with its class name."""
        return [[type(cb).__name__, cb.state_dict()] for cb in self.callbacks]

    def load_state_dict(self, saved: list[list[Any]]) -> None:
        """Give the k-th callback of each class the state of the k-th one saved.

        Matching by class and rank among its kind (not by position) lets a resumed
        run add or drop an unrelated callback and still restore the others.
        """
        by_class: dict[str, list[Any]] = {}
        for name, state in saved:
            by_class.setdefault(name, []).append(state)
        seen: dict[str, int] = {}
        for cb in self.callbacks:
            name = type(cb).__name__
            k = seen[name] = seen.get(name, -1) + 1
            states = by_class.get(name, [])
            if k < len(states):
                cb.load_state_dict(states[k])
