"""Keras metrics kept as sums on the device, so batches and ranks merge by addition.

A metric's state is a few tensors (`states()`); `update_state` adds to them
without reading them back, `result()` divides. Nothing here syncs with the
host: the loop turns results into floats only when someone reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from batchfit import losses as losses_module
from batchfit.metrics._base import (
    Mean,
    MeanMetricWrapper,
    Metric,
    RootMeanSquaredError,
)
from batchfit.metrics._base import (
    squared_error as _squared_error,
)
from batchfit.metrics._confusion import AUC, Precision, Recall

__all__ = [
    "AUC",
    "Mean",
    "MeanMetricWrapper",
    "Metric",
    "Precision",
    "Recall",
    "RootMeanSquaredError",
    "get",
    "names",
]


# -- element-wise metric functions (Keras order) ----------------------------------------
# Accuracies return booleans: summing them is exact and skips a cast per batch.
def binary_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    return (y_pred > 0.5) == (y_true > 0.5)


def categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    return y_pred.argmax(-1) == y_true.argmax(-1)


def sparse_categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    if y_true.dim() == y_pred.dim():
        y_true = y_true.squeeze(-1)
    return y_pred.argmax(-1) == y_true


def top_k_categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    top = y_pred.topk(min(5, y_pred.shape[-1]), dim=-1).indices
    return (top == y_true.argmax(-1, keepdim=True)).any(-1)


def sparse_top_k_categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    if y_true.dim() == y_pred.dim():
        y_true = y_true.squeeze(-1)
    top = y_pred.topk(min(5, y_pred.shape[-1]), dim=-1).indices
    return (top == y_true.long().unsqueeze(-1)).any(-1)


def _absolute_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    return (y_pred - y_true).abs()


_ACCURACY = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "top_k_categorical_accuracy": top_k_categorical_accuracy,
    "sparse_top_k_categorical_accuracy": sparse_top_k_categorical_accuracy,
}


def _wrapper(
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[[str], Metric]:
    return lambda name: MeanMetricWrapper(fn, name)


_FACTORIES: dict[str, Callable[[str], Metric]] = {
    **{k: _wrapper(fn) for k, fn in _ACCURACY.items()},
    "mean_squared_error": lambda n: MeanMetricWrapper(_squared_error, n),
    "mean_absolute_error": lambda n: MeanMetricWrapper(_absolute_error, n),
    "root_mean_squared_error": lambda n: RootMeanSquaredError(n),
    "precision": lambda n: Precision(name=n),
    "recall": lambda n: Recall(name=n),
    "auc": lambda n: AUC(name=n),
}

_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "rmse": "root_mean_squared_error",
    "top_k_accuracy": "top_k_categorical_accuracy",
}

_ACCURACY_NAMES = ("accuracy", "acc")
_CROSSENTROPY_NAMES = ("crossentropy", "ce")
_CROSSENTROPY_FOR_ACCURACY = {
    "binary_accuracy": "binary_crossentropy",
    "categorical_accuracy": "categorical_crossentropy",
    "sparse_categorical_accuracy": "sparse_categorical_crossentropy",
}


def names() -> list[str]:
    """Every accepted metric name (loss names are accepted too)."""
    return sorted(
        {*_FACTORIES, *_ALIASES, *_ACCURACY_NAMES, *_CROSSENTROPY_NAMES, *losses_module.names()}
    )


def accuracy_for(loss: losses_module.Loss | None, y_true: Any, y_pred: Any) -> str:
    """Which accuracy Keras means by 'accuracy', from the loss or else the shapes."""
    if isinstance(loss, losses_module.BinaryCrossentropy):
        return "binary_accuracy"
    if isinstance(loss, losses_module.SparseCategoricalCrossentropy):
        return "sparse_categorical_accuracy"
    if isinstance(loss, losses_module.CategoricalCrossentropy):
        return "categorical_accuracy"
    if y_pred is None:
        return ""
    if y_pred.shape[-1] == 1 or y_pred.dim() == 1:
        return "binary_accuracy"
    if y_true is not None and tuple(y_true.shape) == tuple(y_pred.shape):
        return "categorical_accuracy"
    return "sparse_categorical_accuracy"


def get(
    identifier: str | Metric | Callable[..., torch.Tensor],
    loss: losses_module.Loss | None = None,
    y_true: Any = None,
    y_pred: Any = None,
) -> Metric:
    """A `Metric` from a Keras name or alias, a Metric, or a function `(y_true, y_pred)`.

    'accuracy' is resolved the Keras way: by the loss, else by the shapes of
    the first batch (`y_true`, `y_pred`); the metric keeps the name given.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ACCURACY_NAMES:
            kind = accuracy_for(loss, y_true, y_pred)
            if not kind:
                raise ValueError("'accuracy' needs a loss or a first batch to resolve")
            return _FACTORIES[kind](identifier)
        if key in _CROSSENTROPY_NAMES:
            kind = accuracy_for(loss, y_true, y_pred)
            if not kind:
                raise ValueError(f"{identifier!r} needs a loss or a first batch to resolve")
            key = _CROSSENTROPY_FOR_ACCURACY[kind]
            loss_obj = losses_module.get(key)
            return MeanMetricWrapper(
                lambda t, p: loss_obj.per_sample(loss_obj.check_shapes(t, p), p), identifier, False
            )
        key = _ALIASES.get(key, key)
        factory = _FACTORIES.get(key)
        if factory is not None:
            return factory(identifier)
        if losses_module.canonical_name(key) in losses_module.names():
            loss_obj = losses_module.get(key)
            return MeanMetricWrapper(
                lambda t, p: loss_obj.per_sample(loss_obj.check_shapes(t, p), p), identifier, False
            )
        raise ValueError(f"unknown metric {identifier!r}; valid names: {', '.join(names())}")
    if callable(identifier):
        return MeanMetricWrapper(identifier, getattr(identifier, "__name__", "metric"))
    raise TypeError(
        f"metric must be a name, a Metric or a callable, got {type(identifier).__name__}"
    )


def needs_batch_to_resolve(identifier: Any, loss: losses_module.Loss | None) -> bool:
    return (
        isinstance(identifier, str)
        and identifier.lower() in (*_ACCURACY_NAMES, *_CROSSENTROPY_NAMES)
        and not accuracy_for(loss, None, None)
    )
