"""Every loss name and alias through one contract, against NumPy written from Keras.

The NumPy references are transcriptions of the Keras 3 definitions (clip at
`epsilon = 1e-7`, probabilities renormalised for the categorical losses, mean
over the last axis, "sum over batch size" reduction). Inputs stay away from
0 and 1 where torch and Keras clip differently (torch's BCE clamps log at -100).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from batchfit import losses

EPS = 1e-7
N, C = 6, 4


# -- data ------------------------------------------------------------------------------------
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def regression_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positive targets away from 0 (MAPE, MSLE, Poisson), errors on both sides of 1."""
    y_true = rng.uniform(0.5, 3.0, (N, C))
    y_pred = np.abs(y_true + rng.normal(0, 1.2, (N, C))) + 0.1
    return y_true, y_pred


def binary_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y_true = rng.integers(0, 2, (N, C)).astype(np.float64)
    y_pred = rng.uniform(0.05, 0.95, (N, C))
    return y_true, y_pred


def categorical_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.eye(C)[rng.integers(0, C, N)]
    y_pred = _softmax(rng.normal(0, 1, (N, C)))
    return y_true, y_pred


def sparse_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, C, N)
    return labels, _softmax(rng.normal(0, 1, (N, C)))


def hinge_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y_true = rng.integers(0, 2, (N, C)).astype(np.float64)  # 0/1 labels: Keras maps 0 to -1
    return y_true, rng.normal(0, 1.5, (N, C))


def distribution_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return _softmax(rng.normal(0, 1, (N, C))), _softmax(rng.normal(0, 1, (N, C)))


def vector_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(0, 1, (N, C)), rng.normal(0, 1, (N, C))


# -- Keras definitions in NumPy: per-sample values of shape (N,) -------------------------------
def np_mse(t, p):
    return np.mean((t - p) ** 2, axis=-1)


def np_mae(t, p):
    return np.mean(np.abs(t - p), axis=-1)


def np_mape(t, p):
    return 100.0 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPS)), axis=-1)


def np_msle(t, p):
    first = np.log(np.maximum(p, EPS) + 1.0)
    second = np.log(np.maximum(t, EPS) + 1.0)
    return np.mean((first - second) ** 2, axis=-1)


def np_huber(t, p, delta=1.0):
    d = np.abs(p - t)
    return np.mean(np.where(d <= delta, 0.5 * d**2, delta * d - 0.5 * delta**2), axis=-1)


def np_log_cosh(t, p):
    return np.mean(np.log(np.cosh(p - t)), axis=-1)


def np_bce(t, p, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    p = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), axis=-1)


def np_bce_logits(t, z, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    # sigmoid cross-entropy with logits, the stable form Keras uses
    return np.mean(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))), axis=-1)


def np_cce(t, p, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    p = p / p.sum(-1, keepdims=True)
    p = np.clip(p, EPS, 1 - EPS)
    return -np.sum(t * np.log(p), axis=-1)


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_cce_logits(t, z, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    return -np.sum(t * np_log_softmax(z), axis=-1)


def np_scce(labels, p):
    return np_cce(np.eye(p.shape[-1])[labels], p)


def np_scce_logits(labels, z):
    return np_cce_logits(np.eye(z.shape[-1])[labels], z)


def _hinge_labels(t):
    return 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t


def np_hinge(t, p):
    return np.mean(np.maximum(1.0 - _hinge_labels(t) * p, 0.0), axis=-1)


def np_squared_hinge(t, p):
    return np.mean(np.maximum(1.0 - _hinge_labels(t) * p, 0.0) ** 2, axis=-1)


def np_poisson(t, p):
    return np.mean(p - t * np.log(p + EPS), axis=-1)


def np_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), axis=-1)


def np_cosine_similarity(t, p):
    def l2_normalize(x):
        return x / np.sqrt(np.maximum(np.sum(x**2, axis=-1, keepdims=True), 1e-12))

    return -np.sum(l2_normalize(t) * l2_normalize(p), axis=-1)


def np_categorical_hinge(t, p):
    pos = np.sum(t * p, axis=-1)
    neg = np.max((1.0 - t) * p, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def np_binary_focal(t, p, gamma=2.0, alpha=0.25, balance=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    p_t = t * p + (1 - t) * (1 - p)
    focal = (1 - p_t) ** gamma * bce
    if balance:
        focal = (t * alpha + (1 - t) * (1 - alpha)) * focal
    return np.mean(focal, axis=-1)


def np_categorical_focal(t, p, gamma=2.0, alpha=0.25, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    p = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return np.sum(alpha * (1 - p) ** gamma * -t * np.log(p), axis=-1)


@dataclass(frozen=True)
class LossCase:
    canonical: str
    data: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray]
    #: element by element on (N, C): a trailing-1 target works, shapes must match
    elementwise: bool = True


CANONICAL = {
    c.canonical: c
    for c in [
        LossCase("mean_squared_error", regression_data, np_mse),
        LossCase("mean_absolute_error", regression_data, np_mae),
        LossCase("mean_absolute_percentage_error", regression_data, np_mape),
        LossCase("mean_squared_logarithmic_error", regression_data, np_msle),
        LossCase("huber_loss", regression_data, np_huber),
        LossCase("log_cosh", regression_data, np_log_cosh),
        LossCase("binary_crossentropy", binary_data, np_bce),
        LossCase("binary_focal_crossentropy", binary_data, np_binary_focal),
        LossCase("categorical_focal_crossentropy", categorical_data, np_categorical_focal),
        LossCase("categorical_hinge", categorical_data, np_categorical_hinge),
        LossCase("categorical_crossentropy", categorical_data, np_cce, elementwise=False),
        LossCase("sparse_categorical_crossentropy", sparse_data, np_scce, elementwise=False),
        LossCase("hinge", hinge_data, np_hinge),
        LossCase("squared_hinge", hinge_data, np_squared_hinge),
        LossCase("poisson", regression_data, np_poisson),
        LossCase("kl_divergence", distribution_data, np_kld, elementwise=False),
        LossCase("cosine_similarity", vector_data, np_cosine_similarity, elementwise=False),
    ]
}
#: the Keras aliases, written here independently of batchfit.losses
ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "huber": "huber_loss",
    "logcosh": "log_cosh",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
}
ALL_NAMES = sorted([*CANONICAL, *ALIASES])
table = pytest.mark.parametrize("name", ALL_NAMES)


def _case(name: str) -> LossCase:
    return CANONICAL[ALIASES.get(name, name)]


def _tensors(
    case: LossCase, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    y_true, y_pred = case.data(_rng(seed))
    t = torch.from_numpy(y_true)
    if t.dtype != torch.int64:
        t = t.float()
    return t, torch.from_numpy(y_pred).float(), y_true, y_pred


def _close(actual: torch.Tensor, expected: float) -> None:
    assert actual.dim() == 0
    assert float(actual) == pytest.approx(float(expected), rel=2e-5, abs=1e-6)


# -- the table ---------------------------------------------------------------------------------
#: losses of the whole batch (one value, no per-sample values for the table above); they
#: are checked against Keras in test_keras_parts_table.py
BATCH_LOSSES = ["dice", "tversky"]


def test_table_covers_every_name() -> None:
    assert losses.names() == sorted([*ALL_NAMES, *BATCH_LOSSES])


@table
@pytest.mark.parametrize("seed", [0, 1])
def test_value_equals_numpy(name: str, seed: int) -> None:
    case = _case(name)
    loss = losses.get(name)
    t, p, y_true, y_pred = _tensors(case, seed)
    _close(loss(t, p), case.reference(y_true, y_pred).mean())


@table
def test_sample_weight_is_weighted_sum_over_batch_size(name: str) -> None:
    case = _case(name)
    loss = losses.get(name)
    t, p, y_true, y_pred = _tensors(case)
    weights = _rng(5).uniform(0, 2, N)
    weights[2] = 0.0
    expected = (case.reference(y_true, y_pred) * weights).sum() / N
    _close(loss(t, p, torch.from_numpy(weights).float()), expected)
    _close(loss(t, p, torch.from_numpy(weights).float().reshape(N, 1)), expected)
    # all-ones weights give the unweighted value
    _close(loss(t, p, torch.ones(N)), case.reference(y_true, y_pred).mean())


@table
def test_gradients_are_finite(name: str) -> None:
    case = _case(name)
    loss = losses.get(name)
    t, p, _, _ = _tensors(case)
    p = p.clone().requires_grad_(True)
    loss(t, p).backward()
    assert p.grad is not None
    assert torch.isfinite(p.grad).all()
    assert p.grad.abs().sum() > 0
    q = p.detach().clone().requires_grad_(True)
    loss(t, q, torch.linspace(0.1, 1.0, N)).backward()
    assert torch.isfinite(q.grad).all()


@table
def test_wrong_target_shape_names_both_shapes(name: str) -> None:
    case = _case(name)
    loss = losses.get(name)
    t, p, _, _ = _tensors(case)
    bad = t[:, :1].repeat(1, C + 1) if t.dim() == 2 else t.reshape(N, 1).repeat(1, 2)
    with pytest.raises(ValueError) as info:
        loss(bad, p)
    message = str(info.value)
    assert str(tuple(bad.shape)) in message
    assert str(tuple(p.shape)) in message or str(tuple(p.shape[:-1])) in message


@table
def test_fewer_samples_in_targets_rejected(name: str) -> None:
    case = _case(name)
    loss = losses.get(name)
    t, p, _, _ = _tensors(case)
    with pytest.raises(ValueError, match=re.escape(str(tuple(t[:-1].shape)))):
        loss(t[:-1], p)


ELEMENTWISE = [n for n in ALL_NAMES if _case(n).elementwise]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_single_output_targets_without_trailing_axis(name: str) -> None:
    """A (N, 1) prediction takes (N,) targets: Keras expands the rank."""
    case = _case(name)
    loss = losses.get(name)
    t, p, y_true, y_pred = _tensors(case)
    t, p, y_true, y_pred = t[:, 0], p[:, :1], y_true[:, :1], y_pred[:, :1]
    _close(loss(t, p), case.reference(y_true, y_pred).mean())
    _close(loss(t.reshape(N, 1), p), case.reference(y_true, y_pred).mean())


@pytest.mark.parametrize("name", ["mse", "binary_crossentropy"])
def test_trailing_axis_on_targets_only(name: str) -> None:
    case = _case(name)
    t, p, y_true, y_pred = _tensors(case)
    value = losses.get(name)(t[:, :1], p[:, 0])
    _close(value, case.reference(y_true[:, :1], y_pred[:, :1]).mean())


@table
def test_unweighted_fast_path_equals_per_sample_mean(name: str) -> None:
    loss = losses.get(name)
    t, p, _, _ = _tensors(_case(name), seed=3)
    checked = loss.check_shapes(t, p)
    torch.testing.assert_close(loss(t, p), loss.per_sample(checked, p).mean(), rtol=1e-6, atol=1e-7)
    assert loss.per_sample(checked, p).shape == (N,)


@table
def test_config_round_trip(name: str) -> None:
    loss = losses.get(name)
    t, p, _, _ = _tensors(_case(name))
    rebuilt = losses.get(loss.get_config())
    torch.testing.assert_close(rebuilt(t, p), loss(t, p))


# -- from_logits and label smoothing -------------------------------------------------------------
def _logit_data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(7)
    z = rng.normal(0, 2.0, (N, C))
    if kind == "binary":
        return rng.integers(0, 2, (N, C)).astype(np.float64), z
    if kind == "categorical":
        return np.eye(C)[rng.integers(0, C, N)], z
    return rng.integers(0, C, N), z


LOGIT_CASES = [
    ("binary", losses.BinaryCrossentropy, np_bce_logits, np_bce),
    ("categorical", losses.CategoricalCrossentropy, np_cce_logits, np_cce),
    ("sparse", losses.SparseCategoricalCrossentropy, np_scce_logits, np_scce),
]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize(
    "kind, cls, logit_ref, prob_ref", LOGIT_CASES, ids=[c[0] for c in LOGIT_CASES]
)
def test_from_logits(kind: str, cls: type[losses.Loss], logit_ref: Any, prob_ref: Any) -> None:
    y_true, z = _logit_data(kind)
    t = torch.from_numpy(y_true) if kind == "sparse" else torch.from_numpy(y_true).float()
    zt = torch.from_numpy(z).float()
    expected = logit_ref(y_true, z)
    _close(cls(from_logits=True)(t, zt), expected.mean())
    weights = np.linspace(0.0, 2.0, N)
    _close(
        cls(from_logits=True)(t, zt, torch.from_numpy(weights).float()),
        (expected * weights).sum() / N,
    )
    # the same through the probabilities
    probs = _sigmoid(z) if kind == "binary" else _softmax(z)
    _close(cls()(t, torch.from_numpy(probs).float()), prob_ref(y_true, probs).mean())


SMOOTHING_CASES = [
    ("binary", losses.BinaryCrossentropy, np_bce, binary_data),
    ("categorical", losses.CategoricalCrossentropy, np_cce, categorical_data),
]


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize(
    "kind, cls, reference, data", SMOOTHING_CASES, ids=[c[0] for c in SMOOTHING_CASES]
)
def test_label_smoothing(kind: str, cls: Any, reference: Any, data: Any, from_logits: bool) -> None:
    y_true, y_pred = data(_rng(2))
    if from_logits:
        y_pred = np.log(y_pred / (1 - y_pred)) if kind == "binary" else np.log(y_pred)
        reference = np_bce_logits if kind == "binary" else np_cce_logits
    loss = cls(from_logits=from_logits, label_smoothing=0.2)
    t, p = torch.from_numpy(y_true).float(), torch.from_numpy(y_pred).float()
    expected = reference(y_true, y_pred, label_smoothing=0.2)
    _close(loss(t, p), expected.mean())
    weights = np.linspace(0.5, 1.5, N)
    _close(loss(t, p, torch.from_numpy(weights).float()), (expected * weights).sum() / N)


def test_huber_delta() -> None:
    y_true, y_pred = regression_data(_rng(4))
    loss = losses.Huber(delta=0.4)
    value = loss(torch.from_numpy(y_true).float(), torch.from_numpy(y_pred).float())
    _close(value, np_huber(y_true, y_pred, delta=0.4).mean())


def test_hinge_accepts_plus_minus_one_labels() -> None:
    y_true, y_pred = hinge_data(_rng(6))
    signed = 2 * y_true - 1
    loss = losses.get("hinge")
    value = loss(torch.from_numpy(signed).float(), torch.from_numpy(y_pred).float())
    _close(value, np_hinge(signed, y_pred).mean())


CONFIGURED = [
    ("bce_logits", lambda: losses.BinaryCrossentropy(from_logits=True), binary_data, True),
    ("bce_smoothing", lambda: losses.BinaryCrossentropy(label_smoothing=0.3), binary_data, False),
    (
        "cce_logits",
        lambda: losses.CategoricalCrossentropy(from_logits=True),
        categorical_data,
        True,
    ),
    (
        "scce_logits",
        lambda: losses.SparseCategoricalCrossentropy(from_logits=True),
        sparse_data,
        True,
    ),
    ("huber_delta", lambda: losses.Huber(delta=0.3), regression_data, False),
]


@pytest.mark.parametrize(
    "make, data, logits", [c[1:] for c in CONFIGURED], ids=[c[0] for c in CONFIGURED]
)
def test_config_round_trip_keeps_arguments(
    make: Callable[[], losses.Loss], data: Any, logits: bool
) -> None:
    loss = make()
    y_true, y_pred = data(_rng(8))
    t = torch.from_numpy(y_true)
    t = t if t.dtype == torch.int64 else t.float()
    p = torch.from_numpy(np.log(y_pred) if logits else y_pred).float()
    expected = loss(t, p)
    rebuilt = losses.get(loss.get_config())
    assert type(rebuilt) is type(loss)
    torch.testing.assert_close(rebuilt(t, p), expected)


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_categorical_renormalises_probabilities(name: str) -> None:
    case = _case(name)
    y_true, y_pred = case.data(_rng(9))
    y_pred = y_pred * 2.0  # sums to 2, as from an unnormalised output
    t = torch.from_numpy(y_true)
    t = t if t.dtype == torch.int64 else t.float()
    _close(
        losses.get(name)(t, torch.from_numpy(y_pred).float()), case.reference(y_true, y_pred).mean()
    )


# -- hints for the classic mix-ups ---------------------------------------------------------------
def test_categorical_with_integer_labels_suggests_sparse() -> None:
    _, p, _, _ = _tensors(CANONICAL["categorical_crossentropy"])
    labels = torch.tensor([0.0, 1, 2, 3, 0, 1]).reshape(N, 1)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy") as info:
        losses.get("categorical_crossentropy")(labels, p)
    assert "(6, 1)" in str(info.value) and "(6, 4)" in str(info.value)


def test_sparse_with_one_hot_labels_suggests_categorical() -> None:
    t, p, _, _ = _tensors(CANONICAL["categorical_crossentropy"])
    with pytest.raises(ValueError, match="'categorical_crossentropy'") as info:
        losses.get("sparse_categorical_crossentropy")(t.long(), p)
    assert "(6, 4)" in str(info.value)


def test_sparse_accepts_labels_with_trailing_axis() -> None:
    case = CANONICAL["sparse_categorical_crossentropy"]
    t, p, y_true, y_pred = _tensors(case)
    _close(
        losses.get("sparse_categorical_crossentropy")(t.reshape(N, 1), p),
        np_scce(y_true, y_pred).mean(),
    )


# -- other identifiers and errors ----------------------------------------------------------------
def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        losses.get("mean_squared_eror")
    message = str(info.value)
    assert "mean_squared_eror" in message
    for name in losses.names():
        assert name in message


def test_names_are_case_insensitive() -> None:
    t, p, _, _ = _tensors(CANONICAL["mean_squared_error"])
    torch.testing.assert_close(losses.get("MSE")(t, p), losses.get("mse")(t, p))


def test_torch_module_is_called_in_torch_order() -> None:
    t, p, y_true, y_pred = _tensors(CANONICAL["binary_crossentropy"])
    loss = losses.get(torch.nn.BCELoss())
    _close(loss(t, p), np_bce(y_true, y_pred).mean())


def test_callable_is_called_in_keras_order() -> None:
    t, p, y_true, y_pred = _tensors(CANONICAL["mean_absolute_percentage_error"])

    def relative(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        return ((y_true - y_pred) / y_true).abs().mean(-1)

    loss = losses.get(relative)
    expected = np.mean(np.abs((y_true - y_pred) / y_true), -1)
    _close(loss(t, p), expected.mean())
    weights = np.linspace(0, 1, N)
    _close(loss(t, p, torch.from_numpy(weights).float()), (expected * weights).sum() / N)


def test_loss_instance_returned_unchanged() -> None:
    loss = losses.Huber(delta=2.0)
    assert losses.get(loss) is loss


def test_wrong_type_rejected() -> None:
    with pytest.raises(TypeError, match="int"):
        losses.get(3)  # type: ignore[arg-type]
