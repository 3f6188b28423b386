"""Streaming statistics (sums) against NumPy on the whole array."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from batchfit.transforms import Moments, zca_matrix


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 200), max_size=6),
    offset=st.sampled_from([0.0, 1e4, -3.0]),
    scale=st.sampled_from([1.0, 1e-3, 255.0]),
)
def test_streamed_mean_and_variance_equal_numpy_whatever_the_chunking(
    cuts: list[int], offset: float, scale: float
) -> None:
    x = np.random.default_rng(len(cuts)).normal(offset, scale, (200, 4)).astype(np.float32)
    bounds = [0, *sorted(cuts), 200]
    stats = Moments.empty(4)
    for a, b in itertools.pairwise(bounds):
        stats.update(x[a:b])
    whole = x.astype(np.float64)
    np.testing.assert_allclose(stats.mean, whole.mean(0), rtol=1e-6, atol=1e-12 * abs(offset))
    np.testing.assert_allclose(stats.variance, whole.var(0), rtol=1e-6)
    assert stats.count == 200


@settings(max_examples=25, deadline=None)
@given(split=st.integers(1, 99))
def test_merging_chunks_with_different_shifts_is_exact(split: int) -> None:
    x = np.random.default_rng(split).normal(50.0, 3.0, (100, 3))
    left, right = Moments.empty(3, outer=True), Moments.empty(3, outer=True)
    left.update(x[:split])
    right.update(x[split:])
    merged = left + right
    np.testing.assert_allclose(merged.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.variance, x.var(0), rtol=1e-9)
    centred = x - x.mean(0)
    np.testing.assert_allclose(
        merged.second_moment(x.mean(0)), centred.T @ centred / 100, rtol=1e-9
    )


def test_zca_whitened_data_has_identity_second_moment() -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    x = rng.normal(size=(5000, 6)) @ mixing + 3.0
    stats = Moments.empty(6, outer=True)
    for start in range(0, 5000, 700):
        stats.update(x[start : start + 700])
    white = (x - stats.mean) @ zca_matrix(stats.second_moment(stats.mean), 1e-9)
    np.testing.assert_allclose(np.cov(white, rowvar=False, bias=True), np.eye(6), atol=1e-6)
