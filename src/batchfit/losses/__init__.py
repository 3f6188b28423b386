"""Keras' loss classes and functions on torch; one place resolves names and checks shapes.

Every loss is called as `loss(y_true, y_pred, sample_weight=None)` (Keras
order) and by default returns the scalar Keras calls "sum over batch size": the
mean of per-sample losses, each multiplied by its weight when weights are
given. The lower-case functions (`mean_squared_error`, `mse`, ...) return the
per-sample values, as Keras' do (`losses/_functions.py`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit.losses._functions import (
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
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

__all__ = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalHinge",
    "CosineSimilarity",
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
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
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
]

# Keras' short names of the functions
mse = mean_squared_error
mae = mean_absolute_error
mape = mean_absolute_percentage_error
msle = mean_squared_logarithmic_error
kld = kl_divergence
logcosh = log_cosh

_EPS = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


class Loss:
    """A loss with Keras call convention and reduction.

    Subclasses implement `per_sample(y_true, y_pred)` (shape `(N,)`, or `(N, ...)`
    without the last axis) and may override `mean(y_true, y_pred)` with a fused
    torch call for the unweighted case, which is the hot path.

    Args:
        name: the loss's name.
        reduction: Keras' reduction of the per-sample values:
            "sum_over_batch_size" (default: the sum of weighted values divided by
            their number), "sum", "mean_with_sample_weight" (divided by the sum of
            the weights), or "none"/None (the weighted values).
        dtype: kept for `get_config` (the loss runs in the predictions' dtype).
    """

    name = "loss"
    #: targets are class indices (torch long) rather than floats
    sparse_targets = False
    #: targets must have the predictions' shape (after a trailing 1 is added)
    elementwise = True

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        if name is not None:
            self.name = name
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}, got {reduction!r} for loss {self.name!r}"
            )
        self.reduction = reduction
        self.dtype = dtype

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return self.per_sample(y_true, y_pred).mean()

    def check_shapes(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """`y_true` adjusted to `y_pred` (a trailing 1 added) or a clear error."""
        if self.elementwise and y_true.shape != y_pred.shape:
            if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
                y_true = y_true.unsqueeze(-1)
            elif y_true.dim() == y_pred.dim() + 1 and y_true.shape[-1] == 1:
                y_true = y_true.squeeze(-1)
            if y_true.shape != y_pred.shape:
                raise ValueError(
                    f"loss {self.name!r} expects targets shaped like the predictions "
                    f"{_shape(y_pred)}, got targets of shape {_shape(y_true)}"
                    + _hint(self, y_true, y_pred)
                )
        return y_true

    def __call__(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any = None,
    ) -> torch.Tensor:
        y_pred = _as_prediction(y_pred)
        y_true = _as_target(y_true, y_pred, self.sparse_targets)
        y_true = self.check_shapes(y_true, y_pred)
        if sample_weight is None and self.reduction == "sum_over_batch_size":
            return self.mean(y_true, y_pred)
        return self._reduce(self.per_sample(y_true, y_pred), sample_weight)

    def _reduce(
        self, values: torch.Tensor, sample_weight: Any, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Weigh per-sample values and reduce them as Keras' `reduce_weighted_values`."""
        weights = None
        if sample_weight is not None:
            weights = torch.as_tensor(sample_weight, device=values.device).to(values.dtype)
            while weights.dim() > values.dim() and weights.shape[-1] == 1:
                weights = weights.squeeze(-1)
            weights = weights.reshape(weights.shape + (1,) * (values.dim() - weights.dim()))
            values = values * weights
        if self.reduction in ("none", None) or values.dim() == 0:
            return values
        total = values.sum()
        if self.reduction == "sum":
            return total
        if valid is not None:  # Keras' mask: divide by the valid entries only
            return total / valid.sum().clamp_min(1)
        if self.reduction == "mean_with_sample_weight" and weights is not None:
            return total / weights.expand_as(values).sum()
        return total / max(values.numel(), 1)

    def get_config(self) -> dict[str, Any]:
        return {
            "class_name": type(self).__name__,
            "name": self.name,
            "reduction": self.reduction,
            "dtype": self.dtype,
        }


def _as_prediction(y_pred: Any) -> torch.Tensor:
    if isinstance(y_pred, torch.Tensor):
        return y_pred
    return torch.as_tensor(y_pred, dtype=torch.float32)


def _as_target(y_true: Any, y_pred: torch.Tensor, sparse: bool) -> torch.Tensor:
    """Targets as a tensor on the predictions' device (NumPy and lists welcome)."""
    if isinstance(y_true, torch.Tensor):
        return y_true
    y_true = torch.as_tensor(y_true, device=y_pred.device)
    return y_true.long() if sparse else y_true.to(y_pred.dtype)


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _hint(loss: Loss, y_true: torch.Tensor, y_pred: torch.Tensor) -> str:
    if isinstance(loss, CategoricalCrossentropy) and y_true.shape[-1:] == (1,):
        return "; for integer class labels use 'sparse_categorical_crossentropy'"
    if isinstance(loss, BinaryCrossentropy) and y_pred.dim() > 1 and y_pred.shape[-1] > 1:
        return "; for one-hot labels over several classes use 'categorical_crossentropy'"
    return ""


def _labels(y_true: torch.Tensor) -> torch.Tensor:
    return y_true if y_true.dtype == torch.int64 else y_true.long()


def _reduce_last(values: torch.Tensor) -> torch.Tensor:
    return values.mean(dim=-1) if values.dim() > 1 else values


class _FunctionLoss(Loss):
    """A loss class over one of Keras' loss functions, with that function's settings."""

    fn: Callable[..., torch.Tensor]

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
        **settings: Any,
    ) -> None:
        super().__init__(name, reduction, dtype)
        accepted = set(inspect.signature(type(self).fn).parameters) - {"y_true", "y_pred"}
        unknown = sorted(set(settings) - accepted)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected arguments {unknown}; "
                f"it takes name, reduction, dtype{''.join(', ' + a for a in sorted(accepted))}"
            )
        self.settings = settings

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return type(self).fn(y_true, y_pred, **self.settings)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.settings}


class MeanSquaredError(_FunctionLoss):
    """mean((y_pred - y_true)^2) over the last axis."""

    name = "mean_squared_error"
    fn = staticmethod(mean_squared_error)

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(y_pred, y_true)


class MeanAbsoluteError(_FunctionLoss):
    """mean(|y_pred - y_true|) over the last axis."""

    name = "mean_absolute_error"
    fn = staticmethod(mean_absolute_error)

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(y_pred, y_true)


class MeanAbsolutePercentageError(_FunctionLoss):
    """100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))."""

    name = "mean_absolute_percentage_error"
    fn = staticmethod(mean_absolute_percentage_error)


class MeanSquaredLogarithmicError(_FunctionLoss):
    """mean((log(1 + y_pred) - log(1 + y_true))^2), both clipped at 1e-7."""

    name = "mean_squared_logarithmic_error"
    fn = staticmethod(mean_squared_logarithmic_error)


class Huber(_FunctionLoss):
    """Huber loss with threshold `delta` (Keras default 1.0)."""

    name = "huber_loss"
    fn = staticmethod(huber)

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name, reduction, dtype, delta=float(delta))
        self.delta = float(delta)

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(y_pred, y_true, delta=self.delta)


class LogCosh(_FunctionLoss):
    """mean(log(cosh(y_pred - y_true))) over the last axis."""

    name = "log_cosh"
    fn = staticmethod(log_cosh)


class KLDivergence(_FunctionLoss):
    """sum(y_true * log(y_true / y_pred)) over the last axis (both clipped to [1e-7, 1])."""

    name = "kl_divergence"
    fn = staticmethod(kl_divergence)


class Poisson(_FunctionLoss):
    """mean(y_pred - y_true * log(y_pred + 1e-7))."""

    name = "poisson"
    fn = staticmethod(poisson)


class Hinge(_FunctionLoss):
    """mean(max(1 - y_true * y_pred, 0)); labels -1/1, or 0/1 turned into -1/1."""

    name = "hinge"
    fn = staticmethod(hinge)


class SquaredHinge(_FunctionLoss):
    """mean(max(1 - y_true * y_pred, 0)^2)."""

    name = "squared_hinge"
    fn = staticmethod(squared_hinge)


class CategoricalHinge(_FunctionLoss):
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)."""

    name = "categorical_hinge"
    fn = staticmethod(categorical_hinge)


class CosineSimilarity(_FunctionLoss):
    """Minus the cosine similarity along `axis`: -1 when the vectors point the same way."""

    name = "cosine_similarity"
    fn = staticmethod(cosine_similarity)

    def __init__(
        self,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name, reduction, dtype, axis=axis)


class BinaryCrossentropy(_FunctionLoss):
    """Binary cross-entropy on probabilities (clipped to [1e-7, 1 - 1e-7]) or logits."""

    name = "binary_crossentropy"
    fn = staticmethod(binary_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            name,
            reduction,
            dtype,
            from_logits=bool(from_logits),
            label_smoothing=float(label_smoothing),
            axis=axis,
        )
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        if self.settings["axis"] != -1:
            return self.per_sample(y_true, y_pred).mean()
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            return F.binary_cross_entropy_with_logits(y_pred, y_true)
        return F.binary_cross_entropy(y_pred.clamp(_EPS, 1.0 - _EPS), y_true)


class BinaryFocalCrossentropy(_FunctionLoss):
    """Binary cross-entropy scaled by (1 - p_t)^gamma, optionally class-balanced by alpha."""

    name = "binary_focal_crossentropy"
    fn = staticmethod(binary_focal_crossentropy)

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            name,
            reduction,
            dtype,
            apply_class_balancing=bool(apply_class_balancing),
            alpha=float(alpha),
            gamma=float(gamma),
            from_logits=bool(from_logits),
            label_smoothing=float(label_smoothing),
            axis=axis,
        )


class CategoricalCrossentropy(_FunctionLoss):
    """Cross-entropy against one-hot (or soft) targets over `axis`."""

    name = "categorical_crossentropy"
    fn = staticmethod(categorical_crossentropy)

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            name,
            reduction,
            dtype,
            from_logits=bool(from_logits),
            label_smoothing=float(label_smoothing),
            axis=axis,
        )
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)


class CategoricalFocalCrossentropy(_FunctionLoss):
    """Categorical cross-entropy scaled by alpha (1 - p)^gamma per class."""

    name = "categorical_focal_crossentropy"
    fn = staticmethod(categorical_focal_crossentropy)

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            name,
            reduction,
            dtype,
            alpha=float(alpha),
            gamma=float(gamma),
            from_logits=bool(from_logits),
            label_smoothing=float(label_smoothing),
            axis=axis,
        )


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class labels of shape `(N,)` or `(N, 1)`.

    `ignore_class`: labels of this value add nothing, and the mean is over the
    other labels (Keras masks them).
    """

    name = "sparse_categorical_crossentropy"
    sparse_targets = True
    elementwise = False

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else int(ignore_class)

    def check_shapes(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        if y_true.dim() != y_pred.dim() - 1 or y_true.shape != y_pred.shape[:-1]:
            hint = ""
            if y_true.shape == y_pred.shape:
                hint = "; for one-hot labels use 'categorical_crossentropy'"
            raise ValueError(
                f"loss {self.name!r} expects integer labels of shape {_shape(y_pred)[:-1]} "
                f"for predictions of shape {_shape(y_pred)}, got {_shape(y_true)}{hint}"
            )
        return y_true

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
        }

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        if self.ignore_class is None:
            return super().__call__(y_true, y_pred, sample_weight)
        y_pred = _as_prediction(y_pred)
        labels = self.check_shapes(_as_target(y_true, y_pred, True), y_pred)
        valid = _labels(labels) != self.ignore_class
        values = self.per_sample(labels, y_pred)
        if self.reduction == "sum_over_batch_size":
            return self._reduce(values, sample_weight, valid)
        return self._reduce(values, sample_weight)

    def _log_p(self, y_pred: torch.Tensor) -> torch.Tensor:
        if self.from_logits:
            return torch.log_softmax(y_pred, dim=-1)
        y_pred = y_pred / y_pred.sum(dim=-1, keepdim=True)
        return torch.log(y_pred.clamp(_EPS, 1.0 - _EPS))

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        labels = _labels(y_true)
        valid = None
        if self.ignore_class is not None:
            valid = labels != self.ignore_class
            labels = labels * valid
        try:
            values = F.nll_loss(
                self._log_p(y_pred).movedim(-1, 1) if y_pred.dim() > 2 else self._log_p(y_pred),
                labels,
                reduction="none",
                ignore_index=_NO_IGNORED_LABEL,
            )
        except (IndexError, RuntimeError) as e:
            error = _label_error(labels, y_pred)
            if error is None:
                raise
            raise error from e
        return values if valid is None else values * valid

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        # torch skips labels equal to `ignore_index` (-100 by default) silently, and
        # reports others out of range as a bare IndexError: no label is ignored here,
        # and every bad one gets one clear error (found only once torch has failed,
        # so a good batch pays nothing for the check)
        if y_pred.dim() > 2:
            return self.per_sample(y_true, y_pred).mean()
        labels = _labels(y_true)
        try:
            if self.from_logits:
                return F.cross_entropy(y_pred, labels, ignore_index=_NO_IGNORED_LABEL)
            return F.nll_loss(self._log_p(y_pred), labels, ignore_index=_NO_IGNORED_LABEL)
        except (IndexError, RuntimeError) as e:
            error = _label_error(labels, y_pred)
            if error is None:
                raise
            raise error from e


#: an ignore_index no int64 label can be in range of: torch ignores no label then
_NO_IGNORED_LABEL = -(2**63)


def _label_error(labels: torch.Tensor, y_pred: torch.Tensor) -> ValueError | None:
    """The error naming a label out of range, or None when all are in range."""
    classes = y_pred.shape[-1]
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.numel() == 0:
        return None
    return ValueError(
        f"labels must be class ids in [0, {classes}) for predictions of {classes} classes; "
        f"got {int(bad[0])} ({bad.numel()} of {labels.numel()} labels out of range)"
    )


class _UserFunction(Loss):
    """A user callable `fn(y_true, y_pred)` returning per-sample values or a scalar."""

    elementwise = False

    def __init__(self, fn: Callable[..., torch.Tensor], torch_order: bool = False) -> None:
        super().__init__(getattr(fn, "__name__", type(fn).__name__).lower())
        self.fn = fn
        self.torch_order = torch_order

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        values = self.fn(y_pred, y_true) if self.torch_order else self.fn(y_true, y_pred)
        if values.dim() == 0:
            return values.reshape(1).expand(y_pred.shape[0])
        return _reduce_last(values)

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        values = self.fn(y_pred, y_true) if self.torch_order else self.fn(y_true, y_pred)
        return values if values.dim() == 0 else values.mean()


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
