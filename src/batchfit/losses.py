"""Keras loss names on torch functions; one place resolves names and checks shapes.

Every loss is called as `loss(y_true, y_pred, sample_weight=None)` (Keras
order) and returns the scalar Keras calls "sum over batch size": the mean of
per-sample losses, each multiplied by its weight when weights are given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Huber",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "get",
    "names",
]

_EPS = 1e-7
PerSample = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Loss:
    """A loss with Keras call convention and reduction.

    Subclasses implement `per_sample(y_true, y_pred)` (shape `(N,)`) and may
    override `mean(y_true, y_pred)` with a fused torch call for the unweighted
    case, which is the hot path.
    """

    name = "loss"
    #: targets are class indices (torch long) rather than floats
    sparse_targets = False
    #: targets must have the predictions' shape (after a trailing 1 is added)
    elementwise = True

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name

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
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        y_true = self.check_shapes(y_true, y_pred)
        if sample_weight is None:
            return self.mean(y_true, y_pred)
        values = self.per_sample(y_true, y_pred)
        return (values * sample_weight.reshape(values.shape)).sum() / values.shape[0]

    def get_config(self) -> dict[str, Any]:
        return {"class_name": type(self).__name__, "name": self.name}


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _hint(loss: Loss, y_true: torch.Tensor, y_pred: torch.Tensor) -> str:
    if isinstance(loss, CategoricalCrossentropy) and y_true.shape[-1:] == (1,):
        return "; for integer class labels use 'sparse_categorical_crossentropy'"
    if isinstance(loss, BinaryCrossentropy) and y_pred.dim() > 1 and y_pred.shape[-1] > 1:
        return "; for one-hot labels over several classes use 'categorical_crossentropy'"
    return ""


def _log_probabilities(y_pred: torch.Tensor) -> torch.Tensor:
    """log of probabilities rescaled to sum to one, then clipped, as Keras does."""
    y_pred = y_pred / y_pred.sum(dim=-1, keepdim=True)
    return torch.log(y_pred.clamp(_EPS, 1.0 - _EPS))


def _labels(y_true: torch.Tensor) -> torch.Tensor:
    return y_true if y_true.dtype == torch.int64 else y_true.long()


def _reduce_last(values: torch.Tensor) -> torch.Tensor:
    return values.mean(dim=-1) if values.dim() > 1 else values


class _Elementwise(Loss):
    """A loss computed element by element, then averaged over the last axis."""

    fn: Callable[..., torch.Tensor]

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return _reduce_last(self.fn(y_pred, y_true, reduction="none"))

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return self.fn(y_pred, y_true, reduction="mean")


class MeanSquaredError(_Elementwise):
    name = "mean_squared_error"
    fn = staticmethod(F.mse_loss)


class MeanAbsoluteError(_Elementwise):
    name = "mean_absolute_error"
    fn = staticmethod(F.l1_loss)


class Huber(Loss):
    """Huber loss with threshold `delta` (Keras default 1.0)."""

    name = "huber"

    def __init__(self, delta: float = 1.0, name: str | None = None) -> None:
        super().__init__(name)
        self.delta = float(delta)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return _reduce_last(F.huber_loss(y_pred, y_true, reduction="none", delta=self.delta))

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return F.huber_loss(y_pred, y_true, delta=self.delta)


class _Crossentropy(Loss):
    """Shared settings of the cross-entropies: logits or probabilities, label smoothing."""

    def __init__(
        self, from_logits: bool = False, label_smoothing: float = 0.0, name: str | None = None
    ) -> None:
        super().__init__(name)
        self.from_logits = from_logits
        self.label_smoothing = float(label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class BinaryCrossentropy(_Crossentropy):
    """Binary cross-entropy on probabilities, or on logits with `from_logits=True`."""

    name = "binary_crossentropy"

    def _elements(self, y_true: torch.Tensor, y_pred: torch.Tensor, reduction: str) -> torch.Tensor:
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            return F.binary_cross_entropy_with_logits(y_pred, y_true, reduction=reduction)
        return F.binary_cross_entropy(y_pred, y_true, reduction=reduction)

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return _reduce_last(self._elements(y_true, y_pred, "none"))

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return self._elements(y_true, y_pred, "mean")


class CategoricalCrossentropy(_Crossentropy):
    """Cross-entropy against one-hot (or soft) targets over the last axis."""

    name = "categorical_crossentropy"

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        if self.label_smoothing:
            classes = y_pred.shape[-1]
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        log_p = (
            torch.log_softmax(y_pred, dim=-1) if self.from_logits else _log_probabilities(y_pred)
        )
        return -(y_true * log_p).sum(dim=-1)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer class labels of shape `(N,)` or `(N, 1)`."""

    name = "sparse_categorical_crossentropy"
    sparse_targets = True
    elementwise = False

    def __init__(self, from_logits: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.from_logits = from_logits

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
        return {**super().get_config(), "from_logits": self.from_logits}

    def _log_p(self, y_pred: torch.Tensor) -> torch.Tensor:
        if self.from_logits:
            return torch.log_softmax(y_pred, dim=-1)
        return _log_probabilities(y_pred)

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        labels = _labels(y_true)
        try:
            return F.nll_loss(
                self._log_p(y_pred), labels, reduction="none", ignore_index=_NO_IGNORED_LABEL
            )
        except (IndexError, RuntimeError) as e:
            error = _label_error(labels, y_pred)
            if error is None:
                raise
            raise error from e

    def mean(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        # torch skips labels equal to `ignore_index` (-100 by default) silently, and
        # reports others out of range as a bare IndexError: no label is ignored here,
        # and every bad one gets one clear error (found only once torch has failed,
        # so a good batch pays nothing for the check)
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


class _PerSampleFunction(Loss):
    """A loss from a function returning element-wise values (Keras order)."""

    def __init__(self, fn: PerSample, name: str) -> None:
        super().__init__(name)
        self.fn = fn

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return _reduce_last(self.fn(y_true, y_pred))


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


def _mape(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return 100.0 * ((t - p).abs() / t.abs().clamp_min(_EPS))


def _msle(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return (torch.log1p(p.clamp_min(0)) - torch.log1p(t.clamp_min(0))) ** 2


def _log_cosh(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    d = p - t
    return d + F.softplus(-2.0 * d) - torch.log(torch.tensor(2.0, dtype=d.dtype, device=d.device))


def _hinge(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    t = torch.where(t == 0, -torch.ones_like(t), t)
    return (1.0 - t * p).clamp_min(0)


def _squared_hinge(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return _hinge(t, p) ** 2


def _poisson(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return p - t * torch.log(p + _EPS)


def _kl_divergence(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    t, p = t.clamp(_EPS, 1.0), p.clamp(_EPS, 1.0)
    return (t * torch.log(t / p)).sum(dim=-1, keepdim=True)


def _cosine_similarity(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return -F.cosine_similarity(t, p, dim=-1, eps=1e-12).unsqueeze(-1)


_FACTORIES: dict[str, Callable[[], Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mean_absolute_percentage_error": lambda: _PerSampleFunction(
        _mape, "mean_absolute_percentage_error"
    ),
    "mean_squared_logarithmic_error": lambda: _PerSampleFunction(
        _msle, "mean_squared_logarithmic_error"
    ),
    "huber": Huber,
    "log_cosh": lambda: _PerSampleFunction(_log_cosh, "log_cosh"),
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "hinge": lambda: _PerSampleFunction(_hinge, "hinge"),
    "squared_hinge": lambda: _PerSampleFunction(_squared_hinge, "squared_hinge"),
    "poisson": lambda: _PerSampleFunction(_poisson, "poisson"),
    "kl_divergence": lambda: _PerSampleFunction(_kl_divergence, "kl_divergence"),
    "cosine_similarity": lambda: _PerSampleFunction(_cosine_similarity, "cosine_similarity"),
}

_ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "logcosh": "log_cosh",
    "huber_loss": "huber",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
}

_CLASS_NAMES = {
    "BinaryCrossentropy": BinaryCrossentropy,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "MeanSquaredError": MeanSquaredError,
    "MeanAbsoluteError": MeanAbsoluteError,
    "Huber": Huber,
}


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
        cls = _CLASS_NAMES.get(str(config.pop("class_name", "")))
        if cls is None:
            return get(str(config.get("name", "")))
        return cls(**config)
    if isinstance(identifier, str):
        factory = _FACTORIES.get(canonical_name(identifier))
        if factory is None:
            raise ValueError(f"unknown loss {identifier!r}; valid names: {', '.join(names())}")
        return factory()
    if isinstance(identifier, nn.Module):
        return _UserFunction(identifier, torch_order=True)
    if callable(identifier):
        return _UserFunction(identifier)
    raise TypeError(f"loss must be a name, a Loss or a callable, got {type(identifier).__name__}")
