"""Conv family, activation, structural and image layers against NumPy versions of Keras' formulas.

Every reference here is written independently of the code under test: loops
over windows with TensorFlow's documented 'same' padding, transposed
convolutions as the adjoint (transpose matrix) of the forward convolution,
resizing by the half-pixel rule, affine sampling through `np.pad` modes.

Side by side with real Keras 3.15.1 (torch backend, /work/keras-venv), from the
same weights and inputs: `benchmarks/keras_vision_layers.py` gives max |diff|
0.0 for every conv/pooling/padding/activation/structural/resize layer it lists
(49 cases, parameter counts equal) and at most 2.3e-4 on 0..255 pixel values
for rotation/zoom/translation/contrast/brightness at fixed parameters.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit import layers
from batchfit.layers._augment_layers import (
    rotation_transforms,
    translation_transforms,
    zoom_transforms,
)
from batchfit.layers._image_ops import affine_transform

# --------------------------------------------------------------------------- references


def same_pads(n: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow's documented 'same': output ceil(n / s), the odd padding cell at the end."""
    out = math.ceil(n / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def np_conv(x: np.ndarray, kernel: np.ndarray, strides: tuple, dil: tuple, groups: int = 1):
    """Cross-correlation of channels-last `x` (already padded) with a Keras-layout kernel."""
    spatial = kernel.shape[:-2]
    per_group, filters = kernel.shape[-2:]
    out_per_group = filters // groups
    sizes = [
        (x.shape[1 + a] - (spatial[a] - 1) * dil[a] - 1) // strides[a] + 1
        for a in range(len(spatial))
    ]
    y = np.zeros((x.shape[0], *sizes, filters))
    for pos in itertools.product(*[range(s) for s in sizes]):
        for tap in itertools.product(*[range(k) for k in spatial]):
            src = tuple(p * s + t * d for p, s, t, d in zip(pos, strides, tap, dil))
            values = x[(slice(None), *src)]  # (N, C_in)
            for g in range(groups):
                block = values[:, g * per_group : (g + 1) * per_group]
                w = kernel[(*tap, slice(None), slice(g * out_per_group, (g + 1) * out_per_group))]
                y[(slice(None), *pos, slice(g * out_per_group, (g + 1) * out_per_group))] += (
                    block @ w
                )
    return y


def pad_same(x: np.ndarray, kernel: tuple, strides: tuple, dil: tuple) -> np.ndarray:
    pads = [(0, 0)] + [
        same_pads(x.shape[1 + a], kernel[a], strides[a], dil[a]) for a in range(len(kernel))
    ]
    return np.pad(x, [*pads, (0, 0)])


def rng_array(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def run(layer: Any, x: np.ndarray, **kwargs: Any) -> np.ndarray:
    return layer(torch.as_tensor(x), **kwargs).detach().numpy()


# --------------------------------------------------------------------------- convolutions


@pytest.mark.parametrize(
    "padding,strides,dilation,groups,k",
    [
        ("valid", 1, 1, 1, 3),
        ("same", 2, 1, 1, 4),  # even kernel and stride: the extra padding cell goes at the end
        ("same", 1, 1, 1, 4),
        ("same", 1, 2, 1, 3),
        ("causal", 1, 2, 1, 3),
        ("same", 1, 1, 3, 3),
    ],
)
def test_conv1d_matches_numpy(padding: str, strides: int, dilation: int, groups: int, k: int):
    x = rng_array(2, 11, 6)
    layer = layers.Conv1D(6, k, strides, padding, dilation_rate=dilation, groups=groups)
    run(layer, x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (k, 6 // groups, 6) and bias.shape == (6,)  # Keras' layout
    bias = np.random.default_rng(1).normal(size=6).astype(np.float32)
    layer.set_weights([kernel, bias])
    if padding == "causal":
        padded = np.pad(x, [(0, 0), ((k - 1) * dilation, 0), (0, 0)])
    elif padding == "same":
        padded = pad_same(x, (k,), (strides,), (dilation,))
    else:
        padded = x
    want = np_conv(padded, kernel, (strides,), (dilation,), groups) + bias
    np.testing.assert_allclose(run(layer, x), want, rtol=1e-5, atol=1e-5)


def conv_transpose_reference(
    x: np.ndarray, kernel: np.ndarray, strides: tuple, padding: str, out_size: tuple
) -> np.ndarray:
    """The adjoint of the forward convolution from `out_size` to x's size (TensorFlow's definition).

    `kernel` is `(kh, kw, filters, in)`: the forward convolution maps `filters`
    channels to `in`; its matrix, transposed, applied to `x`.
    """
    n = x.shape[0]
    forward_shape = (1, *out_size, kernel.shape[-2])
    columns = []
    for i in range(int(np.prod(forward_shape))):
        basis = np.zeros(int(np.prod(forward_shape)))
        basis[i] = 1.0
        z = basis.reshape(forward_shape)
        if padding == "same":
            z = pad_same(z, kernel.shape[:-2], strides, (1,) * len(strides))
        columns.append(np_conv(z, kernel, strides, (1,) * len(strides)).ravel())
    matrix = np.stack(columns, axis=1)  # forward: R^(out) -> R^(in)
    assert matrix.shape[0] == int(np.prod(x.shape[1:])), "forward conv must land on x's shape"
    return (x.reshape(n, -1) @ matrix).reshape(n, *forward_shape[1:])


@pytest.mark.parametrize(
    "k,strides,padding,output_padding",
    [
        (3, 2, "valid", None),
        (3, 2, "same", None),
        (4, 2, "same", None),
        (2, 3, "same", None),  # kernel smaller than the stride
        (3, 2, "valid", 1),
        (3, 2, "same", 1),
    ],
)
def test_conv2d_transpose_is_the_adjoint_of_conv2d(k, strides, padding, output_padding):
    x = rng_array(2, 3, 4, 2)
    layer = layers.Conv2DTranspose(3, k, strides, padding, output_padding=output_padding)
    y = run(layer, x)
    kernel, bias = layer.get_weights()
    assert kernel.shape == (k, k, 3, 2)  # Keras: (kh, kw, filters, in_channels)
    if output_padding is None:
        size = [(n - 1) * strides + k if padding == "valid" else n * strides for n in (3, 4)]
    else:  # Keras' deconv_output_length
        pad = 0 if padding == "valid" else k // 2
        size = [(n - 1) * strides + k - 2 * pad + output_padding for n in (3, 4)]
    assert y.shape == (2, *size, 3)
    want = conv_transpose_reference(x, kernel, (strides, strides), padding, tuple(size)) + bias
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv1d_transpose_matches_the_2d_one_on_a_single_row():
    x = rng_array(2, 5, 3)
    one = layers.Conv1DTranspose(4, 3, strides=2, padding="same")
    two = layers.Conv2DTranspose(4, (1, 3), strides=(1, 2), padding="same")
    run(one, x)
    kernel, bias = one.get_weights()
    run(two, x[:, None])
    two.set_weights([kernel[None], bias])
    np.testing.assert_allclose(run(one, x), run(two, x[:, None])[:, 0], rtol=1e-6, atol=1e-6)


def np_depthwise(x: np.ndarray, kernel: np.ndarray, strides: tuple) -> np.ndarray:
    c = kernel.shape[2]
    outs = [
        np_conv(x[..., ci : ci + 1], kernel[:, :, ci : ci + 1, :], strides, (1, 1))
        for ci in range(c)
    ]
    return np.concatenate(outs, axis=-1)  # channel ci * m + mi, as Keras


@pytest.mark.parametrize("padding,strides", [("same", 1), ("valid", 2), ("same", 2)])
def test_depthwise_and_separable_match_numpy(padding: str, strides: int):
    x = rng_array(2, 7, 6, 3)
    depthwise = layers.DepthwiseConv2D(3, strides, padding, depth_multiplier=2)
    run(depthwise, x)
    kernel, bias = depthwise.get_weights()
    assert kernel.shape == (3, 3, 3, 2) and bias.shape == (6,)
    bias = rng_array(6, seed=2)
    depthwise.set_weights([kernel, bias])
    padded = pad_same(x, (3, 3), (strides,) * 2, (1, 1)) if padding == "same" else x
    want = np_depthwise(padded, kernel, (strides, strides)) + bias
    np.testing.assert_allclose(run(depthwise, x), want, rtol=1e-5, atol=1e-5)

    separable = layers.SeparableConv2D(5, 3, strides, padding, depth_multiplier=2)
    run(separable, x)
    shapes = [w.shape for w in separable.get_weights()]
    assert shapes == [(3, 3, 3, 2), (1, 1, 6, 5), (5,)]  # Keras' order and shapes
    pointwise = rng_array(1, 1, 6, 5, seed=3)
    separable.set_weights([kernel, pointwise, bias[:5]])
    want = np_depthwise(padded, kernel, (strides, strides)) @ pointwise[0, 0] + bias[:5]
    np.testing.assert_allclose(run(separable, x), want, rtol=1e-5, atol=1e-5)


def test_parameter_counts_equal_keras():
    # counts printed by Keras 3.15.1 `count_params()` for the same layers and inputs
    cases = [
        (layers.Conv1D(4, 3), (2, 11, 3), 40),
        (layers.Conv1D(6, 3, groups=3), (2, 9, 6), 42),
        (layers.Conv2DTranspose(3, 4, strides=2, padding="same"), (2, 5, 6, 2), 99),
        (layers.DepthwiseConv2D(3, depth_multiplier=2), (2, 6, 7, 3), 60),
        (layers.SeparableConv2D(5, 3, depth_multiplier=2), (2, 6, 7, 3), 89),
        (layers.PReLU(shared_axes=[1, 2]), (2, 4, 5, 3), 3),
    ]
    for layer, shape, count in cases:
        layer(torch.zeros(shape))
        assert sum(w.size for w in layer.get_weights()) == count, layer.name


# --------------------------------------------------------------------------- pooling, padding


def np_pool1d(x: np.ndarray, k: int, s: int, padding: str, kind: str) -> np.ndarray:
    """Keras' torch backend: symmetric 'same' padding is not counted; asymmetric replicates the edge."""
    before, after = same_pads(x.shape[1], k, s) if padding == "same" else (0, 0)
    if before == after:
        steps = [
            (i * s - before, i * s - before + k)
            for i in range((x.shape[1] + 2 * before - k) // s + 1)
        ]
        cells = [x[:, max(a, 0) : min(b, x.shape[1])] for a, b in steps]
    else:
        padded = np.pad(x, [(0, 0), (before, after), (0, 0)], mode="edge")
        cells = [padded[:, i * s : i * s + k] for i in range((padded.shape[1] - k) // s + 1)]
    reduce = np.max if kind == "max" else np.mean
    return np.stack([reduce(c, axis=1) for c in cells], axis=1)


@pytest.mark.parametrize(
    "k,s,padding", [(2, 2, "valid"), (3, 2, "same"), (3, 1, "same"), (2, 1, "same")]
)
def test_pooling_1d_matches_numpy(k: int, s: int, padding: str):
    x = rng_array(2, 10, 3)
    got_max = run(layers.MaxPooling1D(k, s, padding), x)
    got_avg = run(layers.AveragePooling1D(k, s, padding), x)
    np.testing.assert_allclose(got_max, np_pool1d(x, k, s, padding, "max"), rtol=1e-6)
    np.testing.assert_allclose(got_avg, np_pool1d(x, k, s, padding, "mean"), rtol=1e-5, atol=1e-6)


def test_average_pooling_2d_same_follows_keras_torch_backend_at_the_far_edge():
    # 6 rows, pool 3, stride 2: one padding row at the bottom, filled by replicating the edge
    # and counted (TensorFlow would average the last window over 2 rows, not 3)
    x = rng_array(1, 6, 6, 1)
    got = run(layers.AveragePooling2D(3, strides=2, padding="same"), x)
    padded = np.pad(x, [(0, 0), (0, 1), (0, 1), (0, 0)], mode="edge")
    want = np.array(
        [
            [padded[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, 0].mean() for j in range(3)]
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(got[0, :, :, 0], want, rtol=1e-6)


def test_global_pooling_keepdims():
    x = rng_array(2, 6, 4, 3)
    np.testing.assert_allclose(
        run(layers.GlobalAveragePooling2D(keepdims=True), x),
        x.mean(axis=(1, 2), keepdims=True),
        rtol=1e-6,
    )
    seq = x[:, 0]
    assert run(layers.GlobalMaxPooling1D(), seq).shape == (2, 3)
    np.testing.assert_allclose(
        run(layers.GlobalMaxPooling1D(keepdims=True), seq), seq.max(1, keepdims=True)
    )
    np.testing.assert_allclose(run(layers.GlobalAveragePooling1D(), seq), seq.mean(1), rtol=1e-6)


def np_resize_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel bilinear resize (torch's align_corners=False, which Keras' torch backend uses)."""

    def axis_weights(n_in: int, n_out: int) -> np.ndarray:
        src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, None)
        lo = np.minimum(np.floor(src).astype(int), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), lo] += 1 - (src - lo)
        m[np.arange(n_out), hi] += src - lo
        return m

    rows, cols = axis_weights(x.shape[1], out_h), axis_weights(x.shape[2], out_w)
    return np.einsum("hi,wj,nijc->nhwc", rows, cols, x)


def test_upsampling_zero_padding_and_cropping_match_numpy():
    x = rng_array(2, 4, 5, 3)
    np.testing.assert_array_equal(run(layers.UpSampling2D((2, 3)), x), x.repeat(2, 1).repeat(3, 2))
    np.testing.assert_allclose(
        run(layers.UpSampling2D(2, interpolation="bilinear"), x),
        np_resize_bilinear(x, 8, 10),
        rtol=1e-5,
        atol=1e-6,
    )
    seq = x[:, :, 0]
    np.testing.assert_array_equal(run(layers.UpSampling1D(3), seq), seq.repeat(3, 1))
    np.testing.assert_array_equal(
        run(layers.ZeroPadding2D(((1, 2), (3, 0))), x), np.pad(x, [(0, 0), (1, 2), (3, 0), (0, 0)])
    )
    np.testing.assert_array_equal(
        run(layers.ZeroPadding2D(1), x), np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    )
    np.testing.assert_array_equal(
        run(layers.ZeroPadding1D((2, 1)), seq), np.pad(seq, [(0, 0), (2, 1), (0, 0)])
    )
    np.testing.assert_array_equal(run(layers.Cropping2D(((1, 0), (2, 1))), x), x[:, 1:, 2:4])
    np.testing.assert_array_equal(run(layers.Cropping2D(1), x), x[:, 1:3, 1:4])
    np.testing.assert_array_equal(run(layers.Cropping1D((1, 2)), seq), seq[:, 1:2])
    with pytest.raises(ValueError, match="cropping .* leaves nothing of height 4"):
        layers.Cropping2D(((2, 2), (0, 0)))(torch.zeros(1, 4, 5, 3))


# --------------------------------------------------------------------------- activations


def test_activation_layers_match_keras_formulas():
    x = rng_array(4, 50) * 2
    # Keras' documented ReLU: max_value above it; x in [threshold, max_value); slope * (x - threshold) below
    relu = np.where(x >= 1.5, 1.5, np.where(x >= 0.2, x, 0.1 * (x - 0.2)))
    np.testing.assert_allclose(run(layers.ReLU(1.5, 0.1, 0.2), x), relu, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run(layers.ReLU(), x), np.maximum(x, 0))
    np.testing.assert_allclose(run(layers.ReLU(threshold=0.5), x), np.where(x > 0.5, x, 0))
    np.testing.assert_allclose(run(layers.LeakyReLU(), x), np.where(x >= 0, x, 0.3 * x), rtol=1e-6)
    np.testing.assert_allclose(
        run(layers.ELU(0.7), x), np.where(x > 0, x, 0.7 * np.expm1(x)), rtol=1e-5, atol=1e-7
    )
    e = np.exp(x - x.max(axis=0, keepdims=True))
    np.testing.assert_allclose(run(layers.Softmax(axis=0), x), e / e.sum(0), rtol=1e-5)
    cube = x.reshape(4, 5, 10)
    e = np.exp(cube - cube.max(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(
        run(layers.Softmax(axis=(1, 2)), cube),
        e / e.sum((1, 2), keepdims=True),
        rtol=1e-5,
        atol=1e-8,
    )
    mask = np.arange(50)[None].repeat(4, 0) < 30
    got = layers.Softmax()(torch.as_tensor(x), mask=torch.as_tensor(mask)).numpy()
    e = np.exp(x[:, :30] - x[:, :30].max(1, keepdims=True))
    np.testing.assert_allclose(got[:, :30], e / e.sum(1, keepdims=True), rtol=1e-5)
    assert got[:, 30:].max() < 1e-30


def test_leaky_relu_takes_keras2_alpha_with_a_warning():
    with pytest.warns(DeprecationWarning, match="alpha"):
        layer = layers.LeakyReLU(alpha=0.1)
    assert layer.negative_slope == 0.1 and layer.get_config()["negative_slope"] == 0.1
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        layers.ReLU(threshold=-1.0)


def test_prelu_learns_a_slope_per_shared_channel():
    x = rng_array(2, 4, 5, 3)
    layer = layers.PReLU(shared_axes=[1, 2])
    run(layer, x)
    (alpha,) = layer.get_weights()
    assert alpha.shape == (1, 1, 3) and not alpha.any()  # Keras' default: zeros
    alpha = np.array([[[0.1, 0.2, 0.3]]], np.float32)
    layer.set_weights([alpha])
    np.testing.assert_allclose(run(layer, x), np.where(x > 0, x, alpha * x), rtol=1e-6)
    out = layer(torch.as_tensor(x))
    out.sum().backward()
    want = np.where(x < 0, x, 0).sum(axis=(0, 1, 2))  # d/dalpha of alpha * min(x, 0)
    np.testing.assert_allclose(layer.alpha.grad.numpy().ravel(), want, rtol=1e-5)


# --------------------------------------------------------------------------- structural


def test_permute_and_repeat_vector():
    x = rng_array(2, 3, 4, 5)
    np.testing.assert_array_equal(run(layers.Permute((2, 3, 1)), x), x.transpose(0, 2, 3, 1))
    v = x[:, :, 0, 0]
    np.testing.assert_array_equal(run(layers.RepeatVector(4), v), np.repeat(v[:, None], 4, 1))
    with pytest.raises(ValueError, match="permutation of 1..2"):
        layers.Permute((1, 3))


def test_spatial_dropout_drops_whole_channels_only_while_training():
    x = torch.ones(200, 6, 8)
    layer = layers.SpatialDropout1D(0.25)
    assert torch.equal(layer(x, training=False), x)  # inference
    y = layer(x, training=True)
    per_channel = y[:, 0, :]
    assert torch.equal(y, per_channel[:, None, :].expand_as(y))  # same across steps
    assert set(per_channel.unique().tolist()) <= {0.0, float(np.float32(1 / 0.75))}
    assert abs(float((per_channel == 0).float().mean()) - 0.25) < 0.05
    img = layers.SpatialDropout2D(0.5)(torch.ones(100, 3, 4, 5), training=True)
    assert torch.equal(img, img[:, :1, :1].expand_as(img))


def test_gaussian_noise_and_dropout_statistics():
    x = torch.ones(200_000)[None]
    noisy = layers.GaussianNoise(0.5)(x, training=True) - 1
    assert abs(float(noisy.mean())) < 0.01 and abs(float(noisy.std()) - 0.5) < 0.01
    kept = layers.GaussianDropout(0.2)(x, training=True)
    assert abs(float(kept.mean()) - 1) < 0.01 and abs(float(kept.std()) - math.sqrt(0.25)) < 0.01
    assert torch.equal(layers.GaussianNoise(0.5)(x, training=False), x)
    assert torch.equal(layers.GaussianDropout(0.2)(x, training=False), x)


def test_lambda_runs_but_a_model_holding_one_is_not_saved(tmp_path: Any):
    inputs = keras.Input(shape=(3,))
    outputs = layers.Lambda(lambda t, k: t * k, arguments={"k": 2.0})(layers.Identity()(inputs))
    model = keras.Model(inputs, outputs)
    x = rng_array(4, 3)
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * x)
    with pytest.raises(ValueError, match="Lambda layer .* cannot be saved"):
        model.save(str(tmp_path / "m.safetensors"))
    assert not (tmp_path / "m.safetensors").exists()


# --------------------------------------------------------------------------- image layers


NP_PAD_MODE = {"reflect": "symmetric", "mirror": "reflect", "wrap": "wrap", "nearest": "edge"}


def np_affine(
    image: np.ndarray, t: np.ndarray, order: int, fill_mode: str, fill: float
) -> np.ndarray:
    """Sample `image` (H, W, C) at x' = a0 x + a1 y + a2, y' = b0 x + b1 y + b2 (scipy's fill modes)."""
    h, w, _ = image.shape
    big = 4 * max(h, w)
    if fill_mode == "constant":
        padded = np.pad(image, [(big, big), (big, big), (0, 0)], constant_values=fill)
    else:
        padded = np.pad(image, [(big, big), (big, big), (0, 0)], mode=NP_PAD_MODE[fill_mode])
    out = np.zeros_like(image, dtype=np.float64)
    for y in range(h):
        for x in range(w):
            xs = t[0] * x + t[1] * y + t[2] + big
            ys = t[3] * x + t[4] * y + t[5] + big
            if order == 0:
                out[y, x] = padded[int(np.round(ys)), int(np.round(xs))]
                continue
            y0, x0 = int(np.floor(ys)), int(np.floor(xs))
            dy, dx = ys - y0, xs - x0
            out[y, x] = (
                (1 - dy) * (1 - dx) * padded[y0, x0] + (1 - dy) * dx * padded[y0, x0 + 1]
                + dy * (1 - dx) * padded[y0 + 1, x0] + dy * dx * padded[y0 + 1, x0 + 1]
            )  # fmt: skip
    return out


@pytest.mark.parametrize("fill_mode", ["constant", "nearest", "wrap", "mirror", "reflect"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_affine_transform_matches_numpy_fill_modes(fill_mode: str, interpolation: str):
    images = np.random.default_rng(5).uniform(0, 255, size=(3, 7, 6, 2)).astype(np.float32)
    transforms = torch.cat(
        [
            rotation_transforms(torch.tensor([33.0]), 7, 6),
            zoom_transforms(torch.tensor([1.4]), torch.tensor([0.7]), 7, 6),
            translation_transforms(torch.tensor([2.6]), torch.tensor([-3.2])),
        ]
    )
    got = affine_transform(
        torch.as_tensor(images), transforms, interpolation, fill_mode, 9.0
    ).numpy()
    order = 0 if interpolation == "nearest" else 1
    for i in range(3):
        want = np_affine(images[i], transforms[i].double().numpy(), order, fill_mode, 9.0)
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-3)


def test_a_quarter_turn_is_numpy_rot90_and_the_identity_changes_nothing():
    image = rng_array(1, 6, 6, 2)
    quarter = rotation_transforms(torch.tensor([90.0]), 6, 6)
    got = affine_transform(torch.as_tensor(image), quarter, "bilinear", "constant")
    np.testing.assert_allclose(got.numpy()[0], np.rot90(image[0]), atol=1e-5)  # counter-clockwise
    same = zoom_transforms(torch.ones(1), torch.ones(1), 6, 6)
    np.testing.assert_allclose(
        affine_transform(torch.as_tensor(image), same).numpy(), image, atol=1e-6
    )


def test_rescaling_resizing_and_center_crop():
    x = np.random.default_rng(2).integers(0, 256, size=(2, 10, 9, 3)).astype(np.uint8)
    got = run(layers.Rescaling(1 / 127.5, offset=-1), x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, x / 127.5 - 1, rtol=1e-6, atol=1e-6)
    xf = x.astype(np.float32)
    np.testing.assert_allclose(
        run(layers.Resizing(7, 5), xf), np_resize_bilinear(xf, 7, 5), rtol=1e-5, atol=1e-3
    )
    nearest = run(layers.Resizing(7, 5, interpolation="nearest"), xf)
    rows, cols = (
        np.floor((np.arange(7) + 0.5) * 10 / 7).astype(int),
        np.floor((np.arange(5) + 0.5) * 9 / 5).astype(int),
    )
    np.testing.assert_array_equal(nearest, xf[:, rows][:, :, cols])
    # crop_to_aspect_ratio: the centred 9x9 window of a 10x9 image, then resized to 6x6
    cropped = run(layers.Resizing(6, 6, crop_to_aspect_ratio=True), xf)
    np.testing.assert_allclose(cropped, np_resize_bilinear(xf[:, 0:9], 6, 6), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(run(layers.CenterCrop(5, 4), xf), xf[:, 2:7, 2:6])
    bigger = run(layers.CenterCrop(12, 12), xf)  # smaller input: Keras' smart_resize
    np.testing.assert_allclose(bigger, np_resize_bilinear(xf[:, 0:9], 12, 12), rtol=1e-5, atol=1e-3)


def test_random_flip_is_per_image_and_only_in_training():
    x = torch.as_tensor(rng_array(400, 3, 4, 1))
    for mode, dims in (("horizontal", [2]), ("vertical", [1]), ("horizontal_and_vertical", [1, 2])):
        layer = layers.RandomFlip(mode, seed=1)
        assert torch.equal(layer(x, training=False), x)
        y = layer(x, training=True)
        flipped = (y == x.flip(dims)).flatten(1).all(1)
        kept = (y == x).flatten(1).all(1)
        assert bool((flipped | kept).all())  # both-ways flips are both or neither, as Keras
        assert 0.4 < float(flipped.float().mean()) < 0.6


def _angles(t: torch.Tensor) -> np.ndarray:
    return np.degrees(np.arctan2(t[:, 3].numpy(), t[:, 0].numpy()))


def test_random_geometric_parameters_follow_keras_distributions():
    n = 20_000
    angles = _angles(layers.RandomRotation((-0.1, 0.05)).transforms(n, 8, 8, torch.device("cpu")))
    assert -36.0 <= angles.min() < -35.0 and 17.0 < angles.max() <= 18.0  # factor * 360 degrees
    assert abs(angles.mean() - (-9.0)) < 0.5  # uniform: the middle of the range
    zoom = layers.RandomZoom(0.2).transforms(n, 8, 8, torch.device("cpu"))
    assert torch.equal(zoom[:, 0], zoom[:, 4])  # width follows height
    assert 0.8 <= float(zoom[:, 0].min()) < 0.81 and 1.19 < float(zoom[:, 0].max()) <= 1.2
    zoom2 = layers.RandomZoom(0.2, width_factor=(0.0, 0.1)).transforms(n, 8, 8, torch.device("cpu"))
    assert float(zoom2[:, 0].min()) >= 1.0 and float(zoom2[:, 0].max()) <= 1.1
    shift = layers.RandomTranslation(0.25, (0.0, 0.5)).transforms(n, 8, 10, torch.device("cpu"))
    dx, dy = -shift[:, 2].numpy(), -shift[:, 5].numpy()
    assert 0 <= dx.min() < 0.05 and 4.95 < dx.max() <= 5.0  # fraction of the width 10
    assert -2.0 <= dy.min() < -1.95 and 1.95 < dy.max() <= 2.0


def test_random_contrast_and_brightness():
    image = torch.tensor([50.0, 150.0]).view(1, 1, 2, 1).expand(5000, 1, 2, 1)
    out = layers.RandomContrast(0.5)(image, training=True)
    factor = (out[:, 0, 1, 0] - out[:, 0, 0, 0]) / 100.0  # (x - mean) * c + mean
    assert 0.5 <= float(factor.min()) < 0.52 and 1.48 < float(factor.max()) <= 1.5
    torch.testing.assert_close(out.mean(dim=(1, 2)), image.mean(dim=(1, 2)))
    bright = layers.RandomBrightness((-0.2, 0.1))(image, training=True)
    delta = bright[:, 0, 0, 0] - 50.0
    assert -51.0 <= float(delta.min()) < -49.0 and 24.0 < float(delta.max()) <= 25.5
    clipped = layers.RandomContrast(0.9)(
        torch.tensor([0.0, 255.0]).view(1, 1, 2, 1).repeat(100, 1, 1, 1), training=True
    )
    assert float(clipped.min()) >= 0 and float(clipped.max()) <= 255  # value_range


def test_augmentations_are_identity_in_inference_and_run_inside_fit():
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.1),
            layers.RandomZoom(0.1),
            layers.RandomTranslation(0.1, 0.1),
            layers.Conv2D(2, 3),
            layers.GlobalAveragePooling2D(),
            layers.Dense(1),
        ]
    )
    model.compile("sgd", "mse")
    x = rng_array(16, 8, 8, 1)
    y = rng_array(16, 1)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


# --------------------------------------------------------------------------- graphs and config


def test_symbolic_shapes_equal_keras():
    # output shapes printed by Keras 3.15.1 for the same calls on keras.Input
    cases = [
        ((11, 3), layers.Conv1D(4, 4, strides=2, padding="same"), (None, 6, 4)),
        ((10, 3), layers.Conv1D(4, 3, padding="causal", dilation_rate=2), (None, 10, 4)),
        ((5, 6, 2), layers.Conv2DTranspose(3, 3, strides=2), (None, 11, 13, 3)),
        ((5, 6, 2), layers.Conv2DTranspose(3, 3, strides=2, padding="same"), (None, 10, 12, 3)),
        ((7, 8, 3), layers.DepthwiseConv2D(4, strides=2, padding="same"), (None, 4, 4, 3)),
        ((9, 8, 3), layers.SeparableConv2D(4, 3, strides=2), (None, 4, 3, 4)),
        ((10, 3), layers.MaxPooling1D(3, strides=2, padding="same"), (None, 5, 3)),
        ((9, 3), layers.GlobalAveragePooling1D(keepdims=True), (None, 1, 3)),
        ((4, 3, 2), layers.UpSampling2D((2, 3)), (None, 8, 9, 2)),
        ((4, 3, 2), layers.ZeroPadding2D(((1, 2), (3, 0))), (None, 7, 6, 2)),
        ((5, 6, 2), layers.Cropping2D(((1, 0), (2, 1))), (None, 4, 3, 2)),
        ((5,), layers.RepeatVector(3), (None, 3, 5)),
        ((3, 4, 5), layers.Permute((2, 3, 1)), (None, 4, 5, 3)),
        ((10, 9, 3), layers.Resizing(7, 5), (None, 7, 5, 3)),
        ((8, 7, 3), layers.CenterCrop(5, 4), (None, 5, 4, 3)),
        ((8, 7, 3), layers.RandomRotation(0.2), (None, 8, 7, 3)),
        ((None, 3), layers.Conv1D(2, 3, padding="same"), (None, None, 2)),
    ]
    for shape, layer, want in cases:
        assert layer(keras.Input(shape=shape)).shape == want, layer.name


def test_config_round_trip_rebuilds_the_same_layer():
    x = rng_array(2, 7, 6, 3)
    for layer in [
        layers.Conv1D(4, 3, padding="causal", dilation_rate=2, groups=1, activation="relu"),
        layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
        layers.SeparableConv2D(4, 3, depth_multiplier=2, padding="same"),
        layers.DepthwiseConv2D(3, depth_multiplier=2),
        layers.ReLU(1.0, 0.1, 0.2),
        layers.PReLU(shared_axes=[1, 2]),
        layers.Softmax(axis=(1, 2)),
        layers.ZeroPadding2D(((1, 2), (0, 1))),
        layers.Resizing(4, 5, crop_to_aspect_ratio=True),
        layers.RandomRotation(0.1, fill_mode="constant", fill_value=1.0),
    ]:
        data = x[:, :, 0] if isinstance(layer, layers.Conv1D) else x
        run(layer, data)
        config = layer.get_config()
        config.pop("name")
        twin = type(layer).from_config(config)
        assert {**twin.get_config(), "name": None} == {**config, "name": None}
        layer.eval()
        twin.eval()
        run(twin, data)
        twin.set_weights(layer.get_weights())
        np.testing.assert_array_equal(run(twin, data), run(layer, data))


def test_bad_inputs_name_the_layer_and_the_shape():
    with pytest.raises(ValueError, match=r"conv1d_bad: expected channels-last input .*\(None, 5\)"):
        layers.Conv1D(2, 3, name="conv1d_bad")(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="padding must be one of"):
        layers.Conv2DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        layers.RandomZoom(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="output_padding .* must be smaller than strides"):
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)


def test_a_functional_model_of_the_new_layers_saves_and_loads(tmp_path: Any):
    inputs = keras.Input(shape=(12, 3))
    x = layers.Conv1D(4, 3, padding="causal", dilation_rate=2)(inputs)
    x = layers.PReLU(alpha_initializer="random_normal", shared_axes=[1])(x)
    x = layers.MaxPooling1D(2, padding="same")(x)
    x = layers.ZeroPadding1D((1, 0))(x)
    x = layers.Reshape((7, 4, 1))(x)
    x = layers.Conv2DTranspose(2, 3, strides=2, padding="same", output_padding=1)(x)
    x = layers.SeparableConv2D(3, 3, depth_multiplier=2, padding="same")(x)
    x = layers.ReLU(max_value=6.0)(x)
    x = layers.Cropping2D(((1, 1), (0, 1)))(x)
    x = layers.GlobalAveragePooling2D(keepdims=True)(x)
    x = layers.Permute((3, 1, 2))(x)
    x = layers.Softmax(axis=1)(x)
    model = keras.Model(inputs, x)
    model.compile("adam", "mse")
    data = rng_array(8, 12, 3)
    model.fit(data, rng_array(8, 3, 1, 1), epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "vision.safetensors")
    model.save(path)
    loaded = keras.models.load_model(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: layers.Conv1D(3, 3, strides=2, padding="same", groups=1), (2, 7, 2)),
        (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same"), (1, 3, 4, 2)),
        (lambda: layers.SeparableConv2D(2, 3, padding="same"), (1, 4, 4, 2)),
        (lambda: layers.AveragePooling1D(3, strides=2, padding="same"), (2, 6, 2)),
        (lambda: layers.PReLU(alpha_initializer="random_normal"), (2, 5)),
        (lambda: layers.UpSampling2D(2, interpolation="bilinear"), (1, 3, 3, 2)),
    ],
)
def test_gradients_agree_with_finite_differences(make: Any, shape: tuple):
    layer = make()
    layer(torch.zeros(shape))
    layer.double()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    params = [p for p in layer.parameters()]
    assert torch.autograd.gradcheck(lambda x, *p: layer(x), (x, *params))


def test_affine_transform_gradient_with_respect_to_the_image():
    image = torch.randn(1, 5, 4, 2, dtype=torch.float64, requires_grad=True)
    t = rotation_transforms(torch.tensor([20.0]), 5, 4)

    def warp(img: torch.Tensor) -> torch.Tensor:
        return affine_transform(img, t, "bilinear", "reflect")

    assert torch.autograd.gradcheck(warp, (image,))


def test_random_crop_is_one_random_window_per_batch_in_training_and_centred_otherwise():
    x = torch.arange(2 * 8 * 9, dtype=torch.float32).view(2, 8, 9, 1)
    layer = layers.RandomCrop(4, 5)
    tops_lefts = set()
    for _ in range(200):
        y = layer(x, training=True)
        top, left = divmod(int(y[0, 0, 0, 0]), 9)
        np.testing.assert_array_equal(y.numpy(), x.numpy()[:, top : top + 4, left : left + 5])
        tops_lefts.add((top, left))
    assert tops_lefts == {(t, s) for t in range(5) for s in range(5)}  # every offset is drawn
    # inference: Keras' documented centred crop to the target's aspect ratio, then resize
    crop_w = min(9, int(8 * 5 / 4))
    crop_h = max(min(8, int(9 * 4 / 5)), 1)
    top, left = (8 - crop_h) // 2, (9 - crop_w) // 2
    want = np_resize_bilinear(x.numpy()[:, top : top + crop_h, left : left + crop_w], 4, 5)
    np.testing.assert_allclose(layer(x, training=False).numpy(), want, rtol=1e-5, atol=1e-4)


def test_activity_regularization_adds_keras_penalty_per_batch_row() -> None:
    """Keras 3: the layer returns its input and adds (l1 sum|x| + l2 sum x^2) / batch size."""
    import batchfit as keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype(np.float32)
    y = rng.normal(size=(8, 2)).astype(np.float32)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2), keras.layers.ActivityRegularization(0.01, 0.1)]
    )
    model.compile("sgd", "mse")
    kernel, bias = model.get_weights()
    out = x @ kernel + bias
    expected = np.mean((out - y) ** 2) + (0.01 * np.abs(out).sum() + 0.1 * (out**2).sum()) / 8
    loss = model.test_on_batch(x, y)
    assert loss == pytest.approx(float(expected), rel=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-5, atol=1e-6)
    config = keras.layers.ActivityRegularization(0.5, 0.25).get_config()
    assert config["l1"] == 0.5 and config["l2"] == 0.25
