"""Keras' element-wise metric functions (accuracies), in Keras' argument order.

Accuracies return booleans: summing them is exact and skips a cast per batch
(`Mean` casts when weights come).
"""

from __future__ import annotations

from typing import Any

import torch

from batchfit.metrics._base import as_tensor

__all__ = [
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "top_k_categorical_accuracy",
]


def _pair(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
    y_pred = as_tensor(y_pred)
    return as_tensor(y_true, y_pred).to(y_pred.device), y_pred


def _squeeze_labels(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
    return y_true


def accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """y_true == y_pred, element by element."""
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    return y_true == y_pred.to(y_true.dtype)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> torch.Tensor:
    """y_true == (y_pred > threshold), element by element."""
    y_true, y_pred = _pair(y_true, y_pred)
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    return y_true == (y_pred > threshold).to(y_true.dtype)


def categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """argmax(y_true) == argmax(y_pred) per sample (one-hot targets)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return y_pred.argmax(-1) == y_true.argmax(-1)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """y_true == argmax(y_pred) per sample (integer targets)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return y_pred.argmax(-1) == _squeeze_labels(y_true, y_pred).long()


def _in_top_k(labels: torch.Tensor, y_pred: torch.Tensor, k: int) -> torch.Tensor:
    """Whether each label's score is among the k largest (ties count in, as Keras' torch)."""
    k = min(int(k), y_pred.shape[-1])
    kth = y_pred.topk(k, dim=-1).values[..., -1:]
    return y_pred.gather(-1, labels.long().unsqueeze(-1)) >= kth


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> torch.Tensor:
    """Whether argmax(y_true) is among the k highest predictions."""
    y_true, y_pred = _pair(y_true, y_pred)
    return _in_top_k(y_true.argmax(-1), y_pred, k).squeeze(-1)


def sparse_top_k_categorical_accuracy(
    y_true: Any, y_pred: Any, k: int = 5, from_sorted_ids: bool = False
) -> torch.Tensor:
    """Whether the integer label is among the k highest predictions.

    With `from_sorted_ids=True`, `y_pred` holds class ids sorted by score.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    labels = _squeeze_labels(y_true, y_pred).long()
    if from_sorted_ids:
        return (y_pred[..., : int(k)].long() == labels.unsqueeze(-1)).any(-1)
    return _in_top_k(labels, y_pred, k).squeeze(-1)
