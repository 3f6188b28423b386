"""Keras' loss functions: `fn(y_true, y_pred)` -> one value per sample (the last axis reduced).

Each follows the formula of Keras 3 (`keras/src/losses/losses.py` and the
torch backend), including where it clips probabilities to
`[1e-7, 1 - 1e-7]`, so the numbers match Keras'. Targets are cast to the
predictions' dtype; NumPy arrays and lists are accepted.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "cosine_similarity",
    "dice",
    "hinge",
    "huber",
    "kl_divergence",
    "log_cosh",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mean_squared_logarithmic_error",
    "poisson",
    "sparse_categorical_crossentropy",
    "squared_hinge",
    "tversky",
]

EPSILON = 1e-7  # keras.config.epsilon()


def _pair(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors of one float dtype, the targets given a trailing 1 to match `(N, 1)`."""
    if not isinstance(y_pred, torch.Tensor):
        y_pred = torch.as_tensor(y_pred, dtype=torch.float32)
    if not y_pred.is_floating_point():
        y_pred = y_pred.float()
    y_true = torch.as_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    elif y_pred.dim() == y_true.dim() - 1 and y_true.shape[-1] == 1:
        y_pred = y_pred.unsqueeze(-1)
    return y_true, y_pred


def mean_squared_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean((y_pred - y_true)^2) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ((y_pred - y_true) ** 2).mean(dim=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean(|y_pred - y_true|) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return (y_pred - y_true).abs().mean(dim=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """100 * mean(|y_true - y_pred| / max(|y_true|, epsilon)) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return 100.0 * ((y_true - y_pred).abs() / y_true.abs().clamp_min(EPSILON)).mean(dim=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    first = torch.log(y_pred.clamp_min(EPSILON) + 1.0)
    second = torch.log(y_true.clamp_min(EPSILON) + 1.0)
    return ((first - second) ** 2).mean(dim=-1)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> torch.Tensor:
    """0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta); mean over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return F.huber_loss(y_pred, y_true, reduction="none", delta=float(delta)).mean(dim=-1)


def log_cosh(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean(log(cosh(y_pred - y_true))) over the last axis, computed without overflow."""
    y_true, y_pred = _pair(y_true, y_pred)
    d = y_pred - y_true
    return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean(dim=-1)


def binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary cross-entropy, mean over `axis`; probabilities clipped to [eps, 1 - eps]."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return _bce(y_true, y_pred, from_logits).mean(dim=axis)


def _bce(y_true: torch.Tensor, y_pred: torch.Tensor, from_logits: bool) -> torch.Tensor:
    if from_logits:
        return F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    return F.binary_cross_entropy(y_pred.clamp(EPSILON, 1.0 - EPSILON), y_true, reduction="none")


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """(1 - p_t)^gamma * bce (times alpha/1 - alpha when balancing), mean over `axis`."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    bce = _bce(y_true, y_pred, False)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal = (1.0 - p_t) ** gamma * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal
    return focal.mean(dim=axis)


def _log_probabilities(y_pred: torch.Tensor, from_logits: bool, axis: int) -> torch.Tensor:
    """Keras' log of the predictions: log_softmax of logits, else rescaled, clipped, log."""
    if from_logits:
        return torch.log_softmax(y_pred, dim=axis)
    y_pred = y_pred / y_pred.sum(dim=axis, keepdim=True)
    return torch.log(y_pred.clamp(EPSILON, 1.0 - EPSILON))


def categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """-sum(y_true * log(p)) over `axis`, against one-hot or soft targets."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[axis]
    return -(y_true * _log_probabilities(y_pred, from_logits, axis)).sum(dim=axis)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """sum(alpha (1 - p)^gamma * -y_true log(p)) over `axis` (p rescaled and clipped)."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    output = (y_pred / y_pred.sum(dim=axis, keepdim=True)).clamp(EPSILON, 1.0 - EPSILON)
    cce = -y_true * torch.log(output)
    return (alpha * (1.0 - output) ** gamma * cce).sum(dim=axis)


def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> torch.Tensor:
    """-log(p[label]) per sample; labels equal to `ignore_class` give 0."""
    if not isinstance(y_pred, torch.Tensor):
        y_pred = torch.as_tensor(y_pred, dtype=torch.float32)
    labels = torch.as_tensor(y_true, device=y_pred.device)
    if labels.dim() == y_pred.dim() and labels.shape[-1] == 1:
        labels = labels.squeeze(-1)
    labels = labels.long()
    log_p = _log_probabilities(y_pred, from_logits, axis)
    if ignore_class is None:
        return -log_p.gather(axis, labels.unsqueeze(axis)).squeeze(axis)
    valid = labels != ignore_class
    picked = -log_p.gather(axis, (labels * valid).unsqueeze(axis)).squeeze(axis)
    return picked * valid


def kl_divergence(y_true: Any, y_pred: Any) -> torch.Tensor:
    """sum(y_true * log(y_true / y_pred)) over the last axis, both clipped to [eps, 1]."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = y_true.clamp(EPSILON, 1.0), y_pred.clamp(EPSILON, 1.0)
    return (y_true * torch.log(y_true / y_pred)).sum(dim=-1)


def poisson(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean(y_pred - y_true * log(y_pred + eps)) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return (y_pred - y_true * torch.log(y_pred + EPSILON)).mean(dim=-1)


def _l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    return x / (x * x).sum(dim=axis, keepdim=True).clamp_min(1e-12).sqrt()


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """The loss: minus the cosine similarity over `axis` (-1 means the same direction)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return -(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis)).sum(dim=axis)


def _hinge_labels(y_true: torch.Tensor) -> torch.Tensor:
    """Labels 0/1 become -1/1 (only when every label is 0 or 1, as Keras)."""
    is_binary = ((y_true == 0) | (y_true == 1)).all()
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean(max(1 - y_true * y_pred, 0)) over the last axis, labels -1/1 (or 0/1)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return (1.0 - _hinge_labels(y_true) * y_pred).clamp_min(0).mean(dim=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """mean(max(1 - y_true * y_pred, 0)^2) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    return ((1.0 - _hinge_labels(y_true) * y_pred).clamp_min(0) ** 2).mean(dim=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)."""
    y_true, y_pred = _pair(y_true, y_pred)
    pos = (y_true * y_pred).sum(dim=-1)
    neg = ((1.0 - y_true) * y_pred).max(dim=-1).values
    return (neg - pos + 1.0).clamp_min(0)


Axes = int | tuple[int, ...] | list[int] | None


def _axes(axis: Axes) -> Any:
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _sum(x: torch.Tensor, axis: Axes) -> torch.Tensor:
    return x.sum() if axis is None else x.sum(dim=_axes(axis))


def dice(y_true: Any, y_pred: Any, axis: Axes = None) -> torch.Tensor:
    """`1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps)`, summed over `axis`.

    As Keras 3's `dice`: with `axis=None` (the default) the sums run over the whole
    batch and the loss is one scalar; `axis=(1, 2, 3)` gives one value per sample.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    intersection = _sum(y_true * y_pred, axis)
    return 1 - 2.0 * intersection / (_sum(y_true, axis) + _sum(y_pred, axis) + EPSILON)


def tversky(
    y_true: Any, y_pred: Any, alpha: float = 0.5, beta: float = 0.5, axis: Axes = None
) -> torch.Tensor:
    """`1 - TP / (TP + alpha * sum((1 - y_pred) * y_true) + beta * sum(y_pred * (1 - y_true))
    + eps)`, Keras 3's formula and weighting (alpha=beta=0.5 is the Dice loss), summed
    over `axis` (None: the whole batch, one scalar)."""
    y_true, y_pred = _pair(y_true, y_pred)
    intersection = _sum(y_true * y_pred, axis)
    missed = _sum((1 - y_pred) * y_true, axis)
    extra = _sum(y_pred * (1 - y_true), axis)
    return 1 - intersection / (intersection + missed * alpha + extra * beta + EPSILON)
