"""The functional API: graphs of layers checked against NumPy and hand-written torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit import layers
from batchfit.models._functional import Functional


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _dense(x: np.ndarray, layer: layers.Dense) -> np.ndarray:
    kernel, bias = layer.get_weights()
    return x @ kernel + bias


def _mlp() -> tuple[keras.Model, layers.Dense, layers.Dense]:
    inputs = keras.Input(shape=(5,), name="features")
    hidden = layers.Dense(8, activation="relu", name="hidden")
    head = layers.Dense(3, name="head")
    outputs = head(hidden(inputs))
    return keras.Model(inputs, outputs, device="cpu"), hidden, head


def test_input_is_symbolic_with_keras_shapes() -> None:
    x = keras.Input(shape=(28, 28, 1), name="image")
    assert isinstance(x, layers.KerasTensor)
    assert x.shape == (None, 28, 28, 1) and x.name == "image"
    y = layers.Conv2D(4, 3, strides=2, padding="same")(x)
    assert y.shape == (None, 14, 14, 4)
    z = layers.Flatten()(layers.MaxPooling2D()(y))
    assert z.shape == (None, 7 * 7 * 4)
    assert keras.Input(shape=(3,), batch_size=16).shape == (16, 3)
    assert keras.Input(shape=(3,), dtype="int64").dtype == torch.int64


def test_unknown_sizes_stay_none() -> None:
    x = keras.Input(shape=(None, 3))
    y = layers.Dense(4)(x)
    assert y.shape == (None, None, 4)
    model = keras.Model(x, y, device="cpu")
    out = model.predict(np.ones((2, 7, 3), np.float32), verbose=0)
    assert out.shape == (2, 7, 4)


def test_model_of_a_graph_computes_what_numpy_computes() -> None:
    model, hidden, head = _mlp()
    assert isinstance(model, Functional) and isinstance(model, keras.Model)
    x = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    expected = _dense(_relu(_dense(x, hidden)), head)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_keras_surface_of_a_graph() -> None:
    model, hidden, head = _mlp()
    assert [la.name for la in model.layers] == ["features", "hidden", "head"]
    assert isinstance(model.layers[0], layers.InputLayer)
    assert model.get_layer("hidden") is hidden and model.get_layer(index=-1) is head
    assert len(model.inputs) == 1 and model.inputs[0] is model.input
    assert model.outputs == [head.output] and hidden.input is model.input
    assert model.output_names == ["head"]
    with pytest.raises(ValueError, match="no such layer: nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="never been called"):
        _ = layers.Dense(2).output


def test_fit_equals_the_same_sequential_from_the_same_weights() -> None:
    x = np.random.default_rng(1).normal(size=(64, 5)).astype(np.float32)
    y = (x @ np.arange(5, dtype=np.float32) > 0).astype(np.float32)
    functional, _, _ = _mlp()
    sequential = keras.Sequential(
        [keras.Input(shape=(5,)), layers.Dense(8, activation="relu"), layers.Dense(3)],
        device="cpu",
    )
    sequential.set_weights(functional.get_weights())
    results = []
    for model in (functional, sequential):
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
        torch.manual_seed(0)
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=True, verbose=0)
        results.append((history.history, model.get_weights()))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def _two_towers() -> tuple[keras.Model, dict[str, layers.Dense]]:
    title = keras.Input(shape=(4,), name="title")
    body = keras.Input(shape=(6,), name="body")
    parts = {
        "t": layers.Dense(3, name="t"),
        "b": layers.Dense(3, name="b"),
        "priority": layers.Dense(1, activation="sigmoid", name="priority"),
        "department": layers.Dense(2, activation="softmax", name="department"),
    }
    joined = layers.concatenate([parts["t"](title), parts["b"](body)])
    outputs = [parts["priority"](joined), parts["department"](joined)]
    return keras.Model(inputs=[title, body], outputs=outputs, device="cpu"), parts


def _towers_by_hand(parts: dict[str, layers.Dense], t: np.ndarray, b: np.ndarray) -> list[Any]:
    joined = np.concatenate([_dense(t, parts["t"]), _dense(b, parts["b"])], axis=-1)
    logits = _dense(joined, parts["department"])
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    return [
        1 / (1 + np.exp(-_dense(joined, parts["priority"]))),
        soft / soft.sum(-1, keepdims=True),
    ]


def test_several_inputs_and_outputs_as_lists_and_dicts() -> None:
    model, parts = _two_towers()
    rng = np.random.default_rng(2)
    t = rng.normal(size=(8, 4)).astype(np.float32)
    b = rng.normal(size=(8, 6)).astype(np.float32)
    expected = _towers_by_hand(parts, t, b)
    for x in ([t, b], {"title": t, "body": b}):
        got = model.predict(x, verbose=0)
        assert isinstance(got, list) and len(got) == 2
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no \\['body'\\]"):
        model.predict_on_batch({"title": t})


def test_losses_by_output_name_train_and_log_per_output() -> None:
    model, _ = _two_towers()
    rng = np.random.default_rng(3)
    x = {"title": rng.normal(size=(32, 4)), "body": rng.normal(size=(32, 6))}
    y = {
        "priority": rng.integers(0, 2, (32, 1)).astype(np.float32),
        "department": rng.integers(0, 2, 32),
    }
    model.compile(
        "adam",
        loss={"priority": "binary_crossentropy", "department": "sparse_categorical_crossentropy"},
        loss_weights={"priority": 1.0, "department": 0.5},
    )
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    # the total is the weighted sum of the per-output losses, as Keras defines it
    assert before["loss"] == pytest.approx(
        before["priority_loss"] + 0.5 * before["department_loss"], rel=1e-5
    )
    model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"]
    assert isinstance(model.predict(x, verbose=0), list)  # still a list, as Keras


def test_dict_outputs() -> None:
    inputs = keras.Input(shape=(3,))
    dense = layers.Dense(2, name="d")
    model = keras.Model(
        inputs, {"a": dense(inputs), "b": layers.Activation("relu")(dense(inputs))}, device="cpu"
    )
    x = np.random.default_rng(4).normal(size=(5, 3)).astype(np.float32)
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out["a"], _dense(x, dense), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["b"], _relu(_dense(x, dense)), rtol=1e-5, atol=1e-6)


def test_shared_layer_counts_once_and_gets_both_gradients() -> None:
    a, b = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    shared = layers.Dense(2, name="shared")
    diff = layers.Subtract()([shared(a), shared(b)])
    model = keras.Model([a, b], diff, device="cpu")
    assert model.count_params() == 4 * 2 + 2
    assert len(shared._inbound_nodes) == 2
    x1, x2 = torch.randn(3, 4), torch.randn(3, 4)
    model.module(x1, x2).sum().backward()
    kernel_grad = shared.kernel.grad.clone()
    # by hand: d/dW sum((x1 - x2) W^T) = sum over rows of (x1 - x2), for every unit
    expected = (x1 - x2).sum(0).expand(2, 4)
    torch.testing.assert_close(kernel_grad, expected)
    assert "shared[0][0], shared[1][0]" in model.summary(print_fn=lambda s: None)


def test_feature_extraction_shares_weights_with_the_original() -> None:
    model, hidden, head = _mlp()
    extractor = keras.Model(
        inputs=model.inputs, outputs=[la.output for la in model.layers], device="cpu"
    )
    x = np.random.default_rng(5).normal(size=(4, 5)).astype(np.float32)
    feats = extractor.predict(x, verbose=0)
    assert [f.shape for f in feats] == [(4, 5), (4, 8), (4, 3)]
    np.testing.assert_allclose(feats[1], _relu(_dense(x, hidden)), rtol=1e-5, atol=1e-6)
    head.set_weights([np.ones((8, 3), np.float32), np.zeros(3, np.float32)])
    np.testing.assert_allclose(
        extractor.predict(x, verbose=0)[2], feats[1].sum(1, keepdims=True).repeat(3, 1), rtol=1e-5
    )


def test_feature_extraction_from_a_sequential() -> None:
    # keras.io, "The Sequential model" guide: feature extraction with a Sequential model
    initial = keras.Sequential(
        [
            keras.Input(shape=(16, 16, 3)),
            layers.Conv2D(4, 5, strides=2, activation="relu"),
            layers.Conv2D(4, 3, activation="relu", name="my_intermediate_layer"),
            layers.Conv2D(4, 3, activation="relu"),
        ],
        device="cpu",
    )
    extractor = keras.Model(
        inputs=initial.inputs, outputs=initial.get_layer(name="my_intermediate_layer").output
    )
    x = np.random.default_rng(6).normal(size=(2, 16, 16, 3)).astype(np.float32)
    with torch.no_grad():
        expected = initial.layers[1](initial.layers[0](torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(extractor.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    everything = keras.Model(inputs=initial.inputs, outputs=[la.output for la in initial.layers])
    assert [o.shape for o in everything.predict(x, verbose=0)] == [
        (2, 6, 6, 4),
        (2, 4, 4, 4),
        (2, 2, 2, 4),
    ]


def test_a_model_used_as_a_layer_trains_its_weights_in_place() -> None:
    inner, hidden, _ = _mlp()
    inputs = keras.Input(shape=(5,))
    outer = keras.Model(inputs, layers.Dense(1, name="top")(inner(inputs)), device="cpu")
    assert inner in outer.layers
    x = np.random.default_rng(7).normal(size=(6, 5)).astype(np.float32)
    top = outer.get_layer("top")
    np.testing.assert_allclose(
        outer.predict(x, verbose=0), _dense(inner.predict(x, verbose=0), top), rtol=1e-5, atol=1e-6
    )
    before = hidden.get_weights()[0].copy()
    outer.compile("sgd", "mse")
    outer.train_on_batch(x, np.ones((6, 1), np.float32))
    assert not np.array_equal(before, hidden.get_weights()[0])  # the inner model's own layer moved


def test_training_flag_of_a_call_is_kept() -> None:
    inputs = keras.Input(shape=(100,))
    always = layers.Dropout(0.5)(inputs, training=True)
    never = layers.Dropout(0.5)(inputs, training=False)
    model = keras.Model(inputs, [always, never], device="cpu")
    x = torch.ones(2, 100)
    model.module.eval()
    dropped, kept = model.module(x)
    assert (dropped == 0).any() and torch.equal(kept, x)
    model.module.train()
    _, kept = model.module(x)
    assert torch.equal(kept, x)


def test_graph_errors_name_the_problem() -> None:
    a, b = keras.Input(shape=(2,), name="a"), keras.Input(shape=(2,), name="b")
    out = layers.Add()([a, b])
    with pytest.raises(ValueError, match="graph disconnected.*'b'"):
        keras.Model(a, out)
    with pytest.raises(TypeError, match="symbolic tensors"):
        keras.Model(a, np.zeros(2))
    with pytest.raises(ValueError, match="keras.Input"):
        keras.Model(out, layers.Dense(1)(out))
    with pytest.raises(TypeError, match="Sequential takes keras.Input"):
        keras.Sequential([out])  # a layer's output is not an input declaration
    with pytest.raises(ValueError, match="conv2d_bad: expected channels-last images"):
        layers.Conv2D(2, 3, name="conv2d_bad")(a)


def test_summary_shows_shapes_and_connections() -> None:
    model, _ = _two_towers()
    text = model.summary(print_fn=lambda s: None)
    assert "Connected to" in text
    assert "(None, 6)" in text  # the concatenation of two 3-unit towers
    assert "t[0][0], b[0][0]" in text
    assert f"Total params: {model.count_params():,}" in text


def test_integer_input_dtype_is_kept_and_floats_are_cast() -> None:
    ids = keras.Input(shape=(3,), dtype="int64")
    seen = {}

    class Probe(layers.Layer):
        def call(self, x: torch.Tensor) -> torch.Tensor:
            seen["dtype"] = x.dtype
            return x.float()

    model = keras.Model(ids, Probe()(ids), device="cpu")
    model.predict(np.array([[1, 2, 3]], dtype=np.int32), verbose=0)
    assert seen["dtype"] == torch.int64


def _graph_with_everything() -> keras.Model:
    a, b = keras.Input(shape=(4,), name="a"), keras.Input(shape=(3,), name="b")
    inner = keras.Sequential(
        [keras.Input(shape=(7,)), layers.Dense(5, activation="relu")], device="cpu"
    )
    x = inner(layers.concatenate([layers.Dense(4)(a), b]))
    shared = layers.Dense(2, name="shared_head")
    outputs = [
        layers.Add()([shared(x), shared(layers.Dropout(0.5)(x, training=False))]),
        layers.Dense(1, name="o2")(layers.BatchNormalization()(x)),
    ]
    return keras.Model({"a": a, "b": b}, outputs, device="cpu")


def test_save_and_load_give_identical_predictions(tmp_path: Any) -> None:
    model = _graph_with_everything()
    model.compile("adam", loss=["mse", "mse"])
    rng = np.random.default_rng(8)
    x = {
        "a": rng.normal(size=(16, 4)).astype(np.float32),
        "b": rng.normal(size=(16, 3)).astype(np.float32),
    }
    y = [rng.normal(size=(16, 2)).astype(np.float32), rng.normal(size=(16, 1)).astype(np.float32)]
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)  # moves BatchNormalization's statistics too
    path = str(tmp_path / "graph.safetensors")
    model.save(path)
    loaded = keras.models.load_model(path, device="cpu")
    assert [la.name for la in loaded.layers] == [la.name for la in model.layers]
    for got, want in zip(loaded.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_array_equal(got, want)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)  # compiled as saved


class Scale(layers.Layer):
    """A custom layer: multiplies by a constant."""

    def __init__(self, factor: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


def test_a_custom_layer_loads_only_with_custom_objects(tmp_path: Any) -> None:
    inputs = keras.Input(shape=(2,))
    model = keras.Model(inputs, Scale(3.0)(layers.Dense(2)(inputs)), device="cpu")
    path = str(tmp_path / "custom.safetensors")
    model.save(path)
    with pytest.raises(ValueError, match="unknown layer class 'Scale'.*custom_objects"):
        keras.models.load_model(path, device="cpu")
    loaded = keras.models.load_model(path, device="cpu", custom_objects={"Scale": Scale})
    x = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_to_json_and_model_from_json_rebuild_the_architecture() -> None:
    model, _ = _two_towers()
    rebuilt = keras.models.model_from_json(model.to_json())
    assert [type(la).__name__ for la in rebuilt.layers] == [
        type(la).__name__ for la in model.layers
    ]
    assert [la.name for la in rebuilt.layers] == [la.name for la in model.layers]
    rebuilt.set_weights(model.get_weights())  # same architecture: the weights fit
    x = [np.ones((2, 4), np.float32), np.ones((2, 6), np.float32)]
    for got, want in zip(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    sequential = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(2)], device="cpu")
    assert keras.models.model_from_json(sequential.to_json()).count_params() == 8
    with pytest.raises(ValueError, match="model_from_json takes"):
        keras.models.model_from_json('{"class_name": "Evil"}')


def test_a_layer_takes_numpy_arrays() -> None:
    dense = layers.Dense(2, input_dim=3)
    x = np.ones((1, 3))  # float64, as NumPy makes it
    out = dense(x)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy(), _dense(x, dense), rtol=1e-6)


def test_ops_and_arithmetic_on_symbolic_tensors_are_graph_nodes(tmp_path: Any) -> None:
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(3,), name="b")
    dense = layers.Dense(3, name="dense_for_ops")
    mixed = keras.ops.mean(a * 2.0 + dense(b), axis=-1, keepdims=True)
    out = 1.0 - keras.ops.relu(-mixed) / 4.0
    assert mixed.shape == (None, 1) and out.shape == (None, 1)
    model = keras.Model([a, b], out, device="cpu")
    rng = np.random.default_rng(9)
    xa, xb = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    by_hand = (xa * 2.0 + _dense(xb, dense)).mean(-1, keepdims=True)
    expected = 1.0 - _relu(-by_hand) / 4.0
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), expected, rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "ops.safetensors")
    model.save(path)
    loaded = keras.models.load_model(path, device="cpu")
    np.testing.assert_array_equal(
        loaded.predict([xa, xb], verbose=0), model.predict([xa, xb], verbose=0)
    )
    assert ops_names(loaded) == [
        "multiply",
        "add",
        "mean",
        "negative",
        "relu",
        "divide",
        "subtract",
    ]


def ops_names(model: keras.Model) -> list[str]:
    return [la.op for la in model.layers if type(la).__name__ == "OpLayer"]


def test_a_saved_op_must_be_a_keras_op() -> None:
    from batchfit.layers._ops_layer import OpLayer

    with pytest.raises(ValueError, match="unknown operation 'system'"):
        OpLayer.from_config({"name": "x", "trainable": True, "op": "system"})


def test_inputs_of_one_feature_take_a_flat_array_as_keras() -> None:
    inputs = keras.Input(shape=(1,))
    dense = layers.Dense(2)
    model = keras.Model(inputs, dense(inputs), device="cpu")
    x = np.arange(4, dtype=np.float32)  # (N,) for an input (None, 1): Keras adds the axis
    np.testing.assert_allclose(model.predict(x, verbose=0), _dense(x[:, None], dense), rtol=1e-6)
    model.compile("sgd", "mse")
    assert np.isfinite(model.train_on_batch(x, np.zeros((4, 2), np.float32)))
