"""Seed 003 (house prices from a CSV too big for memory), with a generated CSV.

The article loops over `pd.read_csv(path, chunksize=100)` calling a training
step per chunk; batchfit keeps that loop working and adds `fit` on a `csv`
source, `frames` over the same chunk iterator, and streamed `predict`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import batchfit as bf


@pytest.fixture
def houses(tmp_path):
    rng = np.random.default_rng(3)
    n = 2000
    size = rng.uniform(0.5, 3.0, n)  # thousands of square feet
    bedrooms = rng.integers(1, 6, n).astype(float)
    price = 0.8 * size + 0.1 * bedrooms + 0.2 + rng.normal(0, 0.01, n)  # millions
    frame = pd.DataFrame({"size": size, "bedrooms": bedrooms, "price": price})
    frame.iloc[:1600].to_csv(tmp_path / "houses.csv", index=False)
    frame.iloc[1600:].to_csv(tmp_path / "val.csv", index=False)
    frame.iloc[1600:].drop(columns="price").to_parquet(tmp_path / "new.parquet")
    return tmp_path


def _model():
    from batchfit.layers import Dense
    from batchfit.models import Sequential
    from batchfit.optimizers import Adam

    model = Sequential()
    model.add(Dense(1, input_dim=2))
    model.compile(optimizer=Adam(learning_rate=0.05), loss="mse")
    return model


def test_seed_chunked_train_on_batch_loop(houses) -> None:
    model = _model()
    features = ["size", "bedrooms"]
    losses = []
    for _ in range(5):
        for chunk in pd.read_csv(houses / "houses.csv", chunksize=100):
            loss = model.train_on_batch(chunk[features].to_numpy(), chunk["price"].to_numpy())
            losses.append(float(np.ravel(loss)[0]))
    assert losses[-1] < losses[0] / 10


def test_seed_with_fit_on_a_csv_source(houses) -> None:
    model = _model()
    train = bf.data.csv(
        str(houses / "houses.csv"), target="price", batch_size=32, shuffle_buffer=500, seed=0
    )
    val = bf.data.csv(str(houses / "val.csv"), target="price", batch_size=256)
    history = model.fit(train, epochs=5, validation_data=val, verbose=0)
    assert history.history["val_loss"][-1] < 0.05
    assert history.history["loss"][-1] < history.history["loss"][0]

    out = houses / "preds.parquet"
    result = model.predict(
        bf.data.parquet(str(houses / "new.parquet"), batch_size=64), output=str(out)
    )
    assert result == str(out)
    assert pq.read_metadata(out).num_rows == 400


def test_seed_with_fit_on_frames(houses) -> None:
    model = _model()
    chunks = bf.data.frames(
        lambda: pd.read_csv(houses / "houses.csv", chunksize=100_000),
        target="price",
        batch_size=32,
    )
    history = model.fit(chunks, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
