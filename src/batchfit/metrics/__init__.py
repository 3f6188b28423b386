"""Keras metrics (classes, functions and string names) kept as sums on the device.

A metric's state is a few tensors (`states()`); `update_state` adds to them
without reading them back, `result()` divides. Nothing here syncs with the
host: the loop turns results into floats only when someone reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from batchfit import losses as losses_module
from batchfit.losses._functions import (  # Keras exports them as metric functions too
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
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
)
from batchfit.metrics._base import Mean, MeanMetricWrapper, Metric, Sum
from batchfit.metrics._classes import (
    Accuracy,
    BinaryAccuracy,
    BinaryCrossentropy,
    CategoricalAccuracy,
    CategoricalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    KLDivergence,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    R2Score,
    RootMeanSquaredError,
    SparseCategoricalAccuracy,
    SparseCategoricalCrossentropy,
    SparseTopKCategoricalAccuracy,
    SquaredHinge,
    TopKCategoricalAccuracy,
)
from batchfit.metrics._confusion import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    PrecisionAtRecall,
    Recall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
)
from batchfit.metrics._functions import (
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from batchfit.metrics._scores import F1Score, FBetaScore, IoU, MeanIoU

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "IoU",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanIoU",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Metric",
    "Poisson",
    "Precision",
    "PrecisionAtRecall",
    "R2Score",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SensitivityAtSpecificity",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "accuracy",
    "binary_accuracy",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_accuracy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "deserialize",
    "get",
    "hinge",
    "huber",
    "is_known",
    "is_registered",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "names",
    "poisson",
    "serialize",
    "sparse_categorical_accuracy",
    "sparse_categorical_crossentropy",
    "sparse_top_k_categorical_accuracy",
    "squared_hinge",
    "top_k_categorical_accuracy",
]

#: every metric class `get` and `load_model` may build, by Keras class name
_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (
        AUC, Accuracy, BinaryAccuracy, BinaryCrossentropy, CategoricalAccuracy,
        CategoricalCrossentropy, CategoricalHinge, CosineSimilarity, F1Score, FBetaScore,
        FalseNegatives, FalsePositives, Hinge, IoU, KLDivergence, LogCoshError, Mean,
        MeanAbsoluteError, MeanAbsolutePercentageError, MeanIoU, MeanSquaredError,
        MeanSquaredLogarithmicError, Poisson, Precision, PrecisionAtRecall, R2Score, Recall,
        RecallAtPrecision, RootMeanSquaredError, SensitivityAtSpecificity,
        SparseCategoricalAccuracy, SparseCategoricalCrossentropy, SparseTopKCategoricalAccuracy,
        SpecificityAtSensitivity, SquaredHinge, Sum, TopKCategoricalAccuracy, TrueNegatives,
        TruePositives,
    )
}  # fmt: skip

#: metric classes made by `get` from a Keras string name (no required argument)
_FACTORIES: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "root_mean_squared_error": RootMeanSquaredError,
    "cosine_similarity": CosineSimilarity,
    "logcosh": LogCoshError,
    "log_cosh_error": LogCoshError,
    "kl_divergence": KLDivergence,
    "poisson": Poisson,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "true_positives": TruePositives,
    "true_negatives": TrueNegatives,
    "false_positives": FalsePositives,
    "false_negatives": FalseNegatives,
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
    "r2_score": R2Score,
}

_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "rmse": "root_mean_squared_error",
    "kld": "kl_divergence",
    "top_k_accuracy": "top_k_categorical_accuracy",
    "bce": "binary_crossentropy",
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
        {
            *_FACTORIES,
            *_ALIASES,
            *_ACCURACY_NAMES,
            *_CROSSENTROPY_NAMES,
            *losses_module._metric_names(),
        }
    )


def is_known(name: str) -> bool:
    """Whether `get` resolves this string: a Keras metric name or alias, or a class name."""
    return name.lower() in names() or name.lower() in {c.lower() for c in _CLASSES}


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
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ACCURACY_NAMES:
            kind = accuracy_for(loss, y_true, y_pred)
            if not kind:
                raise ValueError("'accuracy' needs a loss or a first batch to resolve")
            return _FACTORIES[kind](name=identifier)
        if key in _CROSSENTROPY_NAMES:
            kind = accuracy_for(loss, y_true, y_pred)
            if not kind:
                raise ValueError(f"{identifier!r} needs a loss or a first batch to resolve")
            key = _CROSSENTROPY_FOR_ACCURACY[kind]
            loss_obj = losses_module.get(key)
            return _loss_metric(loss_obj, identifier)
        by_class = {cname.lower(): cls for cname, cls in _CLASSES.items()}
        if key in by_class:  # a class name; the metric is named as written, as Keras names it
            return by_class[key](name=identifier)
        key = _ALIASES.get(key, key)
        factory = _FACTORIES.get(key)
        if factory is not None:
            return factory(name=identifier)
        if losses_module.canonical_name(key) in losses_module._metric_names():
            return _loss_metric(losses_module.get(key), identifier)
        raise ValueError(f"unknown metric {identifier!r}; valid names: {', '.join(names())}")
    if callable(identifier):
        return MeanMetricWrapper(identifier, getattr(identifier, "__name__", "metric"))
    raise TypeError(
        f"metric must be a name, a Metric or a callable, got {type(identifier).__name__}"
    )


def _loss_metric(loss: losses_module.Loss, name: str) -> Metric:
    """A loss (by its Keras name) as the mean of its per-sample values."""
    return MeanMetricWrapper(
        lambda t, p: loss.per_sample(loss.check_shapes(t, p), p), name, reshape_targets=False
    )


def is_registered(metric: Metric) -> bool:
    """Whether `serialize(metric)` can be rebuilt by `deserialize` (a class of this package)."""
    return _CLASSES.get(type(metric).__name__) is type(metric)


def serialize(metric: Metric) -> dict[str, Any]:
    """`{"class_name": ..., "config": ...}`, which `deserialize` (and `load_model`) rebuild."""
    if not is_registered(metric):
        raise ValueError(
            f"cannot serialize {type(metric).__name__!r}: only batchfit's metric classes "
            f"({', '.join(sorted(_CLASSES))}) are saved by configuration"
        )
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: dict[str, Any]) -> Metric:
    """The metric `serialize` described; builds only classes of this package (no code is loaded)."""
    class_name = config.get("class_name")
    cls = _CLASSES.get(str(class_name))
    if cls is None:
        raise ValueError(
            f"unknown metric class {class_name!r}; known classes: {', '.join(sorted(_CLASSES))}"
        )
    arguments = config.get("config") or {}
    if not isinstance(arguments, dict):
        raise ValueError(
            f"metric {class_name!r}: 'config' must be a dict, got {type(arguments).__name__}"
        )
    try:
        return cls.from_config(dict(arguments))
    except TypeError as err:
        raise ValueError(f"metric {class_name!r}: bad config {arguments!r}: {err}") from None


def needs_batch_to_resolve(identifier: Any, loss: losses_module.Loss | None) -> bool:
    return (
        isinstance(identifier, str)
        and identifier.lower() in (*_ACCURACY_NAMES, *_CROSSENTROPY_NAMES)
        and not accuracy_for(loss, None, None)
    )
