"""Keras' metric classes (constructor arguments, config, standalone use) and Keras 3's
unweighted compiled metrics, against NumPy transcriptions of Keras' formulas.

The string names go through the contract table of `test_metrics.py`; here are
the arguments those names cannot carry. Figures marked "Keras 3.15.1" were
obtained by running the same program under /work/keras-venv
(`KERAS_BACKEND=torch`, torch 2.13.0); `benchmarks/keras_metric_parity.py`
reruns the class table there and prints the largest difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from batchfit import metrics
from batchfit.layers import Dense, Input
from batchfit.models import Sequential, load_model

N = 30


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).astype(np.float64)


def data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Small seeded data of one kind, float32-representable."""
    rng = _rng(seed)
    if kind == "binary":
        p = _f32(rng.uniform(0.01, 0.99, (N, 1)))
        return (rng.uniform(0, 1, (N, 1)) < p).astype(np.float64), p
    if kind == "multilabel":
        return rng.integers(0, 2, (N, 3)).astype(np.float64), _f32(rng.uniform(0.01, 0.99, (N, 3)))
    if kind == "logits":
        return rng.integers(0, 2, (N, 3)).astype(np.float64), _f32(rng.normal(0, 2, (N, 3)))
    if kind == "categorical":
        return np.eye(5)[rng.integers(0, 5, N)], _f32(_softmax(rng.normal(0, 1.5, (N, 5))))
    if kind == "sparse":
        return rng.integers(0, 5, N), _f32(_softmax(rng.normal(0, 1.5, (N, 5))))
    if kind == "regression":
        t = _f32(rng.normal(1.0, 1.0, (N, 2)))
        return t, _f32(t + rng.normal(0, 0.7, (N, 2)))
    if kind == "segmentation":  # class ids, 3 classes
        return rng.integers(0, 3, (N, 4)), rng.integers(0, 3, (N, 4))
    raise AssertionError(kind)


def weights(seed: int = 5) -> np.ndarray:
    w = _f32(_rng(seed).uniform(0, 2, N))
    w[::6] = 0.0
    return w


def _wmean(values: np.ndarray, w: np.ndarray | None) -> float:
    return float(values.mean() if w is None else (values * w).sum() / w.sum())


# -- NumPy references of Keras' formulas ----------------------------------------------------------
EPS = 1e-7


def np_counts(t, p, w, thresholds, top_k=None, class_id=None):
    """tp, fp, tn, fn at each threshold; positives are non-zero targets (Keras casts to bool)."""
    if top_k is not None:
        kth = np.sort(p, axis=-1)[..., -top_k][..., None]
        p = np.where(p >= kth, p, -np.inf)
        thresholds = [-1e10] if thresholds is None else thresholds  # Keras' default with top_k
    if class_id is not None:
        t, p = t[..., class_id : class_id + 1], p[..., class_id : class_id + 1]
    t = t.reshape(len(t), -1) != 0
    p = p.reshape(len(p), -1)
    w = np.ones(len(t)) if w is None else w
    w = np.broadcast_to(w[:, None], t.shape)
    out = []
    for th in thresholds:
        pos = p > th
        out.append(
            [
                (w * (pos & t)).sum(),
                (w * (pos & ~t)).sum(),
                (w * (~pos & ~t)).sum(),
                (w * (~pos & t)).sum(),
            ]
        )
    return np.array(out)  # (thresholds, 4)


def _nan0(a, b):
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1, b))


def np_precision(t, p, w, thresholds=None, **kw):
    thresholds = (0.5,) if thresholds is None and kw.get("top_k") is None else thresholds
    c = np_counts(t, p, w, thresholds, **kw)
    return _nan0(c[:, 0], c[:, 0] + c[:, 1])


def np_recall(t, p, w, thresholds=None, **kw):
    thresholds = (0.5,) if thresholds is None and kw.get("top_k") is None else thresholds
    c = np_counts(t, p, w, thresholds, **kw)
    return _nan0(c[:, 0], c[:, 0] + c[:, 3])


def np_at(t, p, w, value, constrained, dependent, n=200):
    """Keras' "X at Y": max of `dependent` over thresholds i/(n-1) where `constrained` >= value."""
    c = np_counts(t, p, w, [i / (n - 1) for i in range(n)])
    tp, fp, tn, fn = c.T
    rates = {"sens": _nan0(tp, tp + fn), "spec": _nan0(tn, tn + fp), "prec": _nan0(tp, tp + fp)}
    ok = rates[constrained] >= value
    return float(max(np.where(ok, rates[dependent], 0).max(), 0.0))


def np_fbeta(t, p, w, beta=1.0, average=None, threshold=None):
    if threshold is None:
        pred = (p >= p.max(-1, keepdims=True)) & (np.abs(p) > 1e-9)
    else:
        pred = p > threshold
    pred = pred.astype(np.float64)
    w = np.ones(len(t)) if w is None else w
    axis = None if average == "micro" else 0
    tp = (pred * t * w[:, None]).sum(axis)
    fp = (pred * (1 - t) * w[:, None]).sum(axis)
    fn = ((1 - pred) * t * w[:, None]).sum(axis)
    support = (t * w[:, None]).sum(axis)
    prec, rec = tp / (tp + fp + EPS), tp / (tp + fn + EPS)
    f = prec * rec / (beta**2 * prec + rec + EPS) * (1 + beta**2)
    if average == "weighted":
        return (f * support / (support.sum() + EPS)).sum()
    return f.mean() if average is not None else f


def np_r2(t, p, w, aggregation="uniform_average", num_regressors=0):
    w = np.ones(len(t)) if w is None else w
    wt = np.broadcast_to(w[:, None], t.shape)
    total = (wt * t * t).sum(0) - (wt * t).sum(0) ** 2 / wt.sum(0)
    raw = 1 - (wt * (t - p) ** 2).sum(0) / total
    score = {
        "uniform_average": raw.mean(),
        "variance_weighted_average": (total * raw).sum() / total.sum(),
    }.get(aggregation, raw)
    n = t.size
    if num_regressors and num_regressors < n - 1:
        score = 1 - (1 - score) * (n - 1) / (n - num_regressors - 1)
    return score


def np_iou(t, p, w, num_classes, target=None):
    w = np.ones(len(t)) if w is None else w
    cm = np.zeros((num_classes, num_classes))
    np.add.at(cm, (t.reshape(-1), p.reshape(-1)), np.broadcast_to(w[:, None], t.shape).reshape(-1))
    tp = np.diag(cm)
    den = cm.sum(0) + cm.sum(1) - tp
    iou = _nan0(tp, den)
    ids = list(range(num_classes)) if target is None else list(target)
    return iou[ids].sum() / max((den[ids] != 0).sum(), 1)


def np_sparse_top_k(labels, p, k):
    return (p >= np.sort(p, -1)[:, -k][:, None])[np.arange(len(p)), labels].astype(np.float64)


def np_bce_logits(t, z, ls=0.0):
    t = t * (1 - ls) + 0.5 * ls
    return np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))), axis=-1)


def np_cce(t, p, ls=0.0):
    t = t * (1 - ls) + ls / t.shape[-1]
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(p)).sum(-1)


def np_scce_ignoring(labels, p, ignore, w):
    values = np_cce(np.eye(p.shape[-1])[labels], p)
    valid = (labels != ignore).astype(np.float64)
    w = valid if w is None else valid * w
    return float((values * w).sum() / w.sum())


@dataclass(frozen=True)
class ClassCase:
    id: str
    make: Callable[[], metrics.Metric]
    kind: str
    reference: Callable[[np.ndarray, np.ndarray, np.ndarray | None], Any]


def _mean_case(
    id: str, make: Callable[[], metrics.Metric], kind: str, per_sample: Callable
) -> ClassCase:
    return ClassCase(id, make, kind, lambda t, p, w: _wmean(per_sample(t, p), w))


CLASS_CASES = [
    _mean_case("Accuracy", metrics.Accuracy, "segmentation", lambda t, p: (t == p).mean(-1)),
    _mean_case(
        "BinaryAccuracy(threshold=0.7)",
        lambda: metrics.BinaryAccuracy(threshold=0.7),
        "multilabel",
        lambda t, p: (t == (p > 0.7)).mean(-1),
    ),
    _mean_case(
        "CategoricalAccuracy", metrics.CategoricalAccuracy, "categorical",
        lambda t, p: (t.argmax(-1) == p.argmax(-1)).astype(float),
    ),
    _mean_case(
        "SparseCategoricalAccuracy", metrics.SparseCategoricalAccuracy, "sparse",
        lambda t, p: (t == p.argmax(-1)).astype(float),
    ),
    _mean_case(
        "TopKCategoricalAccuracy(k=2)", lambda: metrics.TopKCategoricalAccuracy(k=2), "categorical",
        lambda t, p: np_sparse_top_k(t.argmax(-1), p, 2),
    ),
    _mean_case(
        "SparseTopKCategoricalAccuracy(k=3)", lambda: metrics.SparseTopKCategoricalAccuracy(k=3),
        "sparse", lambda t, p: np_sparse_top_k(t, p, 3),
    ),
    _mean_case(
        "MeanSquaredError", metrics.MeanSquaredError, "regression", lambda t, p: ((t - p) ** 2).mean(-1)
    ),
    _mean_case(
        "MeanAbsoluteError", metrics.MeanAbsoluteError, "regression", lambda t, p: np.abs(t - p).mean(-1)
    ),
    _mean_case(
        "MeanAbsolutePercentageError", metrics.MeanAbsolutePercentageError, "regression",
        lambda t, p: 100 * (np.abs(t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
    ),
    _mean_case(
        "MeanSquaredLogarithmicError", metrics.MeanSquaredLogarithmicError, "regression",
        lambda t, p: ((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1),
    ),
    ClassCase(
        "RootMeanSquaredError", metrics.RootMeanSquaredError, "regression",
        lambda t, p, w: np.sqrt(_wmean(((t - p) ** 2).mean(-1), w)),
    ),
    _mean_case(
        "CosineSimilarity(axis=-1)", lambda: metrics.CosineSimilarity(axis=-1), "regression",
        lambda t, p: (t * p).sum(-1) / np.linalg.norm(t, axis=-1) / np.linalg.norm(p, axis=-1),
    ),
    _mean_case(
        "LogCoshError", metrics.LogCoshError, "regression", lambda t, p: np.log(np.cosh(p - t)).mean(-1)
    ),
    _mean_case(
        "BinaryCrossentropy(from_logits, label_smoothing=0.1)",
        lambda: metrics.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), "logits",
        lambda t, z: np_bce_logits(t, z, 0.1),
    ),
    _mean_case(
        "CategoricalCrossentropy(label_smoothing=0.2)",
        lambda: metrics.CategoricalCrossentropy(label_smoothing=0.2), "categorical",
        lambda t, p: np_cce(t, p, 0.2),
    ),
    _mean_case(
        "SparseCategoricalCrossentropy", metrics.SparseCategoricalCrossentropy, "sparse",
        lambda t, p: np_cce(np.eye(5)[t], p),
    ),
    ClassCase(
        "SparseCategoricalCrossentropy(ignore_class=2)",
        lambda: metrics.SparseCategoricalCrossentropy(ignore_class=2), "sparse",
        lambda t, p, w: np_scce_ignoring(t, p, 2, w),
    ),
    _mean_case(
        "KLDivergence", metrics.KLDivergence, "categorical",
        lambda t, p: (np.clip(t, EPS, 1) * np.log(np.clip(t, EPS, 1) / np.clip(p, EPS, 1))).sum(-1),
    ),
    _mean_case("Poisson", metrics.Poisson, "multilabel", lambda t, p: (p - t * np.log(p + EPS)).mean(-1)),
    _mean_case(
        "Hinge", metrics.Hinge, "logits", lambda t, p: np.maximum(1 - (2 * t - 1) * p, 0).mean(-1)
    ),
    _mean_case(
        "SquaredHinge", metrics.SquaredHinge, "logits",
        lambda t, p: (np.maximum(1 - (2 * t - 1) * p, 0) ** 2).mean(-1),
    ),
    _mean_case(
        "CategoricalHinge", metrics.CategoricalHinge, "categorical",
        lambda t, p: np.maximum(((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0),
    ),
    ClassCase(
        "TruePositives(thresholds=[0.3, 0.6])", lambda: metrics.TruePositives(thresholds=[0.3, 0.6]),
        "multilabel", lambda t, p, w: np_counts(t, p, w, [0.3, 0.6])[:, 0],
    ),
    ClassCase(
        "FalsePositives", metrics.FalsePositives, "multilabel", lambda t, p, w: np_counts(t, p, w, [0.5])[0, 1]
    ),
    ClassCase(
        "TrueNegatives(thresholds=0.2)", lambda: metrics.TrueNegatives(thresholds=0.2), "multilabel",
        lambda t, p, w: np_counts(t, p, w, [0.2])[0, 2],
    ),
    ClassCase(
        "FalseNegatives", metrics.FalseNegatives, "multilabel", lambda t, p, w: np_counts(t, p, w, [0.5])[0, 3]
    ),
    ClassCase(
        "Precision(thresholds=[0.2, 0.5, 0.8])",
        lambda: metrics.Precision(thresholds=[0.2, 0.5, 0.8]), "multilabel",
        lambda t, p, w: np_precision(t, p, w, (0.2, 0.5, 0.8)),
    ),
    ClassCase(
        "Precision(top_k=1)", lambda: metrics.Precision(top_k=1), "multilabel",
        lambda t, p, w: np_precision(t, p, w, top_k=1)[0],
    ),
    ClassCase(
        "Recall(class_id=1)", lambda: metrics.Recall(class_id=1), "multilabel",
        lambda t, p, w: np_recall(t, p, w, class_id=1)[0],
    ),
    ClassCase(
        "Recall(thresholds=0.3)", lambda: metrics.Recall(thresholds=0.3), "binary",
        lambda t, p, w: np_recall(t, p, w, (0.3,))[0],
    ),
    ClassCase(
        "PrecisionAtRecall(0.6)", lambda: metrics.PrecisionAtRecall(0.6), "binary",
        lambda t, p, w: np_at(t, p, w, 0.6, "sens", "prec"),
    ),
    ClassCase(
        "RecallAtPrecision(0.7)", lambda: metrics.RecallAtPrecision(0.7), "binary",
        lambda t, p, w: np_at(t, p, w, 0.7, "prec", "sens"),
    ),
    ClassCase(
        "SensitivityAtSpecificity(0.5, num_thresholds=50)",
        lambda: metrics.SensitivityAtSpecificity(0.5, num_thresholds=50), "binary",
        lambda t, p, w: np_at(t, p, w, 0.5, "spec", "sens", n=50),
    ),
    ClassCase(
        "SpecificityAtSensitivity(0.8)", lambda: metrics.SpecificityAtSensitivity(0.8), "binary",
        lambda t, p, w: np_at(t, p, w, 0.8, "sens", "spec"),
    ),
    ClassCase("F1Score", metrics.F1Score, "categorical", lambda t, p, w: np_fbeta(t, p, w)),
    ClassCase(
        "F1Score(average='macro', threshold=0.3)",
        lambda: metrics.F1Score(average="macro", threshold=0.3), "multilabel",
        lambda t, p, w: np_fbeta(t, p, w, average="macro", threshold=0.3),
    ),
    ClassCase(
        "F1Score(average='micro')", lambda: metrics.F1Score(average="micro"), "categorical",
        lambda t, p, w: np_fbeta(t, p, w, average="micro"),
    ),
    ClassCase(
        "FBetaScore(beta=2, average='weighted', threshold=0.5)",
        lambda: metrics.FBetaScore(average="weighted", beta=2.0, threshold=0.5), "multilabel",
        lambda t, p, w: np_fbeta(t, p, w, beta=2.0, average="weighted", threshold=0.5),
    ),
    ClassCase("R2Score", metrics.R2Score, "regression", lambda t, p, w: np_r2(t, p, w)),
    ClassCase(
        "R2Score(variance_weighted_average, num_regressors=3)",
        lambda: metrics.R2Score("variance_weighted_average", num_regressors=3), "regression",
        lambda t, p, w: np_r2(t, p, w, "variance_weighted_average", 3),
    ),
    ClassCase(
        "R2Score(class_aggregation=None)", lambda: metrics.R2Score(class_aggregation=None), "regression",
        lambda t, p, w: np_r2(t, p, w, None),
    ),
    ClassCase("MeanIoU(3)", lambda: metrics.MeanIoU(num_classes=3), "segmentation",
              lambda t, p, w: np_iou(t, p, w, 3)),
    ClassCase(
        "IoU(3, target_class_ids=[0, 2])", lambda: metrics.IoU(3, target_class_ids=[0, 2]),
        "segmentation", lambda t, p, w: np_iou(t, p, w, 3, [0, 2]),
    ),
]  # fmt: skip
BY_ID = {c.id: c for c in CLASS_CASES}


def _tensors(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    t, p = data(kind)
    tt = torch.from_numpy(t)
    tt = tt if tt.dtype == torch.int64 else tt.float()
    pp = torch.from_numpy(p)
    return tt, (pp if pp.dtype == torch.int64 else pp.float())


def _close(actual: torch.Tensor, expected: Any) -> None:
    np.testing.assert_allclose(actual.double().numpy(), np.asarray(expected, dtype=np.float64),
                               rtol=2e-5, atol=2e-6)  # fmt: skip


@pytest.mark.parametrize("case_id", list(BY_ID))
@pytest.mark.parametrize("weighted", [False, True])
def test_class_streamed_in_batches_equals_numpy(case_id: str, weighted: bool) -> None:
    case = BY_ID[case_id]
    metric = case.make()
    t, p = _tensors(case.kind)
    w = weights() if weighted else None
    wt = None if w is None else torch.from_numpy(w).float()
    for lo, hi in ((0, 7), (7, 8), (8, N)):
        metric.update_state(t[lo:hi], p[lo:hi], None if wt is None else wt[lo:hi])
    _close(metric.result(), case.reference(*data(case.kind), w))


@pytest.mark.parametrize("case_id", list(BY_ID))
def test_config_round_trip_and_reset(case_id: str) -> None:
    case = BY_ID[case_id]
    metric = case.make()
    t, p = _tensors(case.kind)
    rebuilt = metrics.deserialize(metrics.serialize(metric))
    assert type(rebuilt) is type(metric) and rebuilt.get_config() == metric.get_config()
    assert metric.get_config()["name"] == metric.name
    metric.update_state(t, p)
    rebuilt.update_state(t, p)
    _close(rebuilt.result(), metric.result().numpy())
    metric.reset_states()  # Keras 2's spelling
    metric.update_state(t[:10], p[:10])
    _close(metric.result(), case.reference(*(a[:10] for a in data(case.kind)), None))


def test_keras_default_names() -> None:
    # Keras 3.15.1: each class's `name` with no argument
    expected = {
        metrics.Accuracy: "accuracy", metrics.LogCoshError: "logcosh", metrics.F1Score: "f1_score",
        metrics.FBetaScore: "fbeta_score", metrics.R2Score: "r2_score", metrics.AUC: "auc",
        metrics.TruePositives: "true_positives", metrics.Precision: "precision",
        metrics.KLDivergence: "kl_divergence", metrics.Sum: "sum", metrics.Mean: "mean",
        metrics.SparseTopKCategoricalAccuracy: "sparse_top_k_categorical_accuracy",
    }  # fmt: skip
    assert {cls: cls().name for cls in expected} == expected
    assert metrics.PrecisionAtRecall(0.5).name == "precision_at_recall"
    assert metrics.MeanIoU(2).name == "mean_io_u"  # Keras' snake case of the class name


def test_mean_sum_and_wrapper_standalone() -> None:
    # the examples of Keras' docstrings: Sum([1, 3, 5, 7]) = 16, weighted [1, 1, 0, 0] -> 4
    s = metrics.Sum()
    s.update_state([1, 3, 5, 7])
    assert float(s.result()) == 16.0
    s.reset_state()
    s.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert float(s.result()) == 4.0
    m = metrics.Mean()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert float(m.result()) == 2.0
    assert float(m([10.0])) == pytest.approx(14 / 3)  # __call__ updates, then returns result

    def within(y_true, y_pred, tolerance):
        return (y_true - y_pred).abs() <= tolerance

    wrapped = metrics.MeanMetricWrapper(within, name="within", tolerance=0.5)
    wrapped.update_state(np.array([[1.0], [2.0], [3.0]]), np.array([[1.2], [2.9], [3.0]]))
    assert float(wrapped.result()) == pytest.approx(2 / 3)
    assert wrapped.get_config() == {"name": "within", "dtype": None, "tolerance": 0.5}


def test_bad_arguments_name_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"thresholds must be in \[0, 1\], got 1.5"):
        metrics.Precision(thresholds=1.5)
    with pytest.raises(ValueError, match=r"recall must be in \[0, 1\], got 2"):
        metrics.PrecisionAtRecall(2)
    with pytest.raises(ValueError, match="average must be None, 'micro', 'macro' or 'weighted'"):
        metrics.F1Score(average="mean")
    with pytest.raises(ValueError, match=r"target_class_ids must be class ids in \[0, 3\)"):
        metrics.IoU(3, target_class_ids=[3])
    with pytest.raises(ValueError, match=r"expects 2-D targets .* got y_true \(4,\)"):
        metrics.F1Score().update_state(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="curve must be 'ROC', 'PR' or 'PRGAIN', got 'PRC'"):
        metrics.AUC(curve="PRC")
    with pytest.raises(ValueError, match="summation_method must be .* got 'trapezoid'"):
        metrics.AUC(summation_method="trapezoid")
    with pytest.raises(ValueError, match="unknown metric class 'Bogus'; known classes: AUC"):
        metrics.deserialize({"class_name": "Bogus", "config": {}})
    with pytest.raises(ValueError, match="cannot serialize 'MeanMetricWrapper'"):
        metrics.serialize(metrics.MeanMetricWrapper(lambda t, p: t))


# -- in compile ---------------------------------------------------------------------------------
def _zero_model(activation: str | None = None, bias: float = 0.0) -> Sequential:
    """Dense(1) from one input, kernel 0: predicts `activation(bias)` for every row."""
    model = Sequential([Input(shape=(1,)), Dense(1, activation=activation)])
    model.set_weights([np.zeros((1, 1), np.float32), np.full((1,), bias, np.float32)])
    return model


X4 = np.ones((4, 1), np.float32)
Y4 = np.array([1.0, 2.0, 3.0, 8.0], np.float32)
W4 = np.array([1.0, 1.0, 1.0, 0.0], np.float32)


def test_compiled_metrics_ignore_sample_weight_as_keras3() -> None:
    # Keras 3.15.1, same model and data: {'loss': 3.5, 'mae': 3.5} (before: mae 2.0)
    model = _zero_model()
    model.compile("sgd", "mse", metrics=["mae"])
    got = model.test_on_batch(X4, Y4, sample_weight=W4, return_dict=True)
    errors = np.abs(Y4 - 0.0)
    assert got["mae"] == pytest.approx(errors.mean())  # 3.5: unweighted
    assert got["loss"] == pytest.approx((W4 * errors**2).sum() / 4)  # the loss stays weighted


def test_weighted_metrics_get_the_weights_and_the_keras_names() -> None:
    # Keras 3.15.1: {'loss': 3.5, 'mae': 3.5, 'mse': 19.5, 'weighted_mae': 2.0,
    #                'weighted_mse': 4.6666665, 'wm': 2.0}
    model = _zero_model()
    model.compile(
        "sgd", "mse", metrics=["mae", "mse"],
        weighted_metrics=["mse", "mae", metrics.MeanAbsoluteError(name="wm")],
    )  # fmt: skip
    got = model.test_on_batch(X4, Y4, sample_weight=W4, return_dict=True)
    e = np.abs(Y4)
    want = {
        "loss": (W4 * e**2).sum() / 4, "mae": e.mean(), "mse": (e**2).mean(),
        "weighted_mse": (W4 * e**2).sum() / W4.sum(), "weighted_mae": (W4 * e).sum() / W4.sum(),
        "wm": (W4 * e).sum() / W4.sum(),
    }  # fmt: skip
    assert got == pytest.approx(want)
    assert list(got) == ["loss", "mae", "mse", "weighted_mse", "weighted_mae", "wm"]
    assert model.metrics_names == list(got)


def test_a_weighted_metric_alone_keeps_its_name() -> None:
    # Keras 3.15.1, evaluate with sample_weight [0, 0, 1, 1] on labels [0, 0, 0, 1]:
    # weighted_metrics=['accuracy'] alone -> {'accuracy': 0.5}
    x, y = X4, np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    model = _zero_model("sigmoid", bias=-10.0)
    model.compile("sgd", "binary_crossentropy", weighted_metrics=["accuracy"])
    got = model.evaluate(x, y, sample_weight=np.array([0, 0, 1, 1.0]), verbose=0, return_dict=True)
    assert set(got) == {"loss", "accuracy"} and got["accuracy"] == pytest.approx(0.5)
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    got = model.evaluate(x, y, sample_weight=np.array([0, 0, 1, 1.0]), verbose=0, return_dict=True)
    assert got["accuracy"] == pytest.approx(0.75) and got["weighted_accuracy"] == pytest.approx(0.5)


def test_class_weight_reaches_only_weighted_metrics() -> None:
    # Keras 3.15.1, fit(class_weight={0: 0, 1: 1}) on labels [0, 0, 0, 1] predicted 0:
    # {'accuracy': [0.75], 'loss': [2.5000114]}; with weighted_metrics=['accuracy'] also
    # 'weighted_accuracy': [0.0] (before this change batchfit reported accuracy 0.0)
    x, y = X4, np.array([0.0, 0.0, 0.0, 1.0], np.float32)
    model = _zero_model("sigmoid", bias=-10.0)
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    model.optimizer.learning_rate = 0.0
    history = model.fit(x, y, class_weight={0: 0, 1: 1}, batch_size=4, epochs=1, verbose=0)
    p = 1 / (1 + np.exp(10.0))
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert history.history["accuracy"] == pytest.approx([0.75])
    assert history.history["weighted_accuracy"] == pytest.approx([0.0])
    assert history.history["loss"] == pytest.approx([(y * bce).sum() / 4], rel=1e-5)


def test_weighted_metrics_per_output() -> None:
    inputs = Input(shape=(1,))
    from batchfit.models import Model

    model = Model(inputs, {"a": Dense(1, name="a")(inputs), "b": Dense(1, name="b")(inputs)})
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.compile(
        "sgd", {"a": "mse", "b": "mse"}, metrics={"a": ["mae"]}, weighted_metrics={"a": ["mae"], "b": ["mae"]}
    )  # fmt: skip
    got = model.test_on_batch(X4, {"a": Y4, "b": 2 * Y4}, sample_weight=W4, return_dict=True)
    e = np.abs(Y4)
    assert got["a_mae"] == pytest.approx(e.mean())
    assert got["a_weighted_mae"] == pytest.approx((W4 * e).sum() / W4.sum())
    assert got["b_mae"] == pytest.approx((W4 * 2 * e).sum() / W4.sum())


def test_metric_objects_and_a_float_function_in_fit() -> None:
    rng = _rng(1)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.float32)

    def half(y_true, y_pred):  # a Python float, as some Keras programs return
        return 0.5

    model = Sequential([Input(shape=(3,)), Dense(1, activation="sigmoid")])
    model.compile(
        "sgd", "binary_crossentropy",
        metrics=[metrics.TruePositives(), metrics.F1Score(average="macro", threshold=0.5), half, "AUC"],
    )  # fmt: skip
    model.optimizer.learning_rate = 0.0
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    p = model.predict(x, verbose=0)
    assert history.history["true_positives"] == [float(((p[:, 0] > 0.5) & (y == 1)).sum())]
    expected_f1 = np_fbeta(y[:, None].astype(np.float64), p.astype(np.float64), None, average="macro",
                           threshold=0.5)  # fmt: skip
    assert history.history["f1_score"][0] == pytest.approx(float(expected_f1), rel=1e-5)
    assert history.history["half"] == [0.5]
    # a class name as a string: the metric is named as written (Keras' get_metric)
    auc = metrics.AUC()
    auc.update_state(y, p)
    assert history.history["AUC"] == pytest.approx([float(auc.result())])


def test_metric_states_live_on_the_model_device() -> None:
    model = Sequential([Input(shape=(3,)), Dense(1)])
    model.compile(
        "sgd", "mse", metrics=[metrics.R2Score(), metrics.Precision()], weighted_metrics=["mae"]
    )
    model.train_on_batch(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32))
    step_metrics = model._step.compiled_metrics  # where the sums live
    assert {t.device for t in step_metrics.states()} == {model.device}
    assert len(step_metrics.states()) == 2 + 5 + 4 + 2  # loss, R2 (5), counts (4), mae


def test_save_and_load_keep_metric_objects(tmp_path) -> None:
    rng = _rng(2)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = Sequential([Input(shape=(3,)), Dense(1, activation="sigmoid")])
    model.compile(
        "adam", "binary_crossentropy",
        metrics=["accuracy", metrics.Precision(thresholds=0.3, name="p30"), metrics.F1Score(average="micro")],
        weighted_metrics=[metrics.Recall()],
    )  # fmt: skip
    before = model.evaluate(x, y, sample_weight=np.linspace(0, 1, 32), verbose=0, return_dict=True)
    path = str(tmp_path / "model.safetensors")
    model.save(path)
    loaded = load_model(path)
    after = loaded.evaluate(x, y, sample_weight=np.linspace(0, 1, 32), verbose=0, return_dict=True)
    assert list(after) == ["loss", "accuracy", "p30", "f1_score", "recall"]
    assert after == pytest.approx(before)


def test_a_per_class_metric_is_logged_as_its_mean() -> None:
    # F1Score() and Precision(thresholds=[...]) return one value per class/threshold; the logs
    # carry their mean (the figure Keras' progress bar shows) instead of failing
    rng = _rng(4)
    x = rng.normal(size=(24, 3)).astype(np.float32)
    y = np.eye(3)[rng.integers(0, 3, 24)].astype(np.float32)
    model = Sequential([Input(shape=(3,)), Dense(3, activation="softmax")])
    model.compile(
        "sgd",
        "categorical_crossentropy",
        metrics=[metrics.F1Score(), metrics.Precision([0.3, 0.6])],
    )
    got = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0).astype(np.float64)
    assert got["f1_score"] == pytest.approx(float(np.mean(np_fbeta(y, p, None))), rel=1e-5)
    assert got["precision"] == pytest.approx(float(np.mean(np_precision(y, p, None, (0.3, 0.6)))))


def test_a_float_metric_counts_once_per_batch_as_keras() -> None:
    # Keras 3.15.1, the same program: a function returning float(len(y_true)) over 12 rows
    # in batches of 8 and 4 logs 6.0 (one value per batch), in fit and in evaluate
    def rows(y_true, y_pred):
        return float(y_true.shape[0])

    x, y = np.ones((12, 1), np.float32), np.zeros((12, 1), np.float32)
    model = Sequential([Input(shape=(1,)), Dense(1)])
    model.compile("sgd", "mse", metrics=[rows])
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert history.history["rows"] == [(8 + 4) / 2]
    got = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert got["rows"] == (8 + 4) / 2


def test_loss_functions_are_metric_functions_as_in_keras() -> None:
    # keras.metrics exports the loss functions (mean_squared_error, hinge, ...) as well
    from batchfit import losses

    for name in ("mean_squared_error", "binary_crossentropy", "hinge", "kl_divergence"):
        assert getattr(metrics, name) is getattr(losses, name)
    x = np.ones((4, 1), np.float32)
    model = _zero_model()
    model.compile("sgd", "mae", metrics=[metrics.mean_squared_error])
    got = model.test_on_batch(x, Y4, return_dict=True)
    assert got["mean_squared_error"] == pytest.approx(float(np.mean(Y4**2)))
