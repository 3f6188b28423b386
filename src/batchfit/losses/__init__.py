"""Keras' loss classes and functions on torch; one place resolves names and checks shapes.

Every loss is called as `loss(y_true, y_pred, sample_weight=None)` (Keras
order) and by default returns the scalar Keras calls "sum over batch size": the
mean of per-sample losses, each multiplied by its weight when weights are
given. The lower-case functions (`mean_squared_error`, `mse`, ...) return the
per-sample values, as Keras' do (`losses/_functions.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from batchfit.losses._base import Loss, _UserFunction
from batchfit.losses._classes import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Dice,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
    Tversky,
)
from batchfit.losses._functions import (
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
    dice,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
    tversky,
)

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Dice",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "dice",
    "get",
    "hinge",
    "huber",
    "kl_divergence",
    "kld",
    "log_cosh",
    "logcosh",
    "mae",
    "mape",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "mse",
    "msle",
    "names",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "tversky",
]

# Keras' short names of the functions
mse = mean_squared_error
mae = mean_absolute_error
mape = mean_absolute_percentage_error
msle = mean_squared_logarithmic_error
kld = kl_divergence
logcosh = log_cosh

_CLASSES: tuple[type[Loss], ...] = (
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Huber,
    LogCosh,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
    KLDivergence,
    Poisson,
    CosineSimilarity,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    Dice,
    Tversky,
)

_FACTORIES: dict[str, Callable[[], Loss]] = {cls.name: cls for cls in _CLASSES}
_FACTORIES["huber"] = Huber

_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "logcosh": "log_cosh",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
}

_CLASS_NAMES: dict[str, type[Loss]] = {cls.__name__: cls for cls in _CLASSES}


def names() -> list[str]:
    """Every accepted loss name, aliases included."""
    return sorted([*_FACTORIES, *_ALIASES])


#: losses of a whole batch (one value, not per sample): Keras offers no metric by these names
_NOT_METRICS = frozenset({"dice", "tversky"})


def _metric_names() -> list[str]:
    """The loss names `compile(metrics=[...])` accepts (Keras' metric functions)."""
    return [name for name in names() if name not in _NOT_METRICS]


def canonical_name(name: str) -> str:
    key = name.lower()
    return _ALIASES.get(key, key)


def get(identifier: str | Loss | nn.Module | Callable[..., torch.Tensor] | dict[str, Any]) -> Loss:
    """A `Loss` from a Keras name or alias, a Loss, a torch loss module, or a callable.

    torch loss modules are called in torch order `(input, target)`; other
    callables in Keras order `(y_true, y_pred)`.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        config = dict(identifier)
        class_name = str(config.pop("class_name", ""))
        if isinstance(config.get("config"), dict):  # Keras' serialized form
            config = dict(config["config"])
            config.pop("class_name", None)
        cls = _CLASS_NAMES.get(class_name)
        if cls is None and class_name not in ("", "function"):
            valid = ", ".join(sorted(_CLASS_NAMES))
            raise ValueError(f"unknown loss class {class_name!r}; valid classes: {valid}")
        if cls is None:
            return get(str(config.get("name", "")))
        try:
            return cls(**config)
        except TypeError as err:
            raise ValueError(f"loss {class_name!r}: bad config {config!r}: {err}") from None
    if isinstance(identifier, str):
        if identifier in _CLASS_NAMES:
            return _CLASS_NAMES[identifier]()
        factory = _FACTORIES.get(canonical_name(identifier))
        if factory is None:
            raise ValueError(f"unknown loss {identifier!r}; valid names: {', '.join(names())}")
        return factory()
    if isinstance(identifier, nn.Module):
        return _UserFunction(identifier, torch_order=True)
    if callable(identifier):
        return _UserFunction(identifier)
    raise TypeError(f"loss must be a name, a Loss or a callable, got {type(identifier).__name__}")
