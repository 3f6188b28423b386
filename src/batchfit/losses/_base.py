"""The loss protocol: Keras' call convention and reductions over per-sample values."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Loss"]

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
    from batchfit.losses._classes import BinaryCrossentropy, CategoricalCrossentropy

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
