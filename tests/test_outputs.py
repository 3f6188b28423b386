"""Modules with several outputs: a loss, weight and metrics per output (Keras' compile)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchfit.losses import SparseCategoricalCrossentropy
from batchfit.models import Model


class TwoHeads(nn.Module):
    """A shared body with a regression head and a 3-class head, returned as a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.price = nn.Linear(8, 1)
        self.kind = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.relu(self.body(x))
        return {"price": self.price(h), "kind": self.kind(h)}


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 1)
        self.b = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a(x), torch.sigmoid(self.b(x))


def _data(n: int = 96) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    kind = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x, {"price": x.sum(axis=1, keepdims=True), "kind": kind}


def _model() -> Model:
    torch.manual_seed(0)
    model = Model(TwoHeads())
    model.compile(
        "sgd",
        loss={"price": "mse", "kind": SparseCategoricalCrossentropy(from_logits=True)},
        loss_weights={"kind": 0.5},
        metrics={"price": ["mae"], "kind": ["accuracy"]},
    )
    return model


def _hand_loss(module: nn.Module, x: np.ndarray, y: dict, w: np.ndarray | None = None):
    out = module(torch.from_numpy(x))
    price = (out["price"] - torch.from_numpy(y["price"])) ** 2
    kind = F.cross_entropy(out["kind"], torch.from_numpy(y["kind"]), reduction="none")
    if w is None:
        return price.mean() + 0.5 * kind.mean(), out
    wt = torch.from_numpy(w)
    return (price.ravel() * wt).mean() + 0.5 * (kind * wt).mean(), out


def test_train_on_batch_logs_the_weighted_sum_and_each_output() -> None:
    x, y = _data(16)
    model = _model()
    before = copy.deepcopy(model.module)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert list(logs) == ["loss", "price_loss", "kind_loss", "price_mae", "kind_accuracy"]
    with torch.no_grad():
        total, out = _hand_loss(before, x, y)
        price = F.mse_loss(out["price"], torch.from_numpy(y["price"])).item()
        kind = F.cross_entropy(out["kind"], torch.from_numpy(y["kind"])).item()
        mae = (out["price"] - torch.from_numpy(y["price"])).abs().mean().item()
        accuracy = (out["kind"].argmax(1).numpy() == y["kind"]).mean()
    np.testing.assert_allclose(logs["loss"], total.item(), rtol=1e-6)
    np.testing.assert_allclose([logs["price_loss"], logs["kind_loss"]], [price, kind], rtol=1e-6)
    np.testing.assert_allclose([logs["price_mae"], logs["kind_accuracy"]], [mae, accuracy], 1e-6)


def test_fit_equals_a_hand_written_loop_with_weights_and_validation() -> None:
    x, y = _data()
    w = np.linspace(0.5, 1.5, len(x)).astype(np.float32)
    model = _model()
    hand = copy.deepcopy(model.module)
    history = model.fit(x, y, sample_weight=w, batch_size=16, epochs=2, shuffle=False, verbose=0)
    opt = torch.optim.SGD(hand.parameters(), lr=0.01)
    for _ in range(2):
        for s in range(0, len(x), 16):
            batch = {k: v[s : s + 16] for k, v in y.items()}
            loss, _ = _hand_loss(hand, x[s : s + 16], batch, w[s : s + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for got, want in zip(model.module.parameters(), hand.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert set(history.history) == {"loss", "price_loss", "kind_loss", "price_mae", "kind_accuracy"}
    values = model.evaluate(x, y, verbose=0, return_dict=True)
    with torch.no_grad():
        total, _ = _hand_loss(model.module, x, y)
    np.testing.assert_allclose(values["loss"], total.item(), rtol=1e-5)
    np.testing.assert_allclose(
        values["loss"], values["price_loss"] + 0.5 * values["kind_loss"], rtol=1e-6
    )
    split = _model().fit(x, y, batch_size=16, validation_split=0.25, verbose=0)
    assert "val_kind_accuracy" in split.history and "val_price_loss" in split.history
    predictions = model.predict(x, verbose=0)
    assert predictions["price"].shape == (96, 1) and predictions["kind"].shape == (96, 3)


def test_tuple_outputs_take_lists_and_name_outputs_in_order() -> None:
    x, y = _data()
    flags = (x[:, 2:3] > 0).astype(np.float32)
    torch.manual_seed(1)
    model = Model(Pair())
    model.compile("sgd", loss=["mse", "binary_crossentropy"], metrics=[["mae"], ["accuracy"]])
    history = model.fit(x, [y["price"], flags], batch_size=32, verbose=0)
    assert list(history.history) == [
        "loss",
        "output_1_loss",
        "output_2_loss",
        "output_1_mae",
        "output_2_accuracy",
    ]
    every = Model(Pair())
    every.compile("sgd", loss=("mse", "mse"), metrics=["mae"])  # a flat list: every output
    logs = every.test_on_batch(x, (y["price"], flags), return_dict=True)
    assert {"output_1_mae", "output_2_mae"} <= set(logs)


def test_the_compile_config_round_trips_through_json() -> None:
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=32, verbose=0)
    config = json.loads(json.dumps(model._compile_config))
    again = Model(copy.deepcopy(model.module))
    again.compile("sgd", loss=config["loss"], metrics=config["metrics"])
    assert again.evaluate(x, y, verbose=0, return_dict=True) == pytest.approx(
        model.evaluate(x, y, verbose=0, return_dict=True), rel=1e-6
    )


def test_mismatched_structures_and_arguments_are_refused_clearly() -> None:
    x, y = _data(8)
    model = _model()
    with pytest.raises(ValueError, match=r"targets have no entry 'kind'"):
        model.train_on_batch(x, {"price": y["price"]})
    with pytest.raises(ValueError, match=r"targets must be a dict with key 'price'"):
        model.train_on_batch(x, y["price"])
    with pytest.raises(ValueError, match=r"output 'price': loss 'mean_squared_error' expects"):
        model.train_on_batch(x, {"price": y["price"][:, :0], "kind": y["kind"]})
    with pytest.raises(ValueError, match="loss_weights weighs the losses of several outputs"):
        Model(TwoHeads()).compile("sgd", "mse", loss_weights=[1.0])
    with pytest.raises(ValueError, match=r"loss_weights names outputs \['size'\]"):
        Model(TwoHeads()).compile("sgd", {"price": "mse"}, loss_weights={"size": 2.0})
    with pytest.raises(ValueError, match=r"unknown metric 'maee' for output 'price'"):
        Model(TwoHeads()).compile("sgd", {"price": "mse"}, metrics={"price": ["maee"]})
    with pytest.raises(ValueError, match=r"loss of output 'kind': unknown loss 'cross'"):
        Model(TwoHeads()).compile("sgd", {"price": "mse", "kind": "cross"})
    with pytest.raises(ValueError, match="metrics has 1 lists for 2 outputs"):
        Model(Pair()).compile("sgd", ["mse", "mse"], metrics=[["mae"]])
