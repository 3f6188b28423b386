"""fit == a train_on_batch loop (bit for bit) == a hand-written torch loop (<= 1e-6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchfit import callbacks as bf_callbacks
from batchfit.data._arrays import epoch_permutation
from batchfit.layers import Dense
from batchfit.models import Model, Sequential
from batchfit.optimizers import SGD, Adam


def _data(n: int = 200, features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x[:, :1] + 0.3 * rng.normal(size=(n, 1)) > 0).astype(np.float32)
    return x, y


def _model(weights: list[np.ndarray] | None = None) -> Sequential:
    model = Sequential([Dense(16, activation="relu", input_dim=8), Dense(1, activation="sigmoid")])
    if weights is not None:
        model.set_weights(weights)
    model.compile(
        optimizer=Adam(learning_rate=0.01), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def _assert_same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        assert wa.shape == wb.shape
        assert np.array_equal(wa, wb), np.abs(wa - wb).max()


def test_fit_equals_train_on_batch_loop_bitwise():
    x, y = _data()
    init = _model().get_weights()
    fitted = _model(init)
    fitted.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    looped = _model(init)
    for _ in range(3):
        for i in range(0, len(x), 32):
            looped.train_on_batch(x[i : i + 32], y[i : i + 32])
    _assert_same_weights(fitted.get_weights(), looped.get_weights())


def test_shuffled_fit_equals_loop_over_the_same_permutations():
    x, y = _data()
    init = _model().get_weights()
    fitted = _model(init)
    # a shuffled fit draws its seed from torch's generator: fix it, and read it back
    torch.manual_seed(123)
    seed = int(torch.randint(0, 2**62, ()).item())
    torch.manual_seed(123)
    fitted.fit(x, y, batch_size=32, epochs=2, shuffle=True, verbose=0)
    looped = _model(init)
    for epoch in range(2):
        order = epoch_permutation(len(x), seed, epoch)
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            looped.train_on_batch(x[idx], y[idx])
    _assert_same_weights(fitted.get_weights(), looped.get_weights())


def _torch_twin(model: Sequential) -> nn.Sequential:
    kernel0, bias0, kernel1, bias1 = model.get_weights()
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(kernel0.T))
        net[0].bias.copy_(torch.from_numpy(bias0))
        net[2].weight.copy_(torch.from_numpy(kernel1.T))
        net[2].bias.copy_(torch.from_numpy(bias1))
    return net


def test_train_on_batch_matches_hand_written_torch_loop():
    x, y = _data()
    model = _model()
    net = _torch_twin(model)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    t = 0
    for _ in range(3):
        for i in range(0, len(x), 32):
            xb, yb = torch.from_numpy(x[i : i + 32]), torch.from_numpy(y[i : i + 32])
            opt.zero_grad()
            out = net(xb)
            loss = F.binary_cross_entropy(out, yb)
            loss.backward()
            t += 1
            # Keras adds epsilon before the step size's bias correction: torch's Adam
            # computes the same update with eps / sqrt(1 - beta_2^t)
            opt.param_groups[0]["eps"] = 1e-7 / math.sqrt(1 - 0.999**t)
            opt.step()
            acc = ((out > 0.5) == (yb > 0.5)).float().mean().item()
            got_loss, got_acc = model.train_on_batch(x[i : i + 32], y[i : i + 32])
            assert got_loss == pytest.approx(loss.item(), abs=1e-6)
            assert got_acc == pytest.approx(acc, abs=1e-7)
    ref = [net[0].weight.T, net[0].bias, net[2].weight.T, net[2].bias]
    for got, want in zip(model.get_weights(), ref):
        np.testing.assert_allclose(got, want.detach().numpy(), atol=1e-6, rtol=0)


def test_wrapped_torch_module_fit_matches_hand_loop():
    x, y = _data()
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    twin = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    twin.load_state_dict(net.state_dict())
    model = Model(net, device="cpu")
    model.compile(optimizer=SGD(learning_rate=0.1, momentum=0.9), loss="mse")
    model.fit(x, y, batch_size=50, epochs=2, shuffle=False, verbose=0)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        for i in range(0, len(x), 50):
            opt.zero_grad()
            F.mse_loss(
                twin(torch.from_numpy(x[i : i + 50])), torch.from_numpy(y[i : i + 50])
            ).backward()
            opt.step()
    for key, value in twin.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, atol=1e-6, rtol=0)


def test_wrapped_module_accepts_a_torch_optimizer_and_loss_module():
    x, y = _data()
    net = nn.Linear(8, 1)
    model = Model(net, device="cpu")
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    model.compile(optimizer=opt, loss=nn.BCEWithLogitsLoss(), metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=20, epochs=5, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after[0] < before[0]
    model.optimizer.learning_rate = 0.01
    assert opt.param_groups[0]["lr"] == 0.01


def test_fit_epoch_loss_is_the_batch_size_weighted_mean_of_batch_losses():
    x, y = _data(n=70)  # batches of 32, 32, 6
    init = _model().get_weights()
    fitted = _model(init)
    history = fitted.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    looped = _model(init)
    losses, sizes = [], []
    for i in range(0, len(x), 32):
        losses.append(looped.train_on_batch(x[i : i + 32], y[i : i + 32])[0])
        sizes.append(len(x[i : i + 32]))
    expected = np.average(losses, weights=sizes)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-6)


def test_fit_equals_loop_with_class_weight_float64_sample_weight_and_a_partial_batch():
    # 200 rows in batches of 32: the last batch holds 8. class_weight and a float64
    # sample_weight together go through the one batch preparation in both paths.
    x, y = _data()
    sw = np.random.default_rng(1).uniform(0.1, 2.0, size=len(x))  # float64 on purpose
    cw = {0: 0.7, 1: 1.9}
    init = _model().get_weights()
    fitted = _model(init)
    history = fitted.fit(
        x, y, sample_weight=sw, class_weight=cw, batch_size=32, epochs=2, shuffle=False, verbose=0
    )
    looped = _model(init)
    for _ in range(2):
        looped.reset_metrics()
        for i in range(0, len(x), 32):
            last = looped.train_on_batch(
                x[i : i + 32],
                y[i : i + 32],
                sample_weight=sw[i : i + 32],
                class_weight=cw,
                reset_metrics=False,
                return_dict=True,
            )
    _assert_same_weights(fitted.get_weights(), looped.get_weights())
    # the running sums of the last epoch agree too (loss weighted by rows, as Keras)
    assert last["loss"] == history.history["loss"][-1]
    assert last["accuracy"] == history.history["accuracy"][-1]
    # and the weights the two paths used are the NumPy product, in float32
    rows = slice(192, 200)
    want = sw[rows].astype(np.float32) * np.where(y[rows, 0] > 0.5, 1.9, 0.7).astype(np.float32)
    from batchfit._engine.batches import BatchConverter

    got = BatchConverter(torch.device("cpu")).convert((x[rows], y[rows], sw[rows]), cw)
    assert got.size == 8
    np.testing.assert_array_equal(got.sample_weight.numpy(), want)


def test_evaluate_equals_a_test_on_batch_pass_with_sample_weight_and_a_partial_batch():
    x, y = _data()
    sw = np.random.default_rng(2).uniform(0.1, 2.0, size=len(x))
    model = _model()
    # Keras 3: `metrics` ignore sample weights, `weighted_metrics` use them
    model.compile(
        optimizer=Adam(learning_rate=0.01),
        loss="binary_crossentropy",
        metrics=["accuracy"],
        weighted_metrics=["accuracy"],
    )
    got = model.evaluate(x, y, sample_weight=sw, batch_size=32, verbose=0, return_dict=True)
    # the same sums, one batch at a time: loss and accuracy by rows, the weighted one by weight
    loss_sum = acc_sum = wacc_sum = acc_weight = 0.0
    for i in range(0, len(x), 32):
        part = model.test_on_batch(x[i : i + 32], y[i : i + 32], sw[i : i + 32], return_dict=True)
        n = len(x[i : i + 32])
        loss_sum += part["loss"] * n
        acc_sum += part["accuracy"] * n
        wacc_sum += part["weighted_accuracy"] * float(sw[i : i + 32].astype(np.float32).sum())
        acc_weight += float(sw[i : i + 32].astype(np.float32).sum())
    assert got["loss"] == pytest.approx(loss_sum / len(x), rel=1e-6)
    assert got["accuracy"] == pytest.approx(acc_sum / len(x), rel=1e-6)
    assert got["weighted_accuracy"] == pytest.approx(wacc_sum / acc_weight, rel=1e-6)
    # and against NumPy on the whole set
    pred = model.predict(x, verbose=0)
    w = sw.astype(np.float32)
    correct = ((pred[:, 0] > 0.5) == (y[:, 0] > 0.5)).astype(np.float64)
    assert got["accuracy"] == pytest.approx(np.mean(correct), rel=1e-6)
    assert got["weighted_accuracy"] == pytest.approx(np.sum(correct * w) / np.sum(w), rel=1e-6)


def test_steps_per_epoch_past_the_data_ends_the_epoch_as_keras_does():
    """Keras 3: 5 batches of arrays with steps_per_epoch=7 train 5 batches an epoch (with a
    "ran out of data" warning), never a cycled stream (issue 13: history [13.68, 9.37, 6.42]
    against Keras' [14.40, 10.99, 8.39])."""
    x, y = _data(n=160)  # 5 batches of 32
    init = _model().get_weights()
    fitted = _model(init)
    with pytest.warns(UserWarning, match="ran out of data") as caught:
        history = fitted.fit(
            x, y, batch_size=32, epochs=3, steps_per_epoch=7, shuffle=False, verbose=0
        )
    assert len(caught) >= 1
    looped = _model(init)
    epoch_losses = []
    for _ in range(3):
        looped.reset_metrics()
        for i in range(0, len(x), 32):
            loss = looped.train_on_batch(x[i : i + 32], y[i : i + 32], reset_metrics=False)[0]
        epoch_losses.append(loss)
    _assert_same_weights(fitted.get_weights(), looped.get_weights())
    np.testing.assert_allclose(history.history["loss"], epoch_losses, rtol=1e-6)


def test_steps_per_epoch_inside_the_data_continues_then_ends_at_the_pass():
    """Keras 3 with 5 batches and steps_per_epoch=3: epochs of 3, 2 (the pass ends), 3, 2."""
    x, y = _data(n=160)
    init = _model().get_weights()
    fitted = _model(init)
    seen: list[int] = []

    class Count(bf_callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.batches)
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            self.batches = getattr(self, "batches", 0) + 1

    with pytest.warns(UserWarning, match="ran out of data"):
        fitted.fit(x, y, batch_size=32, epochs=4, steps_per_epoch=3, shuffle=False, verbose=0,
                   callbacks=[Count()])  # fmt: skip
    assert seen == [3, 2, 3, 2]
    looped = _model(init)
    for _ in range(2):
        for i in range(0, len(x), 32):
            looped.train_on_batch(x[i : i + 32], y[i : i + 32])
    _assert_same_weights(fitted.get_weights(), looped.get_weights())
