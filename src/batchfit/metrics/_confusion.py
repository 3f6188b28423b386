"""Metrics from binary confusion counts at thresholds: TP/FP/TN/FN, precision,
recall, the "X at Y" metrics, and AUC (ROC, PR, PR gain; one or many labels).

A prediction is positive when it is strictly above a threshold, a target when
it is non-zero (Keras casts targets to bool). Counts (and AUC's histograms over
thresholds) add, so batches and ranks merge exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from batchfit.metrics._base import Metric, as_tensor

__all__ = [
    "AUC",
    "FalseNegatives",
    "FalsePositives",
    "Precision",
    "PrecisionAtRecall",
    "Recall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "TrueNegatives",
    "TruePositives",
]

_NEG_INF = -1e10  # Keras' threshold below every kept prediction
_COUNTS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


def _divide_no_nan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b == 0, torch.zeros_like(a), a / torch.where(b == 0, torch.ones_like(b), b))


class _ConfusionCounts(Metric):
    """The four confusion counts at each threshold, with Keras' `top_k` and `class_id`."""

    def __init__(
        self,
        thresholds: float | Sequence[float] | None,
        name: str | None,
        dtype: Any,
        top_k: int | None = None,
        class_id: int | None = None,
    ) -> None:
        super().__init__(name, dtype)
        self._scalar = thresholds is None or isinstance(thresholds, (int, float))
        if thresholds is None:
            # Keras: with top_k, every one of the k highest predictions counts as positive
            values = [0.5 if top_k is None else _NEG_INF]
        else:
            values = (
                [float(thresholds)]  # type: ignore[arg-type]
                if self._scalar
                else [float(t) for t in thresholds]  # type: ignore[union-attr]
            )
            for t in values:
                if not 0.0 <= t <= 1.0:
                    raise ValueError(
                        f"thresholds must be in [0, 1], got {t} in {type(self).__name__}"
                    )
        self.thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self._threshold_values = torch.tensor(values, dtype=torch.float64)
        for state in _COUNTS:
            self.add_state(state, (len(values),))

    def to(self, device: torch.device) -> _ConfusionCounts:
        super().to(device)
        self._threshold_values = self._threshold_values.to(device, self._states[_COUNTS[0]].dtype)
        return self

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = as_tensor(y_pred).detach()
        y_true = as_tensor(y_true, y_pred).to(y_pred.device)
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        if self.top_k is not None:
            kth = y_pred.topk(min(self.top_k, y_pred.shape[-1]), dim=-1).values[..., -1:]
            y_pred = torch.where(y_pred >= kth, y_pred, torch.full_like(y_pred, 2 * _NEG_INF))
        if self.class_id is not None:
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
        dtype = self._threshold_values.dtype
        rows = y_pred.shape[0] if y_pred.dim() else 1
        pred = y_pred.reshape(rows, -1).to(dtype)
        true = (y_true.reshape(rows, -1) != 0).to(dtype)
        if sample_weight is None:
            w = torch.ones_like(pred)
        else:
            w = as_tensor(sample_weight, pred).to(pred.device, dtype)
            w = w.reshape(-1, 1).expand_as(pred) if w.numel() == rows else w.reshape(pred.shape)
        above = (pred.reshape(-1, 1) > self._threshold_values).to(dtype)  # (elements, thresholds)
        pos, neg = (true * w).reshape(-1, 1), ((1 - true) * w).reshape(-1, 1)
        s = self._states
        s["true_positives"].add_((above * pos).sum(0))
        s["false_positives"].add_((above * neg).sum(0))
        s["false_negatives"].add_(((1 - above) * pos).sum(0))
        s["true_negatives"].add_(((1 - above) * neg).sum(0))

    def _out(self, value: torch.Tensor) -> torch.Tensor:
        return value[0] if self._scalar else value

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.thresholds}


def _count_class(state: str, doc: str) -> type:
    def __init__(
        self: _ConfusionCounts,
        thresholds: float | Sequence[float] | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        _ConfusionCounts.__init__(self, thresholds, name, dtype)

    def result(self: _ConfusionCounts) -> torch.Tensor:
        return self._out(self._states[state].clone())

    class_name = "".join(part.title() for part in state.split("_"))
    return type(
        class_name, (_ConfusionCounts,), {"__init__": __init__, "result": result, "__doc__": doc}
    )


TruePositives = _count_class("true_positives", "The (weighted) count of true positives.")
FalsePositives = _count_class("false_positives", "The (weighted) count of false positives.")
TrueNegatives = _count_class("true_negatives", "The (weighted) count of true negatives.")
FalseNegatives = _count_class("false_negatives", "The (weighted) count of false negatives.")


class _PrecisionRecallBase(_ConfusionCounts):
    def __init__(
        self,
        thresholds: float | Sequence[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(thresholds, name, dtype, top_k, class_id)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecallBase):
    """Fraction of positive predictions that are right: tp / (tp + fp) (threshold 0.5)."""

    def result(self) -> torch.Tensor:
        s = self._states
        tp = s["true_positives"]
        return self._out(_divide_no_nan(tp, tp + s["false_positives"]))


class Recall(_PrecisionRecallBase):
    """Fraction of positives predicted positive: tp / (tp + fn) (threshold 0.5)."""

    def result(self) -> torch.Tensor:
        s = self._states
        tp = s["true_positives"]
        return self._out(_divide_no_nan(tp, tp + s["false_negatives"]))


class _AtValue(_ConfusionCounts):
    """Counts at `num_thresholds` evenly spaced thresholds in [0, 1] (Keras' base of "X at Y")."""

    _value_name = "value"

    def __init__(
        self,
        value: float,
        num_thresholds: int = 200,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(
                f"{self._value_name} must be in [0, 1], got {value} in {type(self).__name__}"
            )
        if int(num_thresholds) <= 0:
            raise ValueError(f"num_thresholds must be an integer > 0, got {num_thresholds}")
        n = int(num_thresholds)
        thresholds = [0.5] if n == 1 else [i / (n - 1) for i in range(n)]
        super().__init__(thresholds, name, dtype, None, class_id)
        self.value = float(value)
        self.num_thresholds = n

    def _rates(self) -> dict[str, torch.Tensor]:
        s = self._states
        tp, fp, tn, fn = (s[k] for k in _COUNTS)
        return {
            "sensitivity": _divide_no_nan(tp, tp + fn),
            "specificity": _divide_no_nan(tn, tn + fp),
            "precision": _divide_no_nan(tp, tp + fp),
        }

    def _max_where(self, constrained: torch.Tensor, dependent: torch.Tensor) -> torch.Tensor:
        """The largest `dependent` where `constrained >= value`, else 0."""
        feasible = constrained >= self.value
        return torch.where(feasible, dependent, torch.zeros_like(dependent)).max().clamp_min(0)

    def get_config(self) -> dict[str, Any]:
        config = Metric.get_config(self)
        return {
            **config,
            self._value_name: self.value,
            "num_thresholds": self.num_thresholds,
            "class_id": self.class_id,
        }


class SensitivityAtSpecificity(_AtValue):
    """The best sensitivity (recall) at a specificity of at least `specificity`."""

    _value_name = "specificity"

    def __init__(self, specificity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_where(r["specificity"], r["sensitivity"])


class SpecificityAtSensitivity(_AtValue):
    """The best specificity at a sensitivity (recall) of at least `sensitivity`."""

    _value_name = "sensitivity"

    def __init__(self, sensitivity: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_where(r["sensitivity"], r["specificity"])


class PrecisionAtRecall(_AtValue):
    """The best precision at a recall of at least `recall`."""

    _value_name = "recall"

    def __init__(self, recall: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_where(r["sensitivity"], r["precision"])


class RecallAtPrecision(_AtValue):
    """The best recall at a precision of at least `precision`."""

    _value_name = "precision"

    def __init__(self, precision: float, num_thresholds: int = 200, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:  # fmt: skip
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_where(r["precision"], r["sensitivity"])


class AUC(Metric):
    """Area under the ROC or precision-recall curve from counts at `num_thresholds`
    thresholds, as Keras 3 computes it.

    Predictions are counted in histograms over threshold buckets (one per label
    with `multi_label=True`); suffix sums give true/false positives at each
    threshold. Histograms add, so batches and ranks merge exactly.

    Args:
        num_thresholds: thresholds `[-1e-7, 1/(n-1), ..., 1 + 1e-7]` (Keras' default 200).
        thresholds: increasing thresholds in [0, 1] to use instead (Keras adds -1e-7 and
            1 + 1e-7 around them).
        curve: "ROC", "PR" (precision-recall) or "PRGAIN" (precision-recall gain).
        summation_method: "interpolation" (trapezoids; for PR, Davis & Goadrich's
            interpolation of precision between thresholds, Keras' `interpolate_pr_auc`),
            "minoring" (left-or-right lower heights) or "majoring" (upper heights).
        multi_label: one curve per label column (the mean of the AUCs, weighted by
            `label_weights` when given) rather than one over every column flattened.
        num_labels: the label count with `multi_label` (else read from the first batch).
        label_weights: one weight per label: with `multi_label`, of each label's AUC
            in the mean; without, of each column's counts.
        from_logits: apply a sigmoid to the predictions first.
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ) -> None:
        super().__init__(name or "auc", dtype)
        self.thresholds = None if thresholds is None else [float(t) for t in thresholds]
        if self.thresholds is not None:
            if any(not 0.0 <= t <= 1.0 for t in self.thresholds) or self.thresholds != sorted(
                self.thresholds
            ):
                raise ValueError(
                    f"AUC thresholds must be increasing values in [0, 1], got {thresholds!r}"
                )
            num_thresholds = len(self.thresholds) + 2  # Keras adds the two end points
        if num_thresholds < 2:
            raise ValueError(f"num_thresholds must be at least 2, got {num_thresholds}")
        self.curve = str(curve).upper()
        if self.curve not in ("ROC", "PR", "PRGAIN"):
            raise ValueError(f"curve must be 'ROC', 'PR' or 'PRGAIN', got {curve!r}")
        self.summation_method = str(summation_method).lower()
        if self.summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                "summation_method must be 'interpolation', 'minoring' or 'majoring', got "
                f"{summation_method!r}"
            )
        self.num_thresholds = num_thresholds
        self.multi_label = bool(multi_label)
        self.num_labels = None if num_labels is None else int(num_labels)
        self.label_weights = (
            None
            if label_weights is None
            else torch.as_tensor(label_weights, dtype=torch.float64).reshape(-1)
        )
        self.from_logits = bool(from_logits)
        if self.thresholds is None:
            inner = torch.arange(1, num_thresholds - 1, dtype=torch.float64) / (num_thresholds - 1)
        else:
            inner = torch.tensor(self.thresholds, dtype=torch.float64)
        self._thresholds = torch.cat(
            [torch.tensor([-1e-7], dtype=torch.float64), inner, torch.tensor([1 + 1e-7])]
        )
        if not self.multi_label:
            self._add_histograms(())
        elif self.num_labels is not None:
            self._add_histograms((self.num_labels,))

    def _add_histograms(self, labels: tuple[int, ...]) -> None:
        self.add_state("positives", (self.num_thresholds + 1, *labels))
        self.add_state("negatives", (self.num_thresholds + 1, *labels))

    def build(self, y_true: Any, y_pred: Any) -> None:
        if "positives" in self._states or y_pred is None:
            return
        y_pred = as_tensor(y_pred)
        if y_pred.dim() != 2:
            raise ValueError(
                f"AUC(multi_label=True) expects predictions (batch, labels), got shape "
                f"{tuple(y_pred.shape)}"
            )
        self.num_labels = int(y_pred.shape[1])
        self._add_histograms((self.num_labels,))
        self.to(y_pred.device)

    def to(self, device: torch.device) -> AUC:
        super().to(device)
        dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
        self._thresholds = self._thresholds.to(device, dtype)
        if self.label_weights is not None:
            self.label_weights = self.label_weights.to(device, dtype)
        return self

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = as_tensor(y_pred).detach()
        if self.from_logits:
            y_pred = torch.sigmoid(y_pred)
        if "positives" not in self._states:
            self.build(y_true, y_pred)
        y_true = as_tensor(y_true, y_pred).to(y_pred.device)
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        pred = y_pred.to(self._thresholds.dtype)
        true = (y_true.reshape(pred.shape) != 0).to(pred.dtype)
        w = torch.ones_like(pred)
        if sample_weight is not None:
            sw = as_tensor(sample_weight, pred).to(pred.dtype)
            w = w * sw.reshape(sw.shape + (1,) * (pred.dim() - sw.dim()))
        if self.label_weights is not None and not self.multi_label:
            w = w * self.label_weights.to(pred.device, pred.dtype)
        size = self.num_thresholds + 1
        # bucket b holds predictions in (thresholds[b-1], thresholds[b]]
        bucket = torch.bucketize(pred, self._thresholds).clamp_max(self.num_thresholds)
        s = self._states
        if self.multi_label:
            labels = pred.shape[-1]
            if labels != self.num_labels:
                raise ValueError(
                    f"AUC(multi_label=True) was built for {self.num_labels} labels, got "
                    f"predictions of shape {tuple(pred.shape)}"
                )
            bucket = bucket + size * torch.arange(labels, device=pred.device)
            size *= labels
        for key, weights in (("positives", w * true), ("negatives", w * (1 - true))):
            counts = torch.bincount(bucket.reshape(-1), weights.reshape(-1), minlength=size)
            if self.multi_label:
                counts = counts.reshape(-1, self.num_thresholds + 1).t()
            s[key].add_(counts)

    def _counts(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """TP, FP, TN, FN at each threshold (predictions strictly above it are positive)."""
        s = self._states
        tp = s["positives"].flip(0).cumsum(0).flip(0)[1:]
        fp = s["negatives"].flip(0).cumsum(0).flip(0)[1:]
        fn = s["positives"].sum(0) - tp
        tn = s["negatives"].sum(0) - fp
        return tp, fp, tn, fn

    def _by_label(self, terms: torch.Tensor) -> torch.Tensor:
        if not self.multi_label:
            return terms.sum()
        by_label = terms.sum(0)
        if self.label_weights is None:
            return by_label.mean()
        weights = self.label_weights.to(by_label.device, by_label.dtype)
        return _divide_no_nan((by_label * weights).sum(), weights.sum())

    def _interpolated_pr(self, tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> Any:
        """Keras' `interpolate_pr_auc`: precision varies as TP and P = TP + FP vary linearly
        between thresholds (Davis & Goadrich 2006), integrated in closed form."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, dp.clamp_min(0))
        intercept = tp[1:] - slope * p[1:]
        ratio = torch.where(
            (p[:-1] > 0) & (p[1:] > 0),
            _divide_no_nan(p[:-1], p[1:].clamp_min(0)),
            torch.ones_like(p[1:]),
        )
        increments = _divide_no_nan(
            slope * (dtp + intercept * torch.log(ratio)), (tp[1:] + fn[1:]).clamp_min(0)
        )
        return self._by_label(increments)

    def result(self) -> torch.Tensor:
        if "positives" not in self._states:
            return torch.tensor(0.0, dtype=torch.float64)
        tp, fp, tn, fn = self._counts()
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolated_pr(tp, fp, fn)
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scale = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scale * _divide_no_nan(fn, tp)
            precision_gain = 1.0 - scale * _divide_no_nan(fp, tp)
            x = torch.where(tp == 0, torch.zeros_like(tp), recall_gain).clamp_min(0.0)
            y = torch.where(tp == 0, torch.ones_like(tp), precision_gain)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = torch.minimum(y[:-1], y[1:])
        else:
            heights = torch.maximum(y[:-1], y[1:])
        return self._by_label((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
            "from_logits": self.from_logits,
            **({} if self.thresholds is None else {"thresholds": list(self.thresholds)}),
        }
