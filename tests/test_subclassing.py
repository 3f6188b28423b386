"""Subclassed models and layers (Keras' subclassing API) against independent computations."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit import layers


def _data(n: int = 64, features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    return x, y


class MLP(keras.Model):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = layers.Dense(8, activation="relu")
        self.out = layers.Dense(1)

    def call(self, inputs: torch.Tensor, training: Any = None) -> torch.Tensor:
        return self.out(self.hidden(inputs))


class HandStep(MLP):
    """The guide's basic `train_step` (compute_loss, optimizer.apply, self.metrics)."""

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable_weights = list(self.trainable_weights)
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in trainable_weights], trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def _built(model: keras.Model, x: np.ndarray) -> keras.Model:
    model(torch.as_tensor(x[:1]))  # lazy weights, as Keras builds at the first call
    return model


def test_subclassed_model_trains_like_the_same_sequential() -> None:
    x, y = _data()
    seq = keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(1)])
    _built(seq, x)
    sub = _built(MLP(name="mlp"), x)
    sub.set_weights(seq.get_weights())
    histories = []
    for model in (seq, sub):
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
        histories.append(model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0))
    assert histories[0].history == histories[1].history
    for a, b in zip(seq.get_weights(), sub.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert sub.name == "mlp" and len(sub.trainable_weights) == 4
    assert [n for n, _ in sub.module.named_children()] == ["hidden", "out"]


def test_train_step_override_gives_fit_equal_to_a_train_on_batch_loop() -> None:
    x, y = _data(48)
    first = _built(HandStep(), x)
    second = _built(HandStep(), x)
    second.set_weights(first.get_weights())
    for model in (first, second):
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    history = first.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for _ in range(2):
        second.reset_metrics()  # what fit does at each epoch start
        for start in range(0, 48, 16):
            logs = second.train_on_batch(
                x[start : start + 16], y[start : start + 16], reset_metrics=False, return_dict=True
            )
    for a, b in zip(first.module.parameters(), second.module.parameters()):
        assert torch.equal(a, b)
    assert logs == {k: v[-1] for k, v in history.history.items()}
    assert set(logs) == {"loss", "mae"}  # the compiled metrics' dict is flattened, as Keras


def test_metrics_property_trackers_reset_each_epoch() -> None:
    seen: list[float] = []

    class Tracked(MLP):
        def __init__(self) -> None:
            super().__init__()
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            self.zero_grad()
            loss = self.loss_fn(y, self(x, training=True))
            loss.backward()
            with torch.no_grad():
                self.optimizer.apply(
                    [v.grad for v in self.trainable_weights], self.trainable_weights
                )
            seen.append(loss.item())
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self) -> list[Any]:
            return [self.loss_tracker]

    x, y = _data(40)
    model = Tracked()
    model.compile(optimizer="sgd")
    history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    per_epoch = [np.mean(seen[:4]), np.mean(seen[4:])]
    np.testing.assert_allclose(history.history["loss"], per_epoch, rtol=1e-6)
    model.reset_metrics()
    assert float(model.loss_tracker.result()) == 0.0


def test_custom_test_step_and_predict_step_are_used() -> None:
    modes: list[bool] = []

    class Custom(MLP):
        def train_step(self, data: Any) -> dict[str, Any]:
            modes.append(self.module.training)
            return {}

        def test_step(self, data: Any) -> dict[str, Any]:
            modes.append(self.module.training)
            x, y = data
            return {"max_error": (self(x, training=False) - y).abs().max()}

        def predict_step(self, data: Any) -> torch.Tensor:
            return self(data, training=False) * 2

    x, y = _data(30)
    model = Custom()
    model.compile(optimizer="sgd", loss="mse")
    pred = model(torch.as_tensor(x), training=False).detach().numpy()
    assert model.evaluate(x, y, batch_size=30, verbose=0, return_dict=True) == pytest.approx(
        {"max_error": float(np.abs(pred - y).max())}, rel=1e-6
    )
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * pred, rtol=1e-6)
    model.fit(x, y, batch_size=30, epochs=2, validation_data=(x, y), verbose=0)
    assert modes == [False, True, False, True, False]  # evaluate, then (train, validate) x 2


class ActivityRegularization(layers.Layer):
    def __init__(self, rate: float = 1e-2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        self.add_loss(self.rate * inputs.mean())
        return inputs


class Regularized(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.dense = layers.Dense(3)
        self.activity = ActivityRegularization(0.5)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.activity(self.dense(inputs))


def test_add_loss_adds_exactly_its_value_to_the_loss() -> None:
    x, y3 = _data(20)[0], np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    model = _built(Regularized(), x)
    kernel, bias = model.get_weights()
    pred = x @ kernel + bias
    expected = np.mean((pred - y3) ** 2) + 0.5 * pred.mean()
    model.compile(optimizer="sgd", loss="mse")
    assert model.evaluate(x, y3, batch_size=20, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.train_on_batch(x, y3) == pytest.approx(expected, rel=1e-5)
    # reset at each outermost call: one loss after two calls
    model(torch.as_tensor(x))
    model(torch.as_tensor(x))
    assert len(model.losses) == 1
    # without a compiled loss, the added loss alone is trained on (Keras' add_loss-only model)
    fresh = _built(Regularized(), x)
    fresh.compile(optimizer="sgd")
    kernel, bias = fresh.get_weights()
    assert fresh.train_on_batch(x, y3) == pytest.approx(0.5 * (x @ kernel + bias).mean(), rel=1e-5)


class Linear(layers.Layer):
    """The guide's lazy `Linear` with `get_config`, plus a non-trainable counter."""

    def __init__(self, units: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.build_shapes: list[Any] = []

    def build(self, input_shape: Any) -> None:
        self.build_shapes.append(input_shape)
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            regularizer=keras.regularizers.L2(0.1),
        )
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, inputs: torch.Tensor, training: Any = None) -> torch.Tensor:
        if training:
            self.calls.assign_add(1.0)
        return inputs @ self.w + self.b

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_custom_layer_weights_build_and_regularizer() -> None:
    layer = Linear(3)
    out = layer(torch.ones(7, 5))
    assert layer.build_shapes == [(7, 5)]  # Keras' shape, batch size as given
    assert tuple(out.shape) == (7, 3)
    assert layer.weights == [layer.w, layer.b, layer.calls]
    assert layer.trainable_weights == [layer.w, layer.b]
    assert layer.non_trainable_weights == [layer.calls]
    assert float(layer.calls) == 1.0  # called in training mode (a module's default)
    (penalty,) = layer.losses
    assert float(penalty.detach()) == pytest.approx(
        0.1 * float((layer.w.detach() ** 2).sum()), rel=1e-6
    )
    layer.trainable = False
    layer.trainable = True
    assert not layer.calls.requires_grad and layer.w.requires_grad
    assert set(layer.state_dict()) == {"w", "b", "calls"}
    copied = copy.deepcopy(layer)
    assert not copied.calls.trainable and copied.w.trainable


def test_custom_layer_in_a_functional_model_reloads_with_custom_objects(tmp_path: Path) -> None:
    x, y = _data(32)
    inputs = keras.Input(shape=(5,))
    outputs = layers.Dense(1)(Linear(4, name="linear")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "model.safetensors")
    model.save(path)
    with pytest.raises(ValueError, match="Linear"):
        keras.models.load_model(path)
    loaded = keras.models.load_model(path, custom_objects={"Linear": Linear})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert float(loaded.get_layer("linear").calls) == float(model.get_layer("linear").calls) > 0


def test_subclassed_model_weights_save_and_load(tmp_path: Path) -> None:
    x, y = _data()
    model = MLP()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    path = str(tmp_path / "mlp.weights.safetensors")
    model.save_weights(path)
    other = _built(MLP(), x)
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_nested_models_and_containers_are_tracked() -> None:
    inner = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(2)], name="inner")

    class Outer(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.blocks = [layers.Dense(3), layers.Dense(1)]
            self.late: list[Any] = []
            self.late.append(layers.Dense(1))

        def call(self, inputs: torch.Tensor) -> torch.Tensor:
            x = self.inner(inputs)
            for block in self.blocks:
                x = block(x)
            return x + self.late[0](inputs)

    x, _ = _data(4)
    model = Outer()
    model(torch.as_tensor(x))
    names = {n.split(".")[0] for n, _ in model.module.named_parameters()}
    assert names == {"inner", "blocks", "late"}
    assert model.layers == [inner, *model.blocks, *model.late]  # Keras' order: attributes
    assert model.get_layer(inner.name) is inner
    assert "Total params: 31" in model.summary(print_fn=lambda _: None)  # 12 + 9 + 4 + 6
    assert len(model.trainable_weights) == 2 + 4 + 2
    inner.trainable = False
    assert len(model.trainable_weights) == 6 and inner.trainable_weights == []


def test_optimizer_apply_changes_only_the_variables_given() -> None:
    a = torch.nn.Parameter(torch.ones(3))
    b = torch.nn.Parameter(torch.ones(2))
    opt = keras.optimizers.SGD(learning_rate=0.5)
    opt.build([a, b])
    b.grad = torch.full((2,), 7.0)  # a stale gradient of a variable not passed
    opt.apply([torch.tensor([1.0, 2.0, 3.0])], [a])
    torch.testing.assert_close(a.detach(), torch.tensor([0.5, 0.0, -0.5]))
    torch.testing.assert_close(b.detach(), torch.ones(2))
    opt.apply_gradients(zip([torch.ones(2)], [b]))
    torch.testing.assert_close(b.detach(), torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="not one this optimizer was built on"):
        opt.apply([torch.ones(1)], [torch.nn.Parameter(torch.ones(1))])


def test_gan_style_step_with_two_optimizers_and_nested_models() -> None:
    """Two models, two optimizers, a model without `call` (the guide's GAN, shrunk)."""
    disc = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)], name="d")
    gen = keras.Sequential([keras.Input(shape=(2,)), layers.Dense(4)], name="g")

    class GAN(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.discriminator, self.generator = disc, gen
            self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.seed_generator = keras.random.SeedGenerator(3)

        def compile(self, d_optimizer: Any, g_optimizer: Any) -> None:  # type: ignore[override]
            super().compile()
            self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

        def train_step(self, data: Any) -> dict[str, Any]:
            real = data[0] if isinstance(data, tuple) else data
            z = keras.random.normal((real.shape[0], 2), seed=self.seed_generator)
            self.zero_grad()
            d_loss = self.discriminator(torch.cat([self.generator(z), real])).square().mean()
            d_loss.backward()
            grads = [v.value.grad for v in self.discriminator.trainable_weights]
            with torch.no_grad():
                self.d_optimizer.apply(grads, self.discriminator.trainable_weights)
            self.d_loss_tracker.update_state(d_loss)
            return {"d_loss": self.d_loss_tracker.result()}

    gan = GAN()
    gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    g_before = [w.copy() for w in gen.get_weights()]
    d_before = [w.copy() for w in disc.get_weights()]
    history = gan.fit(np.ones((8, 4), np.float32), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][0])
    for before, after in zip(g_before, gen.get_weights()):
        np.testing.assert_array_equal(before, after)  # only the discriminator was updated
    assert any(not np.array_equal(a, b) for a, b in zip(d_before, disc.get_weights()))
    with pytest.raises(NotImplementedError, match="call"):
        gan(torch.ones(1, 4))


def test_compile_accepts_keras_keywords_without_changing_numbers() -> None:
    x, y = _data(32)
    results = []
    for kwargs in ({}, {"steps_per_execution": 4, "run_eagerly": True, "jit_compile": "auto"}):
        torch.manual_seed(0)
        model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse", **kwargs)  # type: ignore[arg-type]
        results.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history)
    assert results[0] == results[1]
    with pytest.raises(ValueError, match="steps_per_execution must be a positive integer, got 0"):
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=0)


def test_a_nan_loss_from_a_train_step_override_stops_fit() -> None:
    """The update is the user's, so the NaN is caught in the logs (end of the epoch)."""

    class Diverging(MLP):
        def train_step(self, data: Any) -> dict[str, Any]:
            return {"loss": torch.tensor(float("nan"))}

    x, y = _data(16)
    model = Diverging()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(FloatingPointError, match="loss is nan in epoch 1"):
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()])
    assert model.stop_training


def test_a_layer_holding_a_sequential_trains_its_weights() -> None:
    """keras.io's TransformerBlock keeps `self.ffn = keras.Sequential([...])`: its weights
    belong to the layer (counted, given to the optimizer, changed by fit)."""
    import batchfit as keras

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.ffn = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)])

        def call(self, x):
            return self.ffn(x)

    inputs = keras.Input((3,))
    model = keras.Model(inputs, Block()(inputs))
    assert model.count_params() == (3 * 4 + 4) + (4 * 2 + 2)
    block = model.layers[-1]
    assert isinstance(block.ffn, keras.Sequential)
    before = [w.copy() for w in block.ffn.get_weights()]
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(16, 3)), rng.normal(size=(16, 2)), epochs=1, verbose=0)
    after = block.ffn.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
