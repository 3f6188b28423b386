"""Keras' mean-of-a-function metric classes, and R2Score.

Each is a `MeanMetricWrapper` over a Keras function (an accuracy from
`_functions.py` or a loss function from `batchfit.losses`), with Keras'
class name, default name and constructor arguments.
"""

from __future__ import annotations

from typing import Any

import torch

from batchfit import losses
from batchfit.metrics import _functions as fns
from batchfit.metrics._base import Mean, MeanMetricWrapper, Metric, as_tensor, squared_error

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
    "Hinge",
    "KLDivergence",
    "LogCoshError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "R2Score",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SquaredHinge",
    "TopKCategoricalAccuracy",
]


def _wrapper_class(class_name: str, fn: Any, default_name: str, doc: str) -> type:
    """A MeanMetricWrapper subclass taking Keras' `(name, dtype)` and no other argument."""

    def __init__(self: MeanMetricWrapper, name: str = default_name, dtype: Any = None) -> None:
        MeanMetricWrapper.__init__(self, fn, name, dtype)

    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "__doc__": doc})


def _cosine_similarity(y_true: torch.Tensor, y_pred: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return -losses.cosine_similarity(y_true, y_pred, axis=axis)


Accuracy = _wrapper_class("Accuracy", fns.accuracy, "accuracy", "How often y_pred equals y_true.")
CategoricalAccuracy = _wrapper_class(
    "CategoricalAccuracy",
    fns.categorical_accuracy,
    "categorical_accuracy",
    "How often argmax(y_pred) equals argmax(y_true) (one-hot targets).",
)
SparseCategoricalAccuracy = _wrapper_class(
    "SparseCategoricalAccuracy",
    fns.sparse_categorical_accuracy,
    "sparse_categorical_accuracy",
    "How often argmax(y_pred) equals the integer label.",
)
MeanSquaredError = _wrapper_class(
    "MeanSquaredError", losses.mean_squared_error, "mean_squared_error", "Mean squared error."
)
MeanAbsoluteError = _wrapper_class(
    "MeanAbsoluteError", losses.mean_absolute_error, "mean_absolute_error", "Mean absolute error."
)
MeanAbsolutePercentageError = _wrapper_class(
    "MeanAbsolutePercentageError",
    losses.mean_absolute_percentage_error,
    "mean_absolute_percentage_error",
    "Mean absolute percentage error (Keras' formula, denominator clipped at 1e-7).",
)
MeanSquaredLogarithmicError = _wrapper_class(
    "MeanSquaredLogarithmicError",
    losses.mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error",
    "Mean squared logarithmic error.",
)
LogCoshError = _wrapper_class(
    "LogCoshError", losses.log_cosh, "logcosh", "Mean of log(cosh(y_pred - y_true))."
)
KLDivergence = _wrapper_class(
    "KLDivergence", losses.kl_divergence, "kl_divergence", "Kullback-Leibler divergence."
)
Poisson = _wrapper_class("Poisson", losses.poisson, "poisson", "Poisson loss as a metric.")
Hinge = _wrapper_class("Hinge", losses.hinge, "hinge", "Hinge loss as a metric.")
SquaredHinge = _wrapper_class(
    "SquaredHinge", losses.squared_hinge, "squared_hinge", "Squared hinge loss as a metric."
)
CategoricalHinge = _wrapper_class(
    "CategoricalHinge",
    losses.categorical_hinge,
    "categorical_hinge",
    "Categorical hinge loss as a metric.",
)


class BinaryAccuracy(MeanMetricWrapper):
    """How often y_true equals (y_pred > threshold)."""

    def __init__(
        self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5
    ) -> None:
        super().__init__(fns.binary_accuracy, name, dtype, threshold=float(threshold))


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target is among the k highest predictions."""

    def __init__(
        self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None
    ) -> None:
        super().__init__(fns.top_k_categorical_accuracy, name, dtype, k=int(k))


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the k highest predictions."""

    def __init__(
        self,
        k: int = 5,
        name: str = "sparse_top_k_categorical_accuracy",
        dtype: Any = None,
        from_sorted_ids: bool = False,
    ) -> None:
        super().__init__(
            fns.sparse_top_k_categorical_accuracy,
            name,
            dtype,
            k=int(k),
            from_sorted_ids=bool(from_sorted_ids),
        )


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity between targets and predictions along `axis`."""

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1) -> None:
        super().__init__(_cosine_similarity, name, dtype, axis=axis)


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary cross-entropy (Keras' clipping of probabilities)."""

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(
            losses.binary_crossentropy,
            name,
            dtype,
            from_logits=bool(from_logits),
            label_smoothing=float(label_smoothing),
        )


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean categorical cross-entropy against one-hot targets."""

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
    ) -> None:
        super().__init__(
            losses.categorical_crossentropy,
            name,
            dtype,
            from_logits=bool(from_logits),
            label_smoothing=float(label_smoothing),
            axis=axis,
        )


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean cross-entropy against integer labels; `ignore_class` labels are left out."""

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ) -> None:
        super().__init__(
            losses.sparse_categorical_crossentropy,
            name,
            dtype,
            reshape_targets=False,
            from_logits=bool(from_logits),
            ignore_class=ignore_class,
            axis=axis,
        )

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        ignore = self._fn_kwargs["ignore_class"]
        if ignore is not None:
            y_pred = as_tensor(y_pred)
            labels = torch.as_tensor(y_true, device=y_pred.device)
            if labels.dim() == y_pred.dim():
                labels = labels.squeeze(-1)
            valid = (labels != ignore).to(y_pred.dtype)
            if sample_weight is not None:
                valid = valid * as_tensor(sample_weight, valid).reshape(
                    valid.shape[:1] + (1,) * (valid.dim() - 1)
                )
            sample_weight = valid
        super().update_state(y_true, y_pred, sample_weight)

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        return Metric.batch_result(self, y_true, y_pred, sample_weight)


class RootMeanSquaredError(Mean):
    """sqrt of the mean squared error over everything seen."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name, dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = as_tensor(y_pred).detach()
        y_true = as_tensor(y_true, y_pred).to(y_pred.device)
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        values = squared_error(y_true, y_pred)
        if sample_weight is not None and values.dim() > 1:
            values = values.mean(dim=tuple(range(1, values.dim())))
        self.update_values(values, sample_weight)

    def result(self) -> torch.Tensor:
        return super().result().sqrt()


class R2Score(Metric):
    """The coefficient of determination, per output column, aggregated as Keras does.

    Args:
        class_aggregation: "uniform_average" (default), "variance_weighted_average",
            or None (one score per output column).
        num_regressors: p of the adjusted R2, 1 - (1 - R2)(n - 1)/(n - p - 1); 0: plain.
    """

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: Any = None,
    ) -> None:
        super().__init__(name, dtype)
        if class_aggregation not in ("uniform_average", "variance_weighted_average", None):
            raise ValueError(
                "class_aggregation must be 'uniform_average', 'variance_weighted_average' "
                f"or None, got {class_aggregation!r}"
            )
        if int(num_regressors) < 0:
            raise ValueError(f"num_regressors must be >= 0, got {num_regressors!r}")
        self.class_aggregation = class_aggregation
        self.num_regressors = int(num_regressors)
        self.add_state("num_samples")
        self._device: torch.device | None = None

    def build(self, y_true: Any, y_pred: Any) -> None:
        if "sum" in self._states or y_true is None:
            return
        y_true = as_tensor(y_true)
        columns = y_true.shape[-1] if y_true.dim() > 1 else 1
        for key in ("sum", "squared_sum", "total_mse", "count"):
            self.add_state(key, (columns,))
        self.to(self._device or y_true.device)

    def to(self, device: torch.device) -> R2Score:
        self._device = device
        super().to(device)
        return self

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = as_tensor(y_pred).detach()
        y_true = as_tensor(y_true, y_pred).to(y_pred.device)
        if y_pred.dim() == 1:
            y_pred = y_pred.unsqueeze(-1)
        if y_true.dim() == y_pred.dim() - 1:
            y_true = y_true.unsqueeze(-1)
        if y_true.shape != y_pred.shape or y_pred.dim() != 2:
            raise ValueError(
                f"R2Score expects targets and predictions of one 2-D shape (samples, outputs); "
                f"got y_true {tuple(y_true.shape)} and y_pred {tuple(y_pred.shape)}"
            )
        self.build(y_true, y_pred)
        s = self._states
        dtype = s["sum"].dtype
        y_true, y_pred = y_true.to(dtype), y_pred.to(dtype)
        if sample_weight is None:
            w = torch.ones_like(y_true)
        else:
            w = as_tensor(sample_weight, y_true).to(dtype)
            w = (w.unsqueeze(1) if w.dim() == 1 else w).expand_as(y_true)
        s["sum"].add_((y_true * w).sum(0))
        s["squared_sum"].add_((y_true * y_true * w).sum(0))
        s["total_mse"].add_(((y_true - y_pred) ** 2 * w).sum(0))
        s["count"].add_(w.sum(0))
        s["num_samples"].add_(y_true.numel())

    def reset_state(self) -> None:
        super().reset_state()

    def result(self) -> torch.Tensor:
        s = self._states
        if "sum" not in s:
            return torch.zeros((), dtype=s["num_samples"].dtype, device=s["num_samples"].device)
        mean = s["sum"] / s["count"]
        total = s["squared_sum"] - s["sum"] * mean
        raw = 1 - s["total_mse"] / total
        raw = torch.where(torch.isinf(raw), torch.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = raw.mean()
        elif self.class_aggregation == "variance_weighted_average":
            score = (total * raw).sum() / total.sum()
        else:
            score = raw
        p = self.num_regressors
        n = s["num_samples"]
        if p and bool(p < n - 1):  # Keras warns and falls back to plain R2 otherwise
            score = 1 - (1 - score) * (n - 1) / (n - p - 1)
        return score

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
