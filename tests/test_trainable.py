"""`layer.trainable = False` / `model.trainable = False`: frozen weights do not move."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import batchfit as keras
from batchfit import layers


def _data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [0.0]], np.float32)).astype(np.float32)


def test_frozen_layers_keep_their_weights_and_the_rest_trains_as_a_hand_loop() -> None:
    x, y = _data()
    model = keras.Sequential(
        [keras.Input(shape=(4,)), layers.Dense(3), layers.BatchNormalization(), layers.Dense(1)],
        device="cpu",
    )
    dense, norm, head = model.layers
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)  # train everything once
    dense.trainable = False
    norm.trainable = False  # Keras: a frozen BatchNormalization runs in inference mode
    frozen = dense.get_weights() + norm.get_weights()
    start = [w.detach().clone() for w in (head.kernel, head.bias)]

    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)

    for before, after in zip(frozen, dense.get_weights() + norm.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 6

    # the head by hand: features from the frozen layers, SGD on the head only
    with torch.no_grad():
        dense.eval(), norm.eval()
        feats = norm(dense(torch.from_numpy(x)))
    kernel, bias = (w.clone().requires_grad_() for w in start)
    sgd = torch.optim.SGD([kernel, bias], lr=0.1)
    for _ in range(2):
        for i in range(0, len(x), 16):
            sgd.zero_grad()
            F.mse_loss(
                F.linear(feats[i : i + 16], kernel, bias), torch.from_numpy(y[i : i + 16])
            ).backward()
            sgd.step()
    torch.testing.assert_close(head.kernel.detach(), kernel.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head.bias.detach(), bias.detach(), rtol=1e-5, atol=1e-6)


def test_a_frozen_base_model_inside_a_functional_model() -> None:
    # keras.io transfer learning: base_model.trainable = False, a new head on top
    x, y = _data()
    base = keras.Sequential(
        [keras.Input(shape=(4,)), layers.Dense(8, activation="relu")], device="cpu"
    )
    base.trainable = False
    assert not base.trainable and base.trainable_weights == []
    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, layers.Dense(1)(base(inputs, training=False)), device="cpu")
    before = base.get_weights()
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    base.trainable = True
    assert len(model.trainable_weights) == 4


def test_a_frozen_model_stacked_in_a_sequential() -> None:
    # keras.io "The Sequential model" guide, second transfer-learning blueprint
    x, y = _data()
    inputs = keras.Input(shape=(4,))
    base_model = keras.Model(inputs, layers.Dense(6, activation="relu")(inputs), device="cpu")
    base_model.trainable = False
    model = keras.Sequential([base_model, layers.Dense(1)], device="cpu")
    before = base_model.get_weights()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(before, base_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with torch.no_grad():  # by hand: the stack is the base model, then the new head
        head = model.layers[1]
        expected = head(base_model(torch.from_numpy(x)))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected.numpy(), rtol=1e-6)


def test_fit_with_every_weight_frozen_changes_nothing_and_reports_the_loss():
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = x[:, :1] * 2.0
    model = keras.Sequential([layers.Dense(4, input_dim=3), layers.Dense(1)])
    model.trainable = False
    model.compile("adam", "mse")
    before = model.get_weights()
    history = model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(a, b)
    want = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    assert history.history["loss"] == pytest.approx([want, want], rel=1e-6)


def test_calling_a_sequential_with_training_false_runs_dropout_in_inference_mode():
    torch.manual_seed(0)
    model = keras.Sequential([layers.Dense(8, input_dim=3), layers.Dropout(0.5), layers.Dense(1)])
    x = torch.ones(32, 3)
    inference = torch.from_numpy(model.predict(x.numpy(), verbose=0))
    model.module.train()  # as during fit
    a = model(x, training=False)
    assert torch.equal(a, model(x, training=False))  # no dropout
    assert torch.allclose(a, inference, atol=1e-6)
    assert model.module.training  # the mode it had before the call
    assert not torch.equal(a, model(x, training=True))  # dropout on
