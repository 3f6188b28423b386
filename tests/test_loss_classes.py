"""Keras' loss classes with their arguments, reductions and function forms, against NumPy.

The names and aliases go through the contract table of `test_losses.py` (whose
NumPy references are shared here); this file covers what a name cannot carry.
Numbers marked "Keras 3.15.1" come from the same call under /work/keras-venv
(KERAS_BACKEND=torch, torch 2.13.0); `benchmarks/keras_metric_parity.py` runs
22 loss configurations, weighted and not, in both libraries: the largest
difference was 2.4e-07.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from test_losses import (
    np_bce,
    np_bce_logits,
    np_binary_focal,
    np_categorical_focal,
    np_categorical_hinge,
    np_cce,
    np_cce_logits,
    np_cosine_similarity,
    np_hinge,
    np_huber,
    np_kld,
    np_log_cosh,
    np_mae,
    np_mape,
    np_mse,
    np_msle,
    np_poisson,
    np_scce,
    np_squared_hinge,
)

from batchfit import losses
from batchfit.layers import Dense, Input
from batchfit.models import Sequential

N, C = 12, 4


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "regression":
        t = rng.uniform(0.5, 3.0, (N, C))
        return t, np.abs(t + rng.normal(0, 1.2, (N, C))) + 0.1
    if kind == "binary":
        return rng.integers(0, 2, (N, C)).astype(np.float64), rng.uniform(0.05, 0.95, (N, C))
    if kind == "logits":
        return rng.integers(0, 2, (N, C)).astype(np.float64), rng.normal(0, 2, (N, C))
    if kind == "categorical":
        return np.eye(C)[rng.integers(0, C, N)], _softmax(rng.normal(0, 1, (N, C)))
    if kind == "sparse":
        return rng.integers(0, C, N), _softmax(rng.normal(0, 1, (N, C)))
    raise AssertionError(kind)


def _weights(seed: int = 4) -> np.ndarray:
    w = np.random.default_rng(seed).uniform(0, 2, N).astype(np.float32).astype(np.float64)
    w[::5] = 0.0
    return w


def _t(a: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(a)
    return t if t.dtype == torch.int64 else t.float()


# class with arguments -> per-sample NumPy reference
CASES: list[tuple[str, Callable[[], losses.Loss], str, Callable[..., np.ndarray]]] = [
    ("Huber(delta=0.5)", lambda: losses.Huber(delta=0.5), "regression",
     lambda t, p: np_huber(t, p, 0.5)),
    ("LogCosh", losses.LogCosh, "regression", np_log_cosh),
    ("MeanAbsolutePercentageError", losses.MeanAbsolutePercentageError, "regression", np_mape),
    ("MeanSquaredLogarithmicError", losses.MeanSquaredLogarithmicError, "regression", np_msle),
    ("BinaryCrossentropy(label_smoothing=0.2)", lambda: losses.BinaryCrossentropy(label_smoothing=0.2),
     "binary", lambda t, p: np_bce(t, p, 0.2)),
    ("BinaryCrossentropy(from_logits=True)", lambda: losses.BinaryCrossentropy(from_logits=True),
     "logits", np_bce_logits),
    ("BinaryFocalCrossentropy(balancing, alpha=0.4, gamma=1.5)",
     lambda: losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=1.5),
     "binary", lambda t, p: np_binary_focal(t, p, gamma=1.5, alpha=0.4, balance=True)),
    ("BinaryFocalCrossentropy(from_logits=True, label_smoothing=0.1)",
     lambda: losses.BinaryFocalCrossentropy(from_logits=True, label_smoothing=0.1), "logits",
     lambda t, z: np_binary_focal(t, 1 / (1 + np.exp(-z)), label_smoothing=0.1)),
    ("CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)",
     lambda: losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), "logits",
     lambda t, z: np_cce_logits(t, z, 0.1)),
    ("CategoricalFocalCrossentropy(alpha=0.5, gamma=3)",
     lambda: losses.CategoricalFocalCrossentropy(alpha=0.5, gamma=3.0), "categorical",
     lambda t, p: np_categorical_focal(t, p, gamma=3.0, alpha=0.5)),
    ("CategoricalFocalCrossentropy(from_logits=True)",
     lambda: losses.CategoricalFocalCrossentropy(from_logits=True), "logits",
     lambda t, z: np_categorical_focal(t, _softmax(z))),
    ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy, "sparse", np_scce),
    ("KLDivergence", losses.KLDivergence, "categorical", np_kld),
    ("Poisson", losses.Poisson, "regression", np_poisson),
    ("CosineSimilarity", losses.CosineSimilarity, "regression", np_cosine_similarity),
    ("Hinge", losses.Hinge, "logits", np_hinge),
    ("SquaredHinge", losses.SquaredHinge, "logits", np_squared_hinge),
    ("CategoricalHinge", losses.CategoricalHinge, "categorical", np_categorical_hinge),
]  # fmt: skip
BY_ID = {c[0]: c for c in CASES}


@pytest.mark.parametrize("case_id", list(BY_ID))
@pytest.mark.parametrize(
    "reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight", "none"]
)
@pytest.mark.parametrize("weighted", [False, True])
def test_class_and_reduction_equal_numpy(case_id: str, reduction: str, weighted: bool) -> None:
    _, make, kind, reference = BY_ID[case_id]
    loss = make()
    loss.reduction = reduction
    t, p = _data(kind)
    w = _weights() if weighted else None
    got = loss(_t(t), _t(p), None if w is None else torch.from_numpy(w).float())
    values = reference(t, p) * (1.0 if w is None else w)
    want: Any = {
        "sum_over_batch_size": values.sum() / N,
        "sum": values.sum(),
        "mean_with_sample_weight": values.sum() / (N if w is None else w.sum()),
        "none": values,
    }[reduction]
    np.testing.assert_allclose(got.double().numpy(), want, rtol=3e-5, atol=2e-6)


@pytest.mark.parametrize("case_id", list(BY_ID))
def test_config_round_trip(case_id: str) -> None:
    _, make, kind, _ = BY_ID[case_id]
    loss = make()
    config = loss.get_config()
    rebuilt = losses.get(config)
    # Keras' serialized form, {"class_name": ..., "config": {...}}, works as well
    keras_form = losses.get({"class_name": config["class_name"], "config": config})
    assert rebuilt.get_config() == keras_form.get_config() == config
    t, p = (_t(a) for a in _data(kind))
    assert float(rebuilt(t, p)) == pytest.approx(float(loss(t, p)), rel=1e-6)


FUNCTIONS = {
    "mean_squared_error": (np_mse, "regression"),
    "mean_absolute_error": (np_mae, "regression"),
    "mean_absolute_percentage_error": (np_mape, "regression"),
    "mean_squared_logarithmic_error": (np_msle, "regression"),
    "huber": (np_huber, "regression"),
    "log_cosh": (np_log_cosh, "regression"),
    "binary_crossentropy": (np_bce, "binary"),
    "binary_focal_crossentropy": (np_binary_focal, "binary"),
    "categorical_crossentropy": (np_cce, "categorical"),
    "categorical_focal_crossentropy": (np_categorical_focal, "categorical"),
    "sparse_categorical_crossentropy": (np_scce, "sparse"),
    "kl_divergence": (np_kld, "categorical"),
    "poisson": (np_poisson, "regression"),
    "cosine_similarity": (np_cosine_similarity, "regression"),
    "hinge": (np_hinge, "logits"),
    "squared_hinge": (np_squared_hinge, "logits"),
    "categorical_hinge": (np_categorical_hinge, "categorical"),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_forms_return_per_sample_values(name: str) -> None:
    reference, kind = FUNCTIONS[name]
    t, p = _data(kind)
    fn = getattr(losses, name)
    got = fn(t, p.astype(np.float32))  # NumPy in, as keras.losses.<fn> accepts
    assert tuple(got.shape) == (N,)
    np.testing.assert_allclose(got.double().numpy(), reference(t, p), rtol=3e-5, atol=2e-6)


def test_short_function_names_are_keras_aliases() -> None:
    assert losses.mse is losses.mean_squared_error and losses.mae is losses.mean_absolute_error
    assert losses.mape is losses.mean_absolute_percentage_error
    assert losses.msle is losses.mean_squared_logarithmic_error
    assert losses.kld is losses.kl_divergence and losses.logcosh is losses.log_cosh
    # Keras 3.15.1: mean_squared_error([[1, 2], [3, 4]], zeros) -> [2.5, 12.5]
    assert losses.mse([[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]).tolist() == [2.5, 12.5]


def test_probabilities_are_clipped_as_keras() -> None:
    # Keras 3.15.1: BinaryCrossentropy()([[0], [1]], [[1], [0]]) = 16.030239 (clip to
    # [1e-7, 1 - 1e-7] in float32); CategoricalCrossentropy()([[0, 1]], [[1, 0]]) = 16.118095
    bce = losses.BinaryCrossentropy()(torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [0.0]]))
    assert float(bce) == pytest.approx(16.030239, rel=1e-6)
    cce = losses.CategoricalCrossentropy()(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
    assert float(cce) == pytest.approx(16.118095, rel=1e-6)


def test_ignore_class_averages_over_the_other_labels() -> None:
    # Keras 3.15.1: SparseCategoricalCrossentropy(ignore_class=0)([0, 1, 1],
    # [[.5, .5], [.2, .8], [.6, .4]], sample_weight=[1, 2, 1]) = 0.6812889
    loss = losses.SparseCategoricalCrossentropy(ignore_class=0)
    p = np.array([[0.5, 0.5], [0.2, 0.8], [0.6, 0.4]], np.float32)
    got = loss(np.array([0, 1, 1]), p, sample_weight=np.array([1.0, 2.0, 1.0]))
    assert float(got) == pytest.approx((2 * -np.log(0.8) + -np.log(0.4)) / 2, rel=1e-6)
    assert float(got) == pytest.approx(0.6812889, rel=1e-6)


def test_sparse_crossentropy_over_a_sequence_with_an_ignored_class() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, (5, 6))
    p = _softmax(rng.normal(0, 1, (5, 6, 3)))
    got = losses.SparseCategoricalCrossentropy(ignore_class=2)(labels, p.astype(np.float32))
    values = -np.log(np.take_along_axis(p, labels[..., None], -1)[..., 0])
    valid = labels != 2
    assert float(got) == pytest.approx((values * valid).sum() / valid.sum(), rel=1e-5)


def test_mean_with_sample_weight_divides_by_the_weights() -> None:
    # Keras 3.15.1: MeanSquaredError(reduction="mean_with_sample_weight")([[1], [2]],
    # [[0], [0]], sample_weight=[1, 3]) = 3.25
    loss = losses.MeanSquaredError(reduction="mean_with_sample_weight")
    got = loss(np.array([[1.0], [2.0]]), np.zeros((2, 1), np.float32), np.array([1.0, 3.0]))
    assert float(got) == pytest.approx(3.25)


def test_bad_reduction_and_unknown_class_are_named() -> None:
    with pytest.raises(
        ValueError, match=r"reduction must be one of .* got 'avg' for loss 'huber_loss'"
    ):
        losses.Huber(reduction="avg")
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        losses.get("focal")
    assert isinstance(losses.get("BinaryFocalCrossentropy"), losses.BinaryFocalCrossentropy)


def test_a_loss_object_in_compile_trains_on_its_numbers() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (rng.uniform(size=(16, 1)) < 0.4).astype(np.float32)
    model = Sequential([Input(shape=(3,)), Dense(1, activation="sigmoid")])
    loss = losses.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=2.0)
    model.compile("sgd", loss)
    p = model.predict(x, verbose=0).astype(np.float64)
    got = model.test_on_batch(x, y)
    assert got == pytest.approx(float(np_binary_focal(y, p, balance=True).mean()), rel=1e-5)
