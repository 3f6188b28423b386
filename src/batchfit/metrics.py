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


class Metric:
    """Base metric: state tensors plus `update_state`, `result`, `reset_state`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._states: dict[str, torch.Tensor] = {}

    def add_state(self, name: str, shape: tuple[int, ...] = ()) -> torch.Tensor:
        t = torch.zeros(shape, dtype=torch.float64)
        self._states[name] = t
        return t

    def states(self) -> dict[str, torch.Tensor]:
        """The sums that make the result; adding two metrics' states merges them."""
        return self._states

    def to(self, device: torch.device) -> Metric:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self._states = {k: v.to(device, dtype) for k, v in self._states.items()}
        return self

    def reset_state(self) -> None:
        for t in self._states.values():
            t.zero_()

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        raise NotImplementedError

    def result(self) -> torch.Tensor:
        raise NotImplementedError

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        """This batch's value alone; the running state is left as it was."""
        saved = {k: v.clone() for k, v in self.states().items()}
        self.reset_state()
        self.update_state(y_true, y_pred, sample_weight)
        value = self.result()
        for key, tensor in self.states().items():
            tensor.copy_(saved[key])
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Mean(Metric):
    """Weighted mean of values: states `total` and `count`.

    Unweighted counts are known on the host, so they accumulate in a Python
    number and join the `count` tensor only when the state is read: one
    device op less per batch.
    """

    def __init__(self, name: str = "mean") -> None:
        super().__init__(name)
        self.add_state("total")
        self.add_state("count")
        self._host_count = 0

    def _flush(self) -> None:
        if self._host_count:
            self._states["count"].add_(self._host_count)
            self._host_count = 0

    def states(self) -> dict[str, torch.Tensor]:
        self._flush()
        return self._states

    def reset_state(self) -> None:
        self._host_count = 0
        super().reset_state()

    def update_values(self, values: torch.Tensor, sample_weight: torch.Tensor | None) -> None:
        states = self._states
        if sample_weight is None:
            states["total"].add_(values.sum())
            self._host_count += values.numel()
        else:
            w = sample_weight.reshape(values.shape[:1] + (1,) * (values.dim() - 1))
            w = w.expand_as(values)
            states["total"].add_((values * w).sum())
            states["count"].add_(w.sum())

    def add_mean(self, mean: torch.Tensor, count: int) -> None:
        """Add a batch given as its mean over `count` samples (one device op)."""
        self._states["total"].add_(mean, alpha=count)
        self._host_count += count

    def update_state(self, values: torch.Tensor, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.update_values(values.detach(), kwargs.get("sample_weight"))

    def result(self) -> torch.Tensor:
        s = self.states()
        return s["total"] / s["count"].clamp_min(1e-12)


class MeanMetricWrapper(Mean):
    """The mean of `fn(y_true, y_pred)` over samples (and the last axis)."""

    def __init__(
        self,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        name: str,
        reshape_targets: bool = True,
    ) -> None:
        super().__init__(name)
        self.fn = fn
        self.reshape_targets = reshape_targets

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        if self.reshape_targets and y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        values = self.fn(y_true, y_pred)
        if sample_weight is not None:
            if values.dtype == torch.bool:
                values = values.to(y_pred.dtype)
            if values.dim() > 1:
                values = values.mean(dim=-1)
        self.update_values(values, sample_weight)

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        if sample_weight is not None or type(self).result is not MeanMetricWrapper.result:
            return super().batch_result(y_true, y_pred, sample_weight)
        if self.reshape_targets and y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        values = self.fn(y_true, y_pred)
        return values.sum() / values.numel()


class RootMeanSquaredError(MeanMetricWrapper):
    """sqrt of the mean squared error over everything seen."""

    def __init__(self, name: str = "root_mean_squared_error") -> None:
        super().__init__(_squared_error, name)

    def result(self) -> torch.Tensor:
        return super().result().sqrt()


class _Confusion(Metric):
    """Binary confusion counts at a threshold: the base of precision and recall."""

    def __init__(self, name: str, thresholds: float = 0.5) -> None:
        super().__init__(name)
        self.thresholds = float(thresholds)
        for state in ("true_positives", "false_positives", "false_negatives"):
            self.add_state(state)

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        pred = (y_pred > self.thresholds).reshape(y_pred.shape[0], -1)
        true = (y_true > 0.5).reshape(y_pred.shape[0], -1)
        w = (
            torch.ones_like(pred, dtype=y_pred.dtype)
            if sample_weight is None
            else sample_weight.reshape(-1, 1).expand(pred.shape).to(y_pred.dtype)
        )
        s = self._states
        s["true_positives"].add_((w * (pred & true)).sum())
        s["false_positives"].add_((w * (pred & ~true)).sum())
        s["false_negatives"].add_((w * (~pred & true)).sum())


class Precision(_Confusion):
    """Fraction of positive predictions that are right (threshold 0.5)."""

    def __init__(self, thresholds: float = 0.5, name: str = "precision") -> None:
        super().__init__(name, thresholds)

    def result(self) -> torch.Tensor:
        s = self._states
        tp = s["true_positives"]
        return tp / (tp + s["false_positives"]).clamp_min(1e-12)


class Recall(_Confusion):
    """Fraction of positives that are predicted positive (threshold 0.5)."""

    def __init__(self, thresholds: float = 0.5, name: str = "recall") -> None:
        super().__init__(name, thresholds)

    def result(self) -> torch.Tensor:
        s = self._states
        tp = s["true_positives"]
        return tp / (tp + s["false_negatives"]).clamp_min(1e-12)


class AUC(Metric):
    """Area under the ROC curve from counts at `num_thresholds` thresholds (Keras).

    Predictions are counted in histograms over threshold buckets; cumulative
    sums give true/false positives at each threshold, and the area comes from
    the trapezoidal rule. Histograms add, so batches and ranks merge exactly.
    """

    def __init__(self, num_thresholds: int = 200, name: str = "auc") -> None:
        super().__init__(name)
        if num_thresholds < 2:
            raise ValueError(f"num_thresholds must be at least 2, got {num_thresholds}")
        self.num_thresholds = num_thresholds
        inner = torch.arange(1, num_thresholds - 1, dtype=torch.float64) / (num_thresholds - 1)
        self._thresholds = torch.cat(
            [torch.tensor([-1e-7], dtype=torch.float64), inner, torch.tensor([1 + 1e-7])]
        )
        self.add_state("positives", (num_thresholds + 1,))
        self.add_state("negatives", (num_thresholds + 1,))

    def to(self, device: torch.device) -> AUC:
        super().to(device)
        self._thresholds = self._thresholds.to(device, self._states["positives"].dtype)
        return self

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        pred = y_pred.reshape(y_pred.shape[0], -1).to(self._thresholds.dtype)
        true = (y_true.reshape(y_pred.shape[0], -1) > 0.5).to(pred.dtype)
        w = (
            torch.ones_like(pred)
            if sample_weight is None
            else (sample_weight.reshape(-1, 1).to(pred.dtype).expand_as(pred))
        )
        # bucket b holds predictions in (thresholds[b-1], thresholds[b]]
        bucket = torch.bucketize(pred.reshape(-1), self._thresholds).clamp_max(self.num_thresholds)
        size = self.num_thresholds + 1
        s = self._states
        s["positives"].add_(torch.bincount(bucket, (w * true).reshape(-1), minlength=size))
        s["negatives"].add_(torch.bincount(bucket, (w * (1 - true)).reshape(-1), minlength=size))

    def result(self) -> torch.Tensor:
        s = self._states
        # predictions above threshold t are those in buckets t+1 and later
        tp = s["positives"].flip(0).cumsum(0).flip(0)[1:]
        fp = s["negatives"].flip(0).cumsum(0).flip(0)[1:]
        tpr = tp / s["positives"].sum().clamp_min(1e-12)
        fpr = fp / s["negatives"].sum().clamp_min(1e-12)
        return ((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2).sum()


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


def _squared_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    return (y_pred - y_true) ** 2


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
