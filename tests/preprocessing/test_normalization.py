"""Normalization.adapt streams mean/variance equal to NumPy/pandas; buffers save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batchfit.data import arrays
from batchfit.layers._normalization import Normalization


def test_adapt_over_a_source_equals_numpy() -> None:
    x = np.random.default_rng(0).normal(1e3, 5.0, (1001, 4))
    layer = Normalization()
    layer.adapt(arrays(x.astype(np.float32), np.zeros(1001), batch_size=64))
    np.testing.assert_allclose(
        layer.mean.numpy().ravel(), x.astype(np.float32).mean(0, dtype=np.float64), rtol=1e-6
    )
    np.testing.assert_allclose(
        layer.variance.numpy().ravel(), x.astype(np.float32).astype(np.float64).var(0), rtol=1e-5
    )
    out = layer(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(np.float64)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-3)


def test_adapt_over_a_csv_source_equals_pandas(tmp_path: object) -> None:
    pd = pytest.importorskip("pandas")
    import batchfit.data as bfd

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "area": rng.normal(120, 30, 500),
            "rooms": rng.integers(1, 8, 500).astype(float),
            "price": rng.normal(3e5, 5e4, 500),
        }
    )
    path = f"{tmp_path}/houses.csv"
    frame.to_csv(path, index=False)
    try:
        source = bfd.csv(path, target="price", batch_size=64)
    except (
        AttributeError,
        ImportError,
        NotImplementedError,
    ) as err:  # the CSV source is another issue's
        pytest.skip(f"batchfit.data.csv is not available yet: {err}")
    layer = Normalization()
    layer.adapt(source)
    features = frame[["area", "rooms"]].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(layer.mean.numpy().ravel(), features.mean().to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        layer.variance.numpy().ravel(), features.var(ddof=0).to_numpy(), rtol=1e-5
    )


def test_axes_invert_and_given_statistics() -> None:
    images = np.random.default_rng(2).random((10, 4, 4, 3))
    per_channel = Normalization(axis=-1)
    per_channel.adapt(images)
    assert tuple(per_channel.mean.shape) == (1, 1, 1, 3)
    np.testing.assert_allclose(per_channel.mean.numpy().ravel(), images.mean((0, 1, 2)), rtol=1e-6)
    scalar = Normalization(axis=None)
    scalar.adapt(torch.as_tensor(images))
    np.testing.assert_allclose(float(scalar.mean.ravel()[0]), images.mean(), rtol=1e-6)
    fixed = Normalization(mean=2.0, variance=4.0)
    x = torch.full((3, 2), 6.0)
    torch.testing.assert_close(fixed(x), torch.full((3, 2), 2.0))
    inverse = Normalization(mean=2.0, variance=4.0, invert=True)
    torch.testing.assert_close(inverse(fixed(x)), x)
    with pytest.raises(ValueError, match="both mean and variance"):
        Normalization(mean=1.0)


def test_statistics_are_buffers_that_save_and_load() -> None:
    x = np.random.default_rng(3).normal(5, 2, (100, 3))
    layer = Normalization()
    layer.adapt(x)
    restored = Normalization()
    restored.load_state_dict(layer.state_dict())
    batch = torch.as_tensor(x[:5], dtype=torch.float32)
    torch.testing.assert_close(restored(batch), layer(batch))
    assert Normalization(**{k: v for k, v in layer.get_config().items() if k != "name"}).axis == (
        -1,
    )
