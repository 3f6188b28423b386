"""Every metric name through one contract: streamed sums == NumPy on the whole data.

Batches are cut at places hypothesis chooses; the result must not depend on
the cuts. References are NumPy transcriptions of the Keras definitions (weighted
means divide by the sum of weights; precision/recall/AUC count weighted
elements; AUC is checked against the exact rank statistic, since the metric
buckets predictions at 200 thresholds). The per-sample loss references are
shared with `test_losses.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

# the NumPy loss references live next door (tests/ is on sys.path under pytest)
from test_losses import (
    np_bce,
    np_binary_focal,
    np_categorical_focal,
    np_categorical_hinge,
    np_cce,
    np_cosine_similarity,
    np_hinge,
    np_huber,
    np_kld,
    np_log_cosh,
    np_mape,
    np_msle,
    np_poisson,
    np_scce,
    np_squared_hinge,
)

from batchfit import losses, metrics

M = 40  # samples in the whole data set
CLASSES = 8


# -- data: float32-representable values so thresholds agree with torch ------------------------
def _f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).astype(np.float64)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "binary":  # one sigmoid output
        # one prediction per AUC bucket (width 1/199), so the bucketed AUC of every subset
        # is the exact one; test_auc_many_samples covers crowded buckets
        buckets = rng.choice(np.arange(4, 195), M, replace=False)
        y_pred = ((buckets + rng.uniform(0.1, 0.9, M)) / 199).reshape(M, 1)
        y_true = (rng.uniform(0, 1, (M, 1)) < y_pred).astype(np.float64)
        return y_true, _f32(y_pred)
    if kind == "multilabel":
        return rng.integers(0, 2, (M, 3)).astype(np.float64), _f32(rng.uniform(0.05, 0.95, (M, 3)))
    if kind == "signed":  # 0/1 labels, unbounded scores (hinge)
        return rng.integers(0, 2, (M, 3)).astype(np.float64), _f32(rng.normal(0, 1.5, (M, 3)))
    if kind == "categorical":
        labels = rng.integers(0, CLASSES, M)
        return np.eye(CLASSES)[labels], _f32(_softmax(rng.normal(0, 1, (M, CLASSES))))
    if kind == "sparse":
        labels = rng.integers(0, CLASSES, M)
        return labels, _f32(_softmax(rng.normal(0, 1, (M, CLASSES))))
    if kind == "regression":
        y_true = rng.uniform(0.5, 3.0, (M, 3))
        return _f32(y_true), _f32(np.abs(y_true + rng.normal(0, 1.2, (M, 3))) + 0.1)
    if kind == "distribution":
        return _f32(_softmax(rng.normal(0, 1, (M, 4)))), _f32(_softmax(rng.normal(0, 1, (M, 4))))
    if kind == "vector":
        return _f32(rng.normal(0, 1, (M, 3))), _f32(rng.normal(0, 1, (M, 3)))
    raise AssertionError(kind)


def _torch(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.from_numpy(y_true)
    return (t if t.dtype == torch.int64 else t.float()), torch.from_numpy(y_pred).float()


def _weights(seed: int = 3) -> np.ndarray:
    w = _f32(np.random.default_rng(seed).uniform(0, 2, M))
    w[::7] = 0.0
    return w


# -- Keras metric definitions in NumPy ------------------------------------------------------------
PerSample = Callable[[np.ndarray, np.ndarray], np.ndarray]
Whole = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


def _weighted_mean(values: np.ndarray, w: np.ndarray | None) -> float:
    return float(values.mean() if w is None else (values * w).sum() / w.sum())


def mean_of(per_sample: PerSample) -> Whole:
    return lambda t, p, w: _weighted_mean(per_sample(t, p), w)


def np_binary_accuracy(t, p):
    return np.mean((p > 0.5) == (t > 0.5), axis=-1)


def np_categorical_accuracy(t, p):
    return (p.argmax(-1) == t.argmax(-1)).astype(np.float64)


def np_sparse_categorical_accuracy(labels, p):
    return (p.argmax(-1) == labels.reshape(-1)).astype(np.float64)


def np_sparse_top_k(labels, p, k=5):
    labels = labels.reshape(-1)
    target_score = p[np.arange(len(p)), labels]
    return ((p > target_score[:, None]).sum(-1) < k).astype(np.float64)


def np_top_k(t, p, k=5):
    return np_sparse_top_k(t.argmax(-1), p, k)


def np_squared(t, p):
    return np.mean((t - p) ** 2, axis=-1)


def np_absolute(t, p):
    return np.mean(np.abs(t - p), axis=-1)


def np_rmse(t, p, w):
    return float(np.sqrt(_weighted_mean(np_squared(t, p), w)))


def _elements(t, p, w):
    t, p = (t > 0.5).reshape(len(t), -1), p.reshape(len(p), -1)
    w = np.ones(len(t)) if w is None else w
    return t, p, np.broadcast_to(w[:, None], t.shape)


def np_precision(t, p, w):
    t, p, w = _elements(t, p, w)
    predicted = p > 0.5
    return float((w * (predicted & t)).sum() / max((w * predicted).sum(), 1e-12))


def np_recall(t, p, w):
    t, p, w = _elements(t, p, w)
    predicted = p > 0.5
    return float((w * (predicted & t)).sum() / max((w * t).sum(), 1e-12))


def np_exact_auc(t, p, w):
    """Probability a positive outranks a negative (ties count half), weighted pairs."""
    t, p, w = _elements(t, p, w)
    t, p, w = t.reshape(-1), p.reshape(-1), w.reshape(-1)
    diff = p[t][:, None] - p[~t][None, :]
    score = (diff > 0) + 0.5 * (diff == 0)
    pair_w = w[t][:, None] * w[~t][None, :]
    return float((pair_w * score).sum() / pair_w.sum())


def _counts(t, p, w):
    """Weighted confusion counts at 0.5 (targets positive when non-zero, as Keras)."""
    t, p, w = _elements(t, p, w)
    predicted = p > 0.5
    return {
        "true_positives": float((w * (predicted & t)).sum()),
        "false_positives": float((w * (predicted & ~t)).sum()),
        "true_negatives": float((w * (~predicted & ~t)).sum()),
        "false_negatives": float((w * (~predicted & t)).sum()),
    }


def count_of(kind: str) -> Whole:
    return lambda t, p, w: _counts(t, p, w)[kind]


def np_r2(t, p, w):
    """Keras' R2Score: per output column with weighted sums, then the uniform average."""
    w = np.ones(len(t)) if w is None else w
    w = np.broadcast_to(w[:, None], t.shape)
    total = (w * t * t).sum(0) - (w * t).sum(0) ** 2 / w.sum(0)
    return float(np.mean(1 - (w * (t - p) ** 2).sum(0) / total))


@dataclass(frozen=True)
class MetricCase:
    name: str
    kind: str
    reference: Whole
    abs_tol: float = 1e-6


def _loss_case(name: str, kind: str, per_sample: PerSample) -> MetricCase:
    return MetricCase(name, kind, mean_of(per_sample))


CASES = [
    # 'accuracy' resolves by shapes here (no loss): categorical and sparse
    MetricCase("accuracy", "categorical", mean_of(np_categorical_accuracy)),
    MetricCase("acc", "sparse", mean_of(np_sparse_categorical_accuracy)),
    MetricCase("binary_accuracy", "binary", mean_of(np_binary_accuracy)),
    MetricCase("categorical_accuracy", "categorical", mean_of(np_categorical_accuracy)),
    MetricCase("sparse_categorical_accuracy", "sparse", mean_of(np_sparse_categorical_accuracy)),
    MetricCase("top_k_categorical_accuracy", "categorical", mean_of(np_top_k)),
    MetricCase("top_k_accuracy", "categorical", mean_of(np_top_k)),
    MetricCase("sparse_top_k_categorical_accuracy", "sparse", mean_of(np_sparse_top_k)),
    MetricCase("mean_squared_error", "regression", mean_of(np_squared)),
    MetricCase("mse", "regression", mean_of(np_squared)),
    MetricCase("mean_absolute_error", "regression", mean_of(np_absolute)),
    MetricCase("mae", "regression", mean_of(np_absolute)),
    MetricCase("root_mean_squared_error", "regression", np_rmse),
    MetricCase("rmse", "regression", np_rmse),
    MetricCase("precision", "binary", np_precision),
    MetricCase("recall", "binary", np_recall),
    MetricCase("auc", "binary", np_exact_auc, abs_tol=1e-2),
    # loss names: the mean of the per-sample loss
    _loss_case("mean_absolute_percentage_error", "regression", np_mape),
    _loss_case("mape", "regression", np_mape),
    _loss_case("mean_squared_logarithmic_error", "regression", np_msle),
    _loss_case("msle", "regression", np_msle),
    _loss_case("huber", "regression", np_huber),
    _loss_case("huber_loss", "regression", np_huber),
    _loss_case("log_cosh", "regression", np_log_cosh),
    _loss_case("logcosh", "regression", np_log_cosh),
    _loss_case("binary_crossentropy", "multilabel", np_bce),
    _loss_case("bce", "binary", np_bce),
    _loss_case("categorical_crossentropy", "categorical", np_cce),
    _loss_case("cce", "categorical", np_cce),
    _loss_case("sparse_categorical_crossentropy", "sparse", np_scce),
    # 'crossentropy' resolves like 'accuracy' (here by shapes)
    _loss_case("crossentropy", "categorical", np_cce),
    _loss_case("ce", "sparse", np_scce),
    _loss_case("hinge", "signed", np_hinge),
    _loss_case("squared_hinge", "signed", np_squared_hinge),
    _loss_case("poisson", "regression", np_poisson),
    _loss_case("kl_divergence", "distribution", np_kld),
    _loss_case("kld", "distribution", np_kld),
    _loss_case("kullback_leibler_divergence", "distribution", np_kld),
    # Keras 3's metric 'cosine_similarity' is the CosineSimilarity class: +cos, not the loss
    MetricCase("cosine_similarity", "vector", mean_of(lambda t, p: -np_cosine_similarity(t, p))),
    _loss_case("categorical_hinge", "categorical", np_categorical_hinge),
    _loss_case("binary_focal_crossentropy", "multilabel", np_binary_focal),
    _loss_case("categorical_focal_crossentropy", "categorical", np_categorical_focal),
    _loss_case("log_cosh_error", "regression", np_log_cosh),
    MetricCase("true_positives", "binary", count_of("true_positives")),
    MetricCase("false_positives", "binary", count_of("false_positives")),
    MetricCase("true_negatives", "binary", count_of("true_negatives")),
    MetricCase("false_negatives", "binary", count_of("false_negatives")),
    MetricCase("r2_score", "regression", np_r2, abs_tol=1e-5),
]
BY_NAME = {c.name: c for c in CASES}
NAMES = sorted(BY_NAME)
table = pytest.mark.parametrize("name", NAMES)
CONFUSION = ("precision", "recall", "auc")


def _make(name: str) -> metrics.Metric:
    """The metric as `compile` makes it: name, no loss, the first batch for 'accuracy'."""
    t, p = _torch(*_data(BY_NAME[name].kind))
    metric = metrics.get(name, None, t[:2], p[:2])
    metric.build(t[:2], p[:2])  # as CompileMetrics.build: states sized by the first batch
    return metric


def _expected(name: str, w: np.ndarray | None, rows: slice = slice(None)) -> float:
    case = BY_NAME[name]
    y_true, y_pred = _data(case.kind)
    return case.reference(y_true[rows], y_pred[rows], None if w is None else w[rows])


def _stream(metric: metrics.Metric, name: str, cuts: list[int], w: np.ndarray | None) -> None:
    t, p = _torch(*_data(BY_NAME[name].kind))
    wt = None if w is None else torch.from_numpy(w).float()
    bounds = [0, *cuts, M]
    for lo, hi in itertools.pairwise(bounds):
        metric.update_state(t[lo:hi], p[lo:hi], None if wt is None else wt[lo:hi])


def _check(actual: torch.Tensor, expected: float, name: str) -> None:
    assert actual.dim() == 0
    tol = BY_NAME[name].abs_tol
    assert float(actual) == pytest.approx(expected, abs=tol, rel=0 if tol > 1e-6 else 1e-5)


cut_points = st.lists(st.integers(1, M - 1), max_size=6, unique=True).map(sorted)


# -- the table -----------------------------------------------------------------------------------
def test_table_covers_every_name() -> None:
    assert metrics.names() == NAMES


@table
@settings(max_examples=8, deadline=None, derandomize=True)
@given(cuts=cut_points, weighted=st.booleans())
def test_streamed_equals_numpy_on_whole_data(name: str, cuts: list[int], weighted: bool) -> None:
    w = _weights() if weighted else None
    metric = _make(name)
    _stream(metric, name, cuts, w)
    _check(metric.result(), _expected(name, w), name)


def test_auc_reference_is_meaningful() -> None:
    """The AUC data is neither trivial nor degenerate."""
    assert 0.6 < _expected("auc", None) < 0.95
    assert 0.6 < _expected("auc", _weights()) < 0.95


def keras_thresholded_auc(t: np.ndarray, p: np.ndarray, num_thresholds: int = 200) -> float:
    """Keras' AUC: positives are `p > threshold`, ROC by the trapezoidal rule."""
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    thresholds = np.array([-1e-7, *inner, 1 + 1e-7])
    t, p = t.reshape(-1) > 0.5, p.reshape(-1)
    tpr = np.array([(p[t] > th).sum() for th in thresholds]) / t.sum()
    fpr = np.array([(p[~t] > th).sum() for th in thresholds]) / (~t).sum()
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


@pytest.mark.parametrize("num_thresholds", [200, 37])
def test_auc_many_samples(num_thresholds: int) -> None:
    """Crowded buckets: within 1e-2 of the exact AUC, equal to Keras' thresholded AUC."""
    rng = np.random.default_rng(11)
    y_pred = _f32(rng.beta(2, 2, (5000, 1)))
    y_true = (rng.uniform(0, 1, (5000, 1)) < y_pred).astype(np.float64)
    y_pred[:50] = 0.0  # the edges: exact 0 and 1, and a grid value
    y_pred[50:100] = 1.0
    y_pred[100:150] = _f32(np.array(100 / 199))
    metric = metrics.AUC(num_thresholds=num_thresholds)
    t, p = _torch(y_true, y_pred)
    for lo in range(0, 5000, 700):
        metric.update_state(t[lo : lo + 700], p[lo : lo + 700])
    value = float(metric.result())
    assert value == pytest.approx(keras_thresholded_auc(y_true, y_pred, num_thresholds), abs=1e-9)
    if num_thresholds == 200:
        assert value == pytest.approx(np_exact_auc(y_true, y_pred, None), abs=1e-2)


@table
def test_reset_state_starts_over(name: str) -> None:
    metric = _make(name)
    _stream(metric, name, [10], _weights(seed=9))
    metric.reset_state()
    _stream(metric, name, [17, 30], None)
    _check(metric.result(), _expected(name, None), name)


@table
@pytest.mark.parametrize("weighted", [False, True])
def test_merging_states_by_addition(name: str, weighted: bool) -> None:
    w = _weights() if weighted else None
    first, second = _make(name), _make(name)
    t, p = _torch(*_data(BY_NAME[name].kind))
    wt = None if w is None else torch.from_numpy(w).float()
    first.update_state(t[:13], p[:13], None if wt is None else wt[:13])
    first.update_state(t[13:21], p[13:21], None if wt is None else wt[13:21])
    second.update_state(t[21:], p[21:], None if wt is None else wt[21:])
    _check(first.result(), _expected(name, w, slice(0, 21)), name)
    merged = _make(name)
    a, b = first.states(), second.states()
    assert set(a) == set(b) == set(merged.states())
    for key, tensor in merged.states().items():
        tensor.copy_(a[key] + b[key])
    _check(merged.result(), _expected(name, w), name)


@table
def test_states_are_float64_sums_and_do_not_track_gradients(name: str) -> None:
    metric = _make(name)
    t, p = _torch(*_data(BY_NAME[name].kind))
    metric.update_state(t, p)
    for tensor in metric.states().values():
        assert tensor.dtype == torch.float64
        assert not tensor.requires_grad


# -- batch_result: this batch alone, the running sums untouched ---------------------------------
MEAN_WRAPPERS_WITH_FAST_PATH = [
    n for n in NAMES if n not in (*CONFUSION, "rmse", "root_mean_squared_error")
]


@table
@pytest.mark.parametrize("weighted", [False, True])
def test_batch_result_equals_fresh_metric(name: str, weighted: bool) -> None:
    t, p = _torch(*_data(BY_NAME[name].kind))
    w = torch.from_numpy(_weights()).float() if weighted else None
    rows = slice(25, 37)
    fresh = _make(name)
    fresh.update_state(t[rows], p[rows], None if w is None else w[rows])
    metric = _make(name)
    metric.update_state(t[:10], p[:10], None if w is None else w[:10])  # earlier batches
    value = metric.batch_result(t[rows], p[rows], None if w is None else w[rows])
    torch.testing.assert_close(value.double(), fresh.result().double(), rtol=1e-6, atol=1e-7)
    _check(value, _expected(name, None if w is None else w.double().numpy(), rows), name)


@pytest.mark.parametrize(
    "name",
    [n for n in NAMES],
)
def test_state_after_batch_result_ignores_unit_weights(name: str) -> None:
    """Passing all-ones sample weights must not change anything observable."""
    t, p = _torch(*_data(BY_NAME[name].kind))
    results = []
    for ones in (None, torch.ones(M)):
        metric = _make(name)
        metric.update_state(t[:20], p[:20], None if ones is None else ones[:20])
        metric.batch_result(t[20:30], p[20:30], None if ones is None else ones[20:30])
        metric.update_state(t[30:], p[30:], None if ones is None else ones[30:])
        results.append(float(metric.result()))
    assert results[0] == pytest.approx(results[1], rel=1e-6, abs=1e-9)


# -- 'accuracy' resolution ------------------------------------------------------------------------
RESOLUTION = [
    # (loss, y_true shape kind, y_pred kind, what Keras means)
    ("binary_crossentropy", "multilabel", "binary_accuracy"),
    ("bce", "categorical", "binary_accuracy"),  # the loss decides, not the shapes
    (losses.BinaryCrossentropy(from_logits=True), "binary", "binary_accuracy"),
    ("categorical_crossentropy", "categorical", "categorical_accuracy"),
    ("cce", "categorical", "categorical_accuracy"),
    ("sparse_categorical_crossentropy", "sparse", "sparse_categorical_accuracy"),
    (None, "binary", "binary_accuracy"),  # (N, 1) predictions
    (None, "binary_flat", "binary_accuracy"),  # (N,) predictions
    (None, "categorical", "categorical_accuracy"),  # same shapes
    (None, "sparse", "sparse_categorical_accuracy"),  # (N,) labels
    (None, "sparse_column", "sparse_categorical_accuracy"),  # (N, 1) labels, C outputs
    ("mse", "binary", "binary_accuracy"),  # a loss that says nothing: shapes decide
    ("mse", "categorical", "categorical_accuracy"),
]
ACCURACY_REFERENCE = {
    "binary_accuracy": np_binary_accuracy,
    "categorical_accuracy": np_categorical_accuracy,
    "sparse_categorical_accuracy": np_sparse_categorical_accuracy,
}


def _resolution_data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "binary_flat":
        y_true, y_pred = _data("binary")
        return y_true[:, 0], y_pred[:, 0]
    if kind == "sparse_column":
        y_true, y_pred = _data("sparse")
        return y_true[:, None].astype(np.float64), y_pred
    return _data(kind)


@pytest.mark.parametrize("spelled", ["accuracy", "acc", "Accuracy"])
@pytest.mark.parametrize(
    "loss, kind, meaning",
    RESOLUTION,
    ids=[f"{getattr(r[0], 'name', r[0])}-{r[1]}" for r in RESOLUTION],
)
def test_accuracy_resolution(loss: Any, kind: str, meaning: str, spelled: str) -> None:
    loss_obj = None if loss is None else losses.get(loss)
    y_true, y_pred = _resolution_data(kind)
    t, p = _torch(y_true, y_pred)
    assert metrics.accuracy_for(loss_obj, t, p) == meaning
    metric = metrics.get(spelled, loss_obj, t[:3], p[:3])
    assert metric.name == spelled
    metric.update_state(t, p)
    expected = ACCURACY_REFERENCE[meaning](y_true, y_pred).mean()
    assert float(metric.result()) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("spelled", ["accuracy", "acc"])
def test_accuracy_without_loss_or_batch_needs_one(spelled: str) -> None:
    assert metrics.needs_batch_to_resolve(spelled, None)
    assert metrics.needs_batch_to_resolve(spelled, losses.get("mse"))
    assert not metrics.needs_batch_to_resolve(spelled, losses.get("bce"))
    with pytest.raises(ValueError, match="accuracy"):
        metrics.get(spelled)


@pytest.mark.parametrize("spelled", ["crossentropy", "ce"])
def test_crossentropy_resolution(spelled: str) -> None:
    y_true, y_pred = _data("categorical")
    t, p = _torch(y_true, y_pred)
    metric = metrics.get(spelled, None, t[:2], p[:2])
    metric.update_state(t, p)
    assert float(metric.result()) == pytest.approx(np_cce(y_true, y_pred).mean(), rel=1e-5)


# -- identifiers and errors -------------------------------------------------------------------------
def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        metrics.get("acuracy")
    message = str(info.value)
    assert "acuracy" in message
    for name in metrics.names():
        assert name in message


@table
def test_metric_keeps_the_name_given(name: str) -> None:
    assert _make(name).name == name


def test_callable_metric_is_a_mean_over_samples() -> None:
    y_true, y_pred = _data("regression")
    t, p = _torch(y_true, y_pred)

    def max_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return (y_true - y_pred).abs().amax(-1)

    metric = metrics.get(max_error)
    assert metric.name == "max_error"
    metric.update_state(t[:15], p[:15])
    metric.update_state(t[15:], p[15:])
    expected = np.abs(y_true - y_pred).max(-1).mean()
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)


def test_metric_instance_returned_unchanged() -> None:
    metric = metrics.AUC(num_thresholds=50)
    assert metrics.get(metric) is metric


def test_auc_rejects_too_few_thresholds() -> None:
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)


def test_wrong_type_rejected() -> None:
    with pytest.raises(TypeError, match="int"):
        metrics.get(3)  # type: ignore[arg-type]
