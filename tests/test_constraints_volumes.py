"""`keras.constraints`, the volume layers, GroupNormalization, Dot, AUC's curves and
Dice/Tversky beyond the number-for-number rows of `test_keras_parts_table.py`:
where constraints run in the step, saving and loading, Keras' `.keras` files,
configs and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import batchfit
from batchfit import constraints, layers, losses, metrics, optimizers
from batchfit.models import load_model

DATA = Path(__file__).parent / "data_files"


# -- constraints ------------------------------------------------------------------------


def test_constraint_formulas_against_numpy() -> None:
    w = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32) * 2
    norms = np.sqrt((w**2).sum(0, keepdims=True))
    got = constraints.MaxNorm(1.5)(torch.tensor(w)).numpy()
    np.testing.assert_allclose(got, w * np.clip(norms, 0, 1.5) / (1e-7 + norms), rtol=1e-6)
    assert np.sqrt((got**2).sum(0)).max() <= 1.5 + 1e-6
    got = constraints.UnitNorm(axis=1)(torch.tensor(w)).numpy()
    np.testing.assert_allclose(np.sqrt((got**2).sum(1)), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(constraints.NonNeg()(torch.tensor(w)).numpy(), np.maximum(w, 0))


def test_get_serialize_deserialize() -> None:
    assert isinstance(constraints.get("max_norm"), constraints.MaxNorm)
    assert isinstance(constraints.get("NonNeg"), constraints.NonNeg)
    assert isinstance(constraints.get(constraints.UnitNorm), constraints.UnitNorm)
    assert constraints.get(None) is None
    c = constraints.MinMaxNorm(0.2, 0.9, rate=0.5, axis=[0, 1])
    config = constraints.serialize(c)
    assert config == {
        "module": "keras.constraints",
        "class_name": "MinMaxNorm",
        "config": {"min_value": 0.2, "max_value": 0.9, "rate": 0.5, "axis": [0, 1]},
        "registered_name": None,
    }
    back = constraints.get(config)
    assert isinstance(back, constraints.MinMaxNorm) and back.get_config() == c.get_config()


def test_bad_constraints_are_named() -> None:
    with pytest.raises(ValueError, match="'maxnorm'.*max_norm"):
        constraints.get("maxnorm")
    with pytest.raises(ValueError, match="unknown constraint class 'Clip'"):
        constraints.deserialize({"class_name": "Clip", "config": {}})
    layer = layers.Dense(2, kernel_constraint=lambda w: w.clamp(-1, 1), input_dim=3)
    with pytest.raises(ValueError, match="cannot be saved"):
        layer.get_config()


def _constrained_model(**compile_kwargs) -> batchfit.Sequential:
    model = batchfit.Sequential(
        [
            batchfit.Input((5,)),
            layers.Dense(4, kernel_constraint=constraints.MaxNorm(0.3), name="hidden"),
            layers.Dense(1, name="frozen_head", bias_constraint=constraints.NonNeg()),
        ]
    )
    model.compile(optimizer=optimizers.SGD(0.5, **compile_kwargs), loss="mse")
    return model


def test_constraint_runs_after_each_update_in_train_on_batch_and_custom_steps() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 5)).astype("f4"), rng.standard_normal((16, 1)).astype("f4")
    model = _constrained_model()
    model.train_on_batch(x, y)
    kernel = model.get_layer("hidden").get_weights()[0]  # Keras layout (5, 4): axis 0 is inputs
    assert np.sqrt((kernel**2).sum(0)).max() <= 0.3 + 1e-6
    # an explicit `optimizer.apply` (Keras' custom train step) projects as well
    layer = model.get_layer("hidden")
    grads = [torch.full_like(p, -5.0) for p in layer.parameters()]
    model.optimizer.apply(grads, list(layer.parameters()))
    kernel = layer.get_weights()[0]
    np.testing.assert_allclose(np.sqrt((kernel**2).sum(0)), 0.3, rtol=1e-5)


def test_weight_without_gradient_is_not_projected() -> None:
    # as Keras' apply: only variables that received a gradient are constrained
    model = _constrained_model()
    head = model.get_layer("frozen_head")
    x = np.ones((4, 5), "f4")
    model.train_on_batch(x, np.ones((4, 1), "f4"))
    head.set_weights([head.get_weights()[0], np.array([-3.0], "f4")])
    head.trainable = False
    model.train_on_batch(x, np.ones((4, 1), "f4"))
    assert head.get_weights()[1][0] == -3.0


def test_constraint_applies_between_accumulated_updates_too() -> None:
    # Keras projects on every `apply`, also the batches that only accumulate
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 5)).astype("f4"), rng.standard_normal((8, 1)).astype("f4")
    model = _constrained_model(gradient_accumulation_steps=2)
    hidden = model.get_layer("hidden")
    model.train_on_batch(x, y)  # builds; the first batch only accumulates
    big = hidden.get_weights()
    big[0] = big[0] * 50
    hidden.set_weights(big)
    model.train_on_batch(x, y)  # an update batch
    model.train_on_batch(x, y)  # accumulates only: the weights are still projected
    assert np.sqrt((hidden.get_weights()[0] ** 2).sum(0)).max() <= 0.3 + 1e-6


# -- layers: saving, configs, errors ------------------------------------------------------


def _volume_model() -> batchfit.Model:
    inp = batchfit.Input((3, 4, 5, 2))
    c = layers.Conv3D(
        4, 2, padding="same", kernel_constraint=constraints.MaxNorm(2.0), kernel_regularizer="l2"
    )(inp)
    g = layers.GroupNormalization(2, epsilon=0.01)(c)
    m = layers.MaxPooling3D(2, padding="same")(g)
    a = layers.AveragePooling3D(2, strides=1, padding="same")(g)
    gm, ga = layers.GlobalMaxPooling3D()(m), layers.GlobalAveragePooling3D(keepdims=False)(a)
    d = layers.dot([gm, ga], axes=1, normalize=True)
    y = layers.Dense(1)(layers.concatenate([gm, d]))
    return batchfit.Model(inp, y)


@pytest.mark.parametrize("suffix", [".keras", ""])
def test_volume_model_saves_and_loads(tmp_path: Path, suffix: str) -> None:
    model = _volume_model()
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5, 2)).astype("f4")
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / f"volumes{suffix}")
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    conv = next(la for la in loaded.layers if isinstance(la, layers.Conv3D))
    assert conv.kernel_constraint.get_config() == {"max_value": 2.0, "axis": 0}
    assert conv.kernel_regularizer.get_config() == {"l2": 0.01}


def test_keras_written_file_loads() -> None:
    # written by Keras 3.15.1 (benchmarks/keras_reference/keras_parts.py): Conv3D with
    # kernel/bias constraints and a regularizer, GroupNormalization, 3-D pooling, Dot
    from keras_parts_rows import make_data

    model = load_model(str(DATA / "keras_parts_model.keras"))
    x = make_data("model/x", {"x": ("normal", (2, 3, 4, 5, 2))})["x"]
    with np.load(DATA / "keras_parts_reference.npz") as ref:
        expected = ref["model/out"]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    conv = next(la for la in model.layers if isinstance(la, layers.Conv3D))
    assert isinstance(conv.bias_constraint, constraints.NonNeg)
    dense = next(la for la in model.layers if isinstance(la, layers.Dense))
    assert isinstance(dense.kernel_constraint, constraints.UnitNorm)


def test_regularizer_and_constraint_configs_round_trip() -> None:
    for layer in [
        layers.Conv1D(2, 3, kernel_regularizer="l1", kernel_constraint="non_neg"),
        layers.Conv2DTranspose(2, 3, bias_regularizer="l2"),
        layers.SeparableConv2D(2, 3, pointwise_regularizer="l2", depthwise_constraint="unit_norm"),
        layers.DepthwiseConv2D(3, depthwise_regularizer="l1", activity_regularizer="l2"),
        layers.Embedding(5, 2, embeddings_regularizer="l2", embeddings_constraint="max_norm"),
        layers.LSTM(2, recurrent_regularizer="l1", kernel_regularizer="l2"),
        layers.GroupNormalization(4, gamma_constraint="non_neg", beta_regularizer="l1"),
        layers.Dot(axes=(1, 2), normalize=True),
        layers.AveragePooling3D(3, strides=2, padding="same"),
    ]:
        config = layer.get_config()
        assert type(layer).from_config(dict(config)).get_config() == config


def test_separable_pointwise_penalty_and_constraint() -> None:
    layer = layers.SeparableConv2D(
        2, 3, pointwise_regularizer="l2", pointwise_constraint=constraints.NonNeg()
    )
    x = torch.randn(1, 5, 5, 3)
    layer(x)
    penalties = layer.losses
    assert len(penalties) == 1
    expected = 0.01 * float(layer.pointwise_kernel.detach().square().sum())
    assert float(penalties[0].detach()) == pytest.approx(expected, rel=1e-6)
    layer.pointwise_kernel.grad = torch.zeros_like(layer.pointwise_kernel)
    layer.pointwise_kernel.keras_constraint(layer.pointwise_kernel)
    assert float(layer.pointwise_kernel.detach().min()) >= 0.0


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="dot_bad.*x.shape\\[1\\] = 3, y.shape\\[1\\] = 4"):
        layers.Dot(axes=1, name="dot_bad")([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(ValueError, match="batch axis"):
        layers.Dot(axes=0)([torch.ones(2, 3), torch.ones(2, 3)])
    with pytest.raises(
        ValueError, match="groups \\(3\\) must divide the number of channels \\(4\\)"
    ):
        layers.GroupNormalization(3)(torch.ones(2, 5, 4))
    with pytest.raises(ValueError, match="depth, height, width, channels"):
        layers.Conv3D(2, 2)(torch.ones(2, 4, 4, 3))
    with pytest.raises(ValueError, match="depth, height, width, channels"):
        layers.MaxPooling3D()(torch.ones(2, 4, 4, 3))
    with pytest.raises(ValueError, match="curve must be"):
        metrics.AUC(curve="PRC")


def test_volume_reshaping_against_numpy_and_saved(tmp_path: Path) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5, 2)).astype("f4")
    up = layers.UpSampling3D((1, 2, 3))(torch.as_tensor(x)).numpy()
    np.testing.assert_array_equal(up, x.repeat(2, axis=2).repeat(3, axis=3))
    pad = layers.ZeroPadding3D(((1, 0), (2, 1), (0, 3)))(torch.as_tensor(x)).numpy()
    np.testing.assert_array_equal(pad, np.pad(x, ((0, 0), (1, 0), (2, 1), (0, 3), (0, 0))))
    crop = layers.Cropping3D(((1, 0), (1, 2), (0, 3)))(torch.as_tensor(x)).numpy()
    np.testing.assert_array_equal(crop, x[:, 1:, 1:2, 0:2])

    inp = batchfit.Input((3, 4, 5, 2))
    h = layers.Cropping3D((1, 1, 2))(layers.ZeroPadding3D(1)(layers.UpSampling3D(2)(inp)))
    model = batchfit.Model(inp, layers.Dense(1)(layers.GlobalAveragePooling3D()(h)))
    model.save(str(tmp_path / "v.keras"))
    loaded = load_model(str(tmp_path / "v.keras"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 1e-6)
    assert [type(la).__name__ for la in loaded.layers[1:4]] == [
        "UpSampling3D",
        "ZeroPadding3D",
        "Cropping3D",
    ]

    with pytest.raises(ValueError, match="depth, height, width, channels"):
        layers.UpSampling3D()(torch.ones(2, 4, 4, 3))
    with pytest.raises(ValueError, match="cropping \\(2, 2\\) leaves nothing of height 4"):
        layers.Cropping3D(((0, 0), (2, 2), (0, 0)))(torch.ones(2, 3, 4, 5, 1))
    with pytest.raises(ValueError, match="padding must be an int, 3 ints or 3 pairs"):
        layers.ZeroPadding3D((1, 2))
    with pytest.raises(ValueError, match="size must be an int or 3 ints"):
        layers.UpSampling3D((2, 2))


def test_dot_matches_numpy_einsum() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 3, 4)).astype("f4"), rng.standard_normal((2, 5, 4)).astype("f4")
    got = layers.Dot(axes=(2, 2))([torch.tensor(x), torch.tensor(y)]).numpy()
    np.testing.assert_allclose(got, np.einsum("bik,bjk->bij", x, y), rtol=1e-5, atol=1e-6)


def test_group_norm_matches_numpy() -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 6)).astype("f4")
    groups = x.reshape(2, 3, 2, 3)  # channels-last: 2 groups of 3 channels
    mean = groups.mean(axis=(1, 3), keepdims=True)
    var = groups.var(axis=(1, 3), keepdims=True)
    expected = ((groups - mean) / np.sqrt(var + 1e-3)).reshape(2, 3, 6)
    got = layers.GroupNormalization(2)(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# -- AUC and the new losses in training ---------------------------------------------------


def test_multi_label_auc_states_merge_and_compile() -> None:
    rng = np.random.default_rng(6)
    y_true = (rng.uniform(size=(40, 3)) > 0.5).astype("f4")
    y_pred = rng.uniform(size=(40, 3)).astype("f4")
    whole = metrics.AUC(curve="PR", multi_label=True)
    whole.update_state(y_true, y_pred)
    halves = [metrics.AUC(curve="PR", multi_label=True) for _ in range(2)]
    halves[0].update_state(y_true[:20], y_pred[:20])
    halves[1].update_state(y_true[20:], y_pred[20:])
    for key, value in halves[1].states().items():
        halves[0].states()[key].add_(value)
    assert float(halves[0].result()) == pytest.approx(float(whole.result()), abs=1e-12)
    # per-label AUCs averaged: each label alone gives the same areas
    singles = []
    for j in range(3):
        m = metrics.AUC(curve="PR")
        m.update_state(y_true[:, j], y_pred[:, j])
        singles.append(float(m.result()))
    assert float(whole.result()) == pytest.approx(np.mean(singles), rel=1e-9)
    # in compile: built from the first batch
    model = batchfit.Sequential([batchfit.Input((4,)), layers.Dense(3, activation="sigmoid")])
    model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=[metrics.AUC(multi_label=True)]
    )
    history = model.fit(rng.standard_normal((40, 4)).astype("f4"), y_true, epochs=1, verbose=0)
    assert 0.0 <= history.history["auc"][0] <= 1.0


def test_dice_and_tversky_by_name_train_a_model() -> None:
    assert isinstance(losses.get("dice"), losses.Dice)
    assert isinstance(
        losses.get({"class_name": "Tversky", "config": {"alpha": 0.7}}), losses.Tversky
    )
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 4, 4, 1)).astype("f4")
    y = (x > 0).astype("f4")
    model = batchfit.Sequential(
        [batchfit.Input((4, 4, 1)), layers.Conv2D(1, 3, padding="same", activation="sigmoid")]
    )
    model.compile(optimizer=optimizers.Adam(0.05), loss=losses.Tversky(alpha=0.3, beta=0.7))
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0).history["loss"]
    assert history[-1] < history[0]
    # Tversky with alpha = beta = 0.5 is the Dice loss
    yt, yp = torch.tensor(y), torch.tensor(rng.uniform(size=y.shape).astype("f4"))
    assert float(losses.tversky(yt, yp)) == pytest.approx(float(losses.dice(yt, yp)), rel=1e-6)


def test_add_weight_constraint_is_applied_in_fit() -> None:
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1],), initializer="ones", constraint=constraints.NonNeg()
            )

        def call(self, x):
            return x * self.w

    model = batchfit.Sequential([batchfit.Input((3,)), Scale(), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(1.0), loss="mse")
    model.layers[1].set_weights([np.ones((3, 1), "f4"), np.zeros(1, "f4")])
    x = np.ones((8, 3), "f4")
    # the first step takes w to 1 - 2 * (3 + 50) < 0; the constraint projects it to 0
    model.fit(x, np.full((8, 1), -50.0, "f4"), epochs=1, batch_size=8, verbose=0)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], np.zeros(3, "f4"))
