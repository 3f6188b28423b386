"""Layers against torch references: layouts, padding, pooling, normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from batchfit.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
    Reshape,
)
from batchfit.models import Sequential


def _images(n=2, h=7, w=9, c=3, seed=0):
    return torch.from_numpy(
        np.random.default_rng(seed).normal(size=(n, h, w, c)).astype(np.float32)
    )


def test_dense_glorot_uniform_limits_and_zero_bias():
    layer = Dense(300, input_dim=200)
    kernel, bias = layer.get_weights()
    limit = math.sqrt(6 / (200 + 300))
    assert kernel.shape == (200, 300) and np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit  # uniform over the whole range
    assert np.all(bias == 0)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv2d_matches_torch_conv_on_channels_first(padding, strides):
    x = _images()
    layer = Conv2D(5, (3, 2), strides=strides, padding=padding, input_shape=(7, 9, 3))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 2, 3, 5)  # Keras layout (kh, kw, in, out)
    out = layer(x).detach()
    w = torch.from_numpy(kernel).permute(3, 2, 0, 1)
    xc = x.permute(0, 3, 1, 2)
    if padding == "same":
        # TensorFlow's 'same': output ceil(n / stride), extra padding at the far side
        ph = max((math.ceil(7 / strides) - 1) * strides + 3 - 7, 0)
        pw = max((math.ceil(9 / strides) - 1) * strides + 2 - 9, 0)
        xc = F.pad(xc, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    ref = F.conv2d(xc, w, torch.from_numpy(bias), strides).permute(0, 2, 3, 1)
    assert out.shape == ref.shape
    if padding == "same":
        assert out.shape[1:3] == (math.ceil(7 / strides), math.ceil(9 / strides))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_conv2d_set_weights_roundtrip_in_keras_layout():
    layer = Conv2D(2, 3, input_shape=(5, 5, 1))
    kernel = np.arange(18, dtype=np.float32).reshape(3, 3, 1, 2)
    layer.set_weights([kernel, np.array([1.0, -1.0], np.float32)])
    got = layer.get_weights()
    np.testing.assert_array_equal(got[0], kernel)
    x = torch.ones(1, 5, 5, 1)
    out = layer(x).detach().numpy()
    assert out[0, 0, 0, 0] == kernel[..., 0].sum() + 1


def test_max_and_average_pooling_match_numpy():
    x = _images(h=4, w=6, c=2)
    out = MaxPooling2D(2)(x).numpy()
    ref = x.numpy().reshape(2, 2, 2, 3, 2, 2).max(axis=(2, 4))
    np.testing.assert_array_equal(out, ref)
    avg = AveragePooling2D(2)(x).numpy()
    np.testing.assert_allclose(
        avg, x.numpy().reshape(2, 2, 2, 3, 2, 2).mean(axis=(2, 4)), rtol=1e-6
    )


def test_average_pooling_same_excludes_padding():
    x = torch.ones(1, 3, 3, 1)
    out = AveragePooling2D(2, padding="same")(x)
    assert out.shape == (1, 2, 2, 1)
    torch.testing.assert_close(out, torch.ones(1, 2, 2, 1))
    mx = MaxPooling2D(2, padding="same")(-x)
    torch.testing.assert_close(mx, -torch.ones(1, 2, 2, 1))


def test_flatten_is_channels_last_order_and_global_pooling():
    x = _images(n=1, h=2, w=2, c=3)
    np.testing.assert_array_equal(Flatten()(x).numpy(), x.numpy().reshape(1, -1))
    np.testing.assert_allclose(
        GlobalAveragePooling2D()(x).numpy(), x.numpy().mean(axis=(1, 2)), rtol=1e-6
    )
    assert Reshape((4, 3))(x).shape == (1, 4, 3)
    with pytest.raises(ValueError, match=r"cannot reshape samples of shape \(2, 2, 3\)"):
        Reshape((5, 2)).build((None, 2, 2, 3))


def test_batch_normalization_keras_momentum_and_weight_order():
    layer = BatchNormalization(input_shape=(3,))
    names = [w.shape for w in layer.get_weights()]
    assert names == [(3,), (3,), (3,), (3,)]  # gamma, beta, moving mean, moving variance
    x = torch.from_numpy(np.random.default_rng(0).normal(5.0, 2.0, size=(64, 3)).astype(np.float32))
    layer.train()
    out = layer(x).detach().numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    _, _, mean, var = layer.get_weights()
    # Keras momentum 0.99: moving = 0.99 * moving + 0.01 * batch statistic
    np.testing.assert_allclose(mean, 0.01 * x.numpy().mean(axis=0), rtol=1e-5)
    # ... with the biased batch variance, as Keras (torch's BatchNorm1d uses ddof=1)
    np.testing.assert_allclose(var, 0.99 + 0.01 * x.numpy().var(axis=0, ddof=0), rtol=1e-5)
    layer.eval()
    np.testing.assert_allclose(
        layer(x).detach().numpy(), (x.numpy() - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5
    )


def test_batch_normalization_moving_statistics_follow_keras_over_many_batches():
    rng = np.random.default_rng(1)
    layer = BatchNormalization(momentum=0.9, epsilon=1e-3)
    layer.train()
    mean, var = np.zeros(4), np.ones(4)
    for _ in range(20):
        x = rng.normal(2.0, 3.0, size=(8, 5, 5, 4)).astype(np.float32)
        layer(torch.from_numpy(x))
        mean = 0.9 * mean + 0.1 * x.mean(axis=(0, 1, 2), dtype=np.float64)
        var = 0.9 * var + 0.1 * x.var(axis=(0, 1, 2), dtype=np.float64)
    _, _, got_mean, got_var = layer.get_weights()
    np.testing.assert_allclose(got_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(got_var, var, rtol=1e-5)


def test_batch_normalization_gradients_match_torch_batch_norm():
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(16, 3, 3, 6)).astype(np.float32))
    x.requires_grad_(True)
    layer = BatchNormalization(center=True, scale=True)
    layer.train()
    layer(x.detach())  # build
    with torch.no_grad():
        layer.gamma.copy_(torch.linspace(0.5, 2.0, 6))
        layer.beta.copy_(torch.linspace(-1.0, 1.0, 6))
    out = layer(x)
    (out * torch.arange(out.numel()).reshape(out.shape).sin()).sum().backward()
    gx, gg = x.grad.clone(), layer.gamma.grad.clone()
    x.grad = None
    gamma = layer.gamma.detach().clone().requires_grad_(True)
    ref = torch.nn.functional.batch_norm(
        x.movedim(-1, 1), None, None, gamma, layer.beta.detach(), True, 0.0, 1e-3
    ).movedim(1, -1)
    (ref * torch.arange(ref.numel()).reshape(ref.shape).sin()).sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gg, gamma.grad)


def test_batch_normalization_on_images_normalises_channels():
    layer = BatchNormalization()
    x = _images(n=8) * 3 + 1
    out = layer(x).detach().numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)


def test_dropout_trains_and_infers():
    layer = Dropout(0.5)
    x = torch.ones(1000, 10)
    layer.train()
    y = layer(x)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    layer.eval()
    assert torch.equal(layer(x), x)


def test_activation_names_and_errors():
    x = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(Activation("relu")(x), torch.relu(x))
    torch.testing.assert_close(Activation("softmax")(x[None])[0], torch.softmax(x, 0))
    with pytest.raises(ValueError, match="unknown activation 'relux'; valid names: .*relu"):
        Dense(3, activation="relux")


def test_small_cnn_trains_end_to_end():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    model = Sequential(
        [
            Conv2D(8, 3, padding="same", activation="relu", input_shape=(8, 8, 1)),
            MaxPooling2D(),
            BatchNormalization(),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=16, epochs=10, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_weight_and_activity_regularizers_join_the_loss_as_keras(kind: str) -> None:
    """Keras 3: loss = compiled loss + l2 * sum(kernel^2) + l1 * sum(|bias|)
    + activity penalty / batch size; saved and reloaded with the model."""
    import batchfit as keras
    from batchfit import regularizers

    rng = np.random.default_rng(0)
    if kind == "dense":
        x = rng.normal(size=(6, 3)).astype(np.float32)
        layer = keras.layers.Dense(
            2, kernel_regularizer=regularizers.l2(0.1), bias_regularizer=regularizers.l1(0.05),
            activity_regularizer="l2", bias_initializer="ones",
        )  # fmt: skip
        inputs = keras.Input((3,))
    else:
        x = rng.normal(size=(6, 5, 5, 2)).astype(np.float32)
        layer = keras.layers.Conv2D(
            2, 3, kernel_regularizer=regularizers.l2(0.1), bias_regularizer=regularizers.l1(0.05),
            activity_regularizer="l2", bias_initializer="ones",
        )  # fmt: skip
        inputs = keras.Input((5, 5, 2))
    model = keras.Model(inputs, layer(inputs))
    model.compile("sgd", "mse")
    out = model.predict(x, verbose=0)
    y = np.zeros_like(out)
    kernel, bias = layer.get_weights()
    expected = (
        np.mean(out**2)
        + 0.1 * np.sum(kernel.astype(np.float64) ** 2)
        + 0.05 * np.sum(np.abs(bias))
        + 0.01 * np.sum(out.astype(np.float64) ** 2) / len(x)  # "l2" is L2(0.01)
    )
    assert model.test_on_batch(x, y) == pytest.approx(expected, rel=1e-5)
    config = layer.get_config()
    assert config["kernel_regularizer"] == {"class_name": "L2", "config": {"l2": 0.1}}
    rebuilt = type(layer)(**{k: v for k, v in config.items() if k != "name"})
    assert rebuilt.kernel_regularizer.l2 == pytest.approx(0.1)
    assert rebuilt.bias_regularizer.l1 == pytest.approx(0.05)
