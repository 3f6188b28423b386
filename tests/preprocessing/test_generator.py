"""ImageDataGenerator: Keras semantics, streamed fit, finite reproducible resumable flows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchfit.data import arrays
from batchfit.preprocessing.image import ImageDataGenerator

SEED_002 = dict(
    featurewise_center=True,
    featurewise_std_normalization=True,
    rotation_range=20,
    width_shift_range=0.2,
    height_shift_range=0.2,
    horizontal_flip=True,
)


def _images(n: int = 40, size: int = 8, channels: int = 3, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, size, size, channels)) * 255).astype(np.float32)


def test_a_for_loop_over_flow_ends_after_one_epoch() -> None:
    x, y = _images(70), np.arange(70)
    flow = ImageDataGenerator(rotation_range=10).flow(x, y, batch_size=32, seed=0)
    batches = list(flow)
    assert [len(b[0]) for b in batches] == [32, 32, 6]
    assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == list(range(70))
    assert len(flow) == 3


def test_each_epoch_reshuffles_and_a_seed_reproduces() -> None:
    x, y = _images(50), np.arange(50)
    gen = ImageDataGenerator(**SEED_002).fit(x)
    flow = gen.flow(x, y, batch_size=16, seed=3)
    first = [b for b in flow]
    flow.set_epoch(1)
    second = [b for b in flow]
    assert not np.array_equal(first[0][1], second[0][1])
    again = gen.flow(x, y, batch_size=16, seed=3)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_next_runs_on_like_keras() -> None:
    flow = ImageDataGenerator().flow(_images(10), np.arange(10), batch_size=4, seed=0)
    sizes = [len(next(flow)[0]) for _ in range(7)]
    assert sizes == [4, 4, 2, 4, 4, 2, 4]


def test_resume_mid_epoch_gives_the_remaining_batches() -> None:
    x, y = _images(60), np.arange(60)
    gen = ImageDataGenerator(**SEED_002, zoom_range=0.1, channel_shift_range=5.0).fit(x)
    flow = gen.flow(x, y, batch_size=8, seed=11)
    flow.set_epoch(2)
    reference = list(flow)
    flow.set_epoch(2)
    it = iter(flow)
    for _ in range(3):
        next(it)
    state = flow.state_dict()
    rebuilt = gen.flow(x, y, batch_size=8, seed=999)
    rebuilt.load_state_dict(state)
    rest = list(rebuilt)
    assert len(rest) == len(reference) - 3
    for a, b in zip(rest, reference[3:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_shards_are_disjoint_and_complete() -> None:
    x, y = _images(21), np.arange(21)
    flow = ImageDataGenerator().flow(x, y, batch_size=4, seed=5)
    seen = [np.concatenate([b[1] for b in flow.shard(r, 3)]) for r in range(3)]
    assert sorted(np.concatenate(seen).tolist()) == list(range(21))


def test_flow_without_y_yields_the_images_alone() -> None:
    """Keras: `flow(x)` yields an array per batch (not a 1-tuple), as `predict` expects."""
    x = _images(10)
    batch = next(iter(ImageDataGenerator().flow(x, batch_size=4, shuffle=False)))
    assert isinstance(batch, np.ndarray)
    np.testing.assert_array_equal(batch, x[:4].astype(batch.dtype))


def test_flips_only_are_exact() -> None:
    x = _images(64)
    out = np.concatenate(
        [b for b in ImageDataGenerator(horizontal_flip=True).flow(x, shuffle=False, seed=0)]
    )
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x, strict=True)])
    same = np.array([np.array_equal(o, i) for o, i in zip(out, x, strict=True)])
    assert np.all(flipped | same) and 10 < flipped.sum() < 54


def test_apply_transform_rotation_and_shift_follow_keras() -> None:
    gen = ImageDataGenerator(fill_mode="constant", cval=-1.0)
    img = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    np.testing.assert_array_equal(gen.apply_transform(img, {"theta": 90}), np.rot90(img, 1))
    shifted = gen.apply_transform(img, {"tx": 1})  # Keras: content moves one column left
    np.testing.assert_array_equal(shifted[:, :3], img[:, 1:])
    assert np.all(shifted[:, 3] == -1.0)
    params = gen.get_random_transform(img.shape, seed=4)
    assert set(params) >= {"theta", "tx", "ty", "shear", "zx", "zy", "flip_horizontal"}
    np.testing.assert_array_equal(
        gen.random_transform(img, seed=4), gen.random_transform(img, seed=4)
    )


def test_shift_ranges_follow_keras_units() -> None:
    gen = ImageDataGenerator(width_shift_range=[2, 3], height_shift_range=4)
    for seed in range(20):
        p = gen.get_random_transform((10, 20, 3), seed=seed)
        assert abs(p["tx"]) in (2, 3) and float(p["ty"]).is_integer() and abs(p["ty"]) < 4
    frac = ImageDataGenerator(width_shift_range=0.5)
    assert max(abs(frac.get_random_transform((10, 20, 3), seed=s)["tx"]) for s in range(30)) > 5


def test_standardize_and_intensity_options() -> None:
    x = _images(4)
    gen = ImageDataGenerator(
        samplewise_center=True, samplewise_std_normalization=True, rescale=1 / 255
    )
    out = gen.standardize(x.copy())
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-4)
    bright = ImageDataGenerator(brightness_range=(0.5, 0.5)).random_transform(x[0])
    np.testing.assert_allclose(bright, x[0] * 0.5, rtol=1e-6)
    shifted = ImageDataGenerator().apply_transform(x[0], {"channel_shift_intensity": 10.0})
    np.testing.assert_allclose(shifted, np.clip(x[0] + 10, x[0].min(), x[0].max()), rtol=1e-6)


@settings(max_examples=15, deadline=None)
@given(batch_size=st.integers(1, 64), n=st.integers(1, 120))
def test_streamed_featurewise_statistics_equal_numpy(batch_size: int, n: int) -> None:
    x = _images(n, size=4, seed=n) + 1000.0
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    gen.fit(x, batch_size=batch_size)
    whole = x.astype(np.float64)
    assert gen.mean is not None and gen.std is not None and gen.mean.shape == (1, 1, 3)
    np.testing.assert_allclose(gen.mean.ravel(), whole.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(gen.std.ravel(), whole.std(axis=(0, 1, 2)), rtol=1e-6)


def test_fit_over_a_source_equals_fit_over_the_array() -> None:
    x = _images(90)
    a = ImageDataGenerator(featurewise_std_normalization=True, rescale=1 / 255).fit(x)
    b = ImageDataGenerator(featurewise_std_normalization=True, rescale=1 / 255).fit(
        arrays(x, batch_size=7)
    )
    assert a.mean is not None and b.mean is not None and a.std is not None and b.std is not None
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-6)
    assert float(a.mean.max()) < 1.0  # rescale applied before the statistics, as Keras


def test_zca_whitened_images_have_identity_covariance() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4000, 4, 4, 1)).astype(np.float32)
    x = base + np.roll(base, 1, axis=2) * 0.8 + 5.0  # neighbouring pixels correlated
    gen = ImageDataGenerator(zca_whitening=True, zca_epsilon=1e-8).fit(x, batch_size=500)
    white = gen.standardize(x.copy()).reshape(len(x), -1).astype(np.float64)
    np.testing.assert_allclose(white.T @ white / len(x), np.eye(16), atol=2e-3)


def test_zca_fails_early_when_the_matrix_would_not_fit() -> None:
    gen = ImageDataGenerator(zca_whitening=True)
    big = np.zeros((1, 224, 224, 3), np.float32)
    with pytest.raises(MemoryError, match=r"\(224, 224, 3\).*150528 x 150528"):
        gen.fit(big)


def test_fit_with_a_surprising_channel_count_warns_and_goes_on_as_keras() -> None:
    """Keras warns (it does not raise) and computes the statistics over the axis it was told."""
    last = _images(4).astype(np.float32)  # (4, H, W, 3) given as channels_first: H channels
    gen = ImageDataGenerator(featurewise_center=True, data_format="channels_first")
    with pytest.warns(UserWarning, match="channels_first"):
        gen.fit(last)
    np.testing.assert_allclose(
        np.asarray(gen.mean).reshape(-1), last.mean(axis=(0, 2, 3)), rtol=1e-5
    )


def test_bad_input_errors() -> None:
    with pytest.raises(ValueError, match=r"rank 4.*got shape \(8, 8, 3\)"):
        ImageDataGenerator().flow(np.zeros((8, 8, 3)))
    with pytest.warns(UserWarning, match=r"1, 3 or 4 channels.*\(2, 8, 8, 5\)"):
        ImageDataGenerator().fit(np.zeros((2, 8, 8, 5)))
    with pytest.raises(RuntimeError, match=r"featurewise_center.*fit"):
        next(iter(ImageDataGenerator(featurewise_center=True).flow(_images(4))))
    with pytest.raises(RuntimeError, match="zca_whitening"):
        ImageDataGenerator(zca_whitening=True).standardize(_images(2))
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")
    with pytest.raises(ValueError, match="x has 4 images but y has 3"):
        ImageDataGenerator().flow(_images(4), np.arange(3))


def test_validation_split_subsets_flow() -> None:
    x, y = _images(20), np.tile([0, 1], 10)
    gen = ImageDataGenerator(validation_split=0.25)
    val = gen.flow(x, y, subset="validation", shuffle=False)
    train = gen.flow(x, y, subset="training", shuffle=False)
    assert val.n == 5 and train.n == 15
    np.testing.assert_array_equal(next(iter(val))[0], x[:5])


def test_channels_first_round_trips() -> None:
    x = _images(6)
    first = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    gen = ImageDataGenerator(
        data_format="channels_first", horizontal_flip=True, featurewise_center=True
    )
    gen.fit(first)
    out = next(iter(gen.flow(first, batch_size=6, shuffle=False, seed=1)))
    assert out.shape == first.shape
    ref = ImageDataGenerator(horizontal_flip=True, featurewise_center=True).fit(x)
    last = next(iter(ref.flow(x, batch_size=6, shuffle=False, seed=1)))
    np.testing.assert_allclose(out, last.transpose(0, 3, 1, 2), rtol=1e-6)


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_backends_give_the_same_augmented_batch(backend: str) -> None:
    pytest.importorskip("cv2")
    x, y = _images(16, size=12), np.arange(16)
    gen = ImageDataGenerator(**SEED_002, fill_mode="reflect", backend=backend).fit(x)
    ref = ImageDataGenerator(**SEED_002, fill_mode="reflect", backend="opencv").fit(x)
    a = next(iter(gen.flow(x, y, seed=2)))[0]
    b = next(iter(ref.flow(x, y, seed=2)))[0]
    np.testing.assert_allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_constant_fill_is_keras_scipy_constant(backend: str) -> None:
    """A 45-degree turn of a 5x5 image of ones: Keras 3.15's ImageDataGenerator
    (scipy.ndimage, mode="constant") gives a first row of [0, 0, 1, 0, 0] and corners of
    exactly cval; blending across the edge (np.pad's constant) would give 0.17 and 0.88."""
    gen = ImageDataGenerator(fill_mode="constant", cval=0.0, backend=backend)
    out = gen.apply_transform(np.ones((5, 5, 1), np.float32), {"theta": 45})[..., 0]
    np.testing.assert_allclose(out[0], [0.0, 0.0, 1.0, 0.0, 0.0], atol=1e-6)
    assert out[0, 0] == out[4, 4] == out[0, 4] == out[4, 0] == 0.0
