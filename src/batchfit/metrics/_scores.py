"""F-scores and intersection-over-union, from per-class counts (sums, so they merge)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from batchfit.metrics._base import Metric, as_tensor

__all__ = ["F1Score", "FBetaScore", "IoU", "MeanIoU"]

_EPSILON = 1e-7


class FBetaScore(Metric):
    """F-beta per class from thresholded predictions, averaged as Keras does.

    Args:
        average: None (one score per class), "micro" (counts over all classes),
            "macro" (mean of the class scores) or "weighted" (weighted by support).
        beta: weight of recall against precision.
        threshold: predictions above it are positive; None takes each row's
            largest prediction as its positive class.
    """

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str = "fbeta_score",
        dtype: Any = None,
    ) -> None:
        super().__init__(name, dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                f"average must be None, 'micro', 'macro' or 'weighted', got {average!r}"
            )
        if not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(f"beta must be a float > 0, got {beta!r}")
        if threshold is not None and not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        self._device: torch.device | None = None

    def to(self, device: torch.device) -> FBetaScore:
        self._device = device
        super().to(device)
        return self

    def build(self, y_true: Any, y_pred: Any) -> None:
        if "true_positives" in self._states or y_true is None:
            return
        y_true = as_tensor(y_true)
        size = () if self.average == "micro" else (y_true.shape[-1] if y_true.dim() > 1 else 1,)
        for key in ("true_positives", "false_positives", "false_negatives", "support"):
            self.add_state(key, size)
        self.to(self._device or y_true.device)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = as_tensor(y_pred).detach()
        y_true = as_tensor(y_true, y_pred).to(y_pred.device)
        if y_true.dim() == 1 and y_pred.dim() == 2 and y_pred.shape[1] == 1:
            y_true = y_true.unsqueeze(-1)
        if y_pred.dim() != 2 or y_true.shape != y_pred.shape:
            raise ValueError(
                f"{type(self).__name__} expects 2-D targets and predictions of one shape "
                f"(samples, classes); got y_true {tuple(y_true.shape)}, "
                f"y_pred {tuple(y_pred.shape)}"
            )
        self.build(y_true, y_pred)
        dtype = self._states["true_positives"].dtype
        if self.threshold is None:
            top = y_pred.max(dim=-1, keepdim=True).values
            pred = (y_pred >= top) & (y_pred.abs() > 1e-9)
        else:
            pred = y_pred > self.threshold
        pred, true = pred.to(dtype), y_true.to(dtype)
        w = (
            None
            if sample_weight is None
            else as_tensor(sample_weight, true).to(dtype).reshape(-1, 1)
        )
        dims: tuple[int, ...] = (0, 1) if self.average == "micro" else (0,)

        def weighted_sum(value: torch.Tensor) -> torch.Tensor:
            return (value if w is None else value * w).sum(dim=dims)

        s = self._states
        s["true_positives"].add_(weighted_sum(pred * true))
        s["false_positives"].add_(weighted_sum(pred * (1 - true)))
        s["false_negatives"].add_(weighted_sum((1 - pred) * true))
        s["support"].add_(weighted_sum(true))

    def result(self) -> torch.Tensor:
        s = self._states
        if "true_positives" not in s:
            return torch.zeros((), dtype=torch.float64)
        tp = s["true_positives"]
        precision = tp / (tp + s["false_positives"] + _EPSILON)
        recall = tp / (tp + s["false_negatives"] + _EPSILON)
        b2 = self.beta**2
        score = precision * recall / (b2 * precision + recall + _EPSILON) * (1 + b2)
        if self.average == "weighted":
            weights = s["support"] / (s["support"].sum() + _EPSILON)
            return (score * weights).sum()
        if self.average is not None:
            return score.mean()
        return score

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """F-beta with beta = 1: the harmonic mean of precision and recall."""

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str = "f1_score",
        dtype: Any = None,
    ) -> None:
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


class _IoUBase(Metric):
    """A `num_classes` x `num_classes` confusion matrix (rows: targets, columns: predictions)."""

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        super().__init__(name, dtype)
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.ignore_class = ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        self.add_state("total_cm", (self.num_classes, self.num_classes))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = as_tensor(y_pred).detach()
        y_true = as_tensor(y_true).to(y_pred.device)
        if not self.sparse_y_pred:
            y_pred = y_pred.argmax(dim=self.axis)
        if not self.sparse_y_true:
            y_true = y_true.argmax(dim=self.axis)
        true, pred = y_true.reshape(-1).long(), y_pred.reshape(-1).long()
        cm = self._states["total_cm"]
        w = (
            torch.ones(true.shape, dtype=cm.dtype, device=cm.device)
            if sample_weight is None
            else as_tensor(sample_weight).to(cm.device, cm.dtype).reshape(-1)
        )
        if w.numel() != true.numel():
            w = w.repeat_interleave(true.numel() // max(w.numel(), 1))
        keep = (true >= 0) & (true < self.num_classes) & (pred >= 0) & (pred < self.num_classes)
        if self.ignore_class is not None:
            keep &= true != self.ignore_class
        index = true[keep] * self.num_classes + pred[keep]
        counts = torch.bincount(index, w[keep].to(cm.device), minlength=self.num_classes**2)
        cm.add_(counts.reshape(self.num_classes, self.num_classes).to(cm.dtype))

    def _ious(self) -> tuple[torch.Tensor, torch.Tensor]:
        cm = self._states["total_cm"]
        tp = cm.diagonal()
        denominator = cm.sum(0) + cm.sum(1) - tp
        iou = torch.where(denominator == 0, torch.zeros_like(tp), tp / denominator.clamp_min(1e-12))
        return iou, denominator

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }


class MeanIoU(_IoUBase):
    """Mean intersection-over-union over the classes that occur (targets or predictions).

    Targets and predictions are class ids (`sparse_y_*=False`: take the argmax).
    """

    def result(self) -> torch.Tensor:
        iou, denominator = self._ious()
        valid = (denominator != 0).sum()
        return iou.sum() / valid.clamp_min(1)


class IoU(_IoUBase):
    """Mean intersection-over-union over `target_class_ids`."""

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        super().__init__(num_classes, name, dtype, ignore_class, sparse_y_true, sparse_y_pred, axis)
        ids = [int(i) for i in target_class_ids]
        if not ids or max(ids) >= self.num_classes or min(ids) < 0:
            raise ValueError(
                f"target_class_ids must be class ids in [0, {self.num_classes}), got {ids}"
            )
        self.target_class_ids = ids

    def result(self) -> torch.Tensor:
        iou, denominator = self._ious()
        ids = torch.tensor(self.target_class_ids, device=iou.device)
        valid = (denominator[ids] != 0).sum()
        return iou[ids].sum() / valid.clamp_min(1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "target_class_ids": self.target_class_ids}
