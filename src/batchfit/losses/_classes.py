"""Keras' loss classes over the functions of `_functions.py`, with Keras' arguments."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from batchfit.losses._base import (
    _EPS,
    Loss,
    _as_prediction,
    _as_target,
    _FunctionLoss,
    _labels,
    _shape,
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
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
]


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


def _axis_setting(axis: Any) -> Any:
    return list(axis) if isinstance(axis, (list, tuple)) else axis


class Dice(_FunctionLoss):
    """The Dice loss `1 - 2 |y_true * y_pred| / (|y_true| + |y_pred|)` (Keras 3's `Dice`).

    Args:
        axis: the axes summed; None (Keras' default) sums over the whole batch, one
            value; `(1, 2, 3)` for images gives one value per sample, then reduced.
    """

    name = "dice"
    fn = staticmethod(dice)

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        axis: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name, reduction, dtype, axis=_axis_setting(axis))


class Tversky(_FunctionLoss):
    """The Tversky loss (Salehi et al. 2017) with Keras 3's `alpha`/`beta` weighting.

    Args:
        alpha: weight of `sum((1 - y_pred) * y_true)`; beta: of `sum(y_pred * (1 - y_true))`.
        axis: as `Dice`'s.
    """

    name = "tversky"
    fn = staticmethod(tversky)

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        axis: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            name, reduction, dtype, alpha=float(alpha), beta=float(beta), axis=_axis_setting(axis)
        )
