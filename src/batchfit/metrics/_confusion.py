"""Metrics from binary confusion counts: precision, recall and ROC AUC.

Counts (and AUC's histograms over thresholds) add, so batches and ranks merge
exactly.
"""

from __future__ import annotations

import torch

from batchfit.metrics._base import Metric

__all__ = ["AUC", "Precision", "Recall"]


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
