"""Discretization against numbers from real Keras, `np.quantile` and `np.digitize`.

The Keras numbers were obtained with
    KERAS_BACKEND=torch /work/keras-venv/bin/python benchmarks/keras_reference_preprocessing.py
which builds `keras.layers.Discretization(...)` and, because Keras 3.15's
`adapt` checks `isinstance(data, tf.data.Dataset)` and there is no TensorFlow in
that venv, runs adapt's own body: `layer.reset_state()`, `layer.update_state(b)`
for each batch `b`, `layer.finalize_state()`, then prints `layer.bin_boundaries`.
The lognormal data is `np.random.default_rng(0)`'s second draw, regenerated below.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit.layers import Discretization
from batchfit.layers._discretization import QuantileSketch


def lognormal() -> np.ndarray:
    rng = np.random.default_rng(0)
    rng.normal(size=(1000, 1))
    return rng.lognormal(size=(20000, 1)).astype("float32")


def test_docstring_example_and_modes_match_keras() -> None:
    x = np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]])
    out = Discretization(bin_boundaries=[0.0, 1.0, 2.0])(x)
    assert out.dtype == torch.int64
    assert out.tolist() == [[0, 2, 3, 1], [1, 3, 2, 1]]  # Keras docstring
    np.testing.assert_array_equal(out.numpy(), np.digitize(x, [0.0, 1.0, 2.0]))
    multi = Discretization(bin_boundaries=[0.0, 1.0], output_mode="multi_hot")
    assert multi(np.array([[-1.0, 0.5], [2.0, 2.0]])).tolist() == [[1, 1, 0], [0, 0, 1]]
    count = Discretization(bin_boundaries=[0.0, 1.0], output_mode="count")
    assert count(np.array([[-1.0, 0.5, 3.0], [2.0, 2.0, 0.0]])).tolist() == [[1, 1, 1], [0, 1, 2]]


def test_adapt_matches_keras_boundaries() -> None:
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(1000, 1)).astype("float32")
    layer = Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(normal)
    np.testing.assert_allclose(
        layer.bin_boundaries, [-0.6909445524215698, -0.07557335495948792, 0.6131889224052429]
    )
    x = lognormal()
    whole = Discretization(num_bins=5)
    whole.adapt(x)
    np.testing.assert_allclose(
        whole.bin_boundaries,
        [0.4346296787261963, 0.7767833471298218, 1.301554560661316, 2.348212242126465],
    )
    six = Discretization(num_bins=3, output_mode="one_hot")
    six.adapt(np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]]))
    assert six.bin_boundaries == [2.0, 4.0]
    assert six(np.array([[1.0], [3.5], [6.0]])).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_stream_that_fits_one_summary_equals_keras() -> None:
    x = np.random.default_rng(5).gamma(2.0, size=(90, 1)).astype("float32")
    layer = Discretization(num_bins=4)
    layer.adapt(iter([x[:30], x[30:60], x[60:]]))
    # Keras, same three batches (and the same for the whole array)
    keras_boundaries = [0.9430338144302368, 1.5978025197982788, 2.595466136932373]
    np.testing.assert_allclose(layer.bin_boundaries, keras_boundaries)


def test_streamed_boundaries_are_within_epsilon_in_rank() -> None:
    x = lognormal()[:, 0]
    target = np.arange(1, 8) / 8
    for batches in (37, 312):  # batches of 540 and 64 rows
        layer = Discretization(num_bins=8, epsilon=0.01)
        layer.adapt(iter(np.array_split(x, batches)))
        ranks = np.searchsorted(np.sort(x), layer.bin_boundaries) / len(x)
        np.testing.assert_allclose(ranks, target, atol=0.01)
        np.testing.assert_allclose(layer.bin_boundaries, np.quantile(x, target), rtol=0.01)
    # Keras' merged summary on the same 37 batches drifts past epsilon (NOTE [ Quantile
    # summary ]); its boundaries, from real Keras:
    keras_37 = [0.35214859, 0.54754502, 0.76805335, 1.07719719, 1.49962437, 2.13604832, 3.39266086]
    keras_ranks = np.searchsorted(np.sort(x), keras_37) / len(x)
    assert np.abs(keras_ranks - target).max() > 0.01


def test_sketch_merge_equals_one_pass_and_memory_is_bounded() -> None:
    rng = np.random.default_rng(6)
    parts = [rng.normal(size=70_000).astype(np.float32) for _ in range(2)]
    one = QuantileSketch(1024)
    for p in parts:
        for chunk in np.array_split(p, 9):
            one.update(chunk)
    ranks = [QuantileSketch(1024), QuantileSketch(1024)]
    for sketch, p in zip(ranks, parts):
        for chunk in np.array_split(p, 9):
            sketch.update(chunk)
    merged = QuantileSketch(1024)
    for sketch in ranks:  # rank order, as adapt under torchrun
        merged.merge(QuantileSketch.from_state(sketch.state()))
    assert merged.count == one.count == 140_000
    assert all(len(level) < 1024 for level in merged.levels)
    whole = np.sort(np.concatenate(parts))
    for sketch in (one, merged):
        summary = sketch.summary()
        assert summary[1].sum() == pytest.approx(140_000, rel=1e-3)
        cdf = np.cumsum(summary[1]) / summary[1].sum()
        for q in (0.1, 0.5, 0.9):
            value = summary[0][np.searchsorted(cdf, q)]
            assert abs(np.searchsorted(whole, value) / len(whole) - q) < len(sketch.levels) / 1024


def test_small_data_gives_exact_interpolated_quantiles() -> None:
    x = np.arange(1, 51, dtype=np.float32)  # 50 rows < 1/epsilon: the summary is the data
    layer = Discretization(num_bins=5)
    layer.adapt(x)
    # quantile of the weighted CDF (value i has cumulative fraction i/50), as Keras
    np.testing.assert_allclose(layer.bin_boundaries, [10.0, 20.0, 30.0, 40.0])


def test_save_load_and_hostile_configs(tmp_path: Any) -> None:
    layer = Discretization(num_bins=4)
    layer.adapt(lognormal())
    inp = keras.Input((1,))
    out = keras.layers.Dense(1)(keras.layers.CategoryEncoding(4, output_mode="one_hot")(layer(inp)))
    model = keras.Model(inp, out)
    path = str(tmp_path / "d.safetensors")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.array([[0.1], [1.0], [9.0]], np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    restored = Discretization.from_config(json.loads(json.dumps(layer.get_config())))
    assert restored.bin_boundaries == layer.bin_boundaries
    for bad, match in [
        ({"num_bins": -1}, "num_bins must be a whole number"),
        ({"num_bins": 2**40}, "refusing"),
        ({"bin_boundaries": "abc"}, "bin_boundaries"),
        ({"bin_boundaries": [2.0, 1.0]}, "must be sorted"),
        ({"num_bins": 3, "bin_boundaries": ["a"]}, "list of numbers"),
        ({"num_bins": 3, "epsilon": 0}, "epsilon must be a number in"),
    ]:
        with pytest.raises(ValueError, match=match):
            Discretization.from_config({"name": "disc_x", **bad})


def test_errors() -> None:
    with pytest.raises(ValueError, match="set either num_bins or bin_boundaries"):
        Discretization()
    with pytest.raises(ValueError, match="cannot adapt a layer built with bin_boundaries"):
        Discretization(bin_boundaries=[0.0]).adapt(np.ones(3))
    with pytest.raises(ValueError, match="adapt\\(data\\) before using"):
        Discretization(num_bins=3)(torch.ones(2, 1))
    with pytest.raises(ValueError, match="sparse=True is not supported"):
        Discretization(num_bins=3, sparse=True)
