"""Seed 003: batch training on a housing CSV too large to load at once.

Two ways over the same generated file:
1. The seed's way: `pandas.read_csv(..., chunksize=N)` in a loop, each chunk
   split into features and target and fed to `train_on_batch`.
2. batchfit's way: `batchfit.data.csv` streams the file (block by block, with
   a bounded shuffle buffer) and `fit` trains on it with a validation file.

python examples/housing_csv_chunks.py [--rows 100000] [--epochs 2] [--chunksize 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import batchfit as bf
from batchfit.layers import Dense, Normalization
from batchfit.models import Sequential
from batchfit.optimizers import SGD

FEATURES = ["size", "bedrooms", "age"]


def write_houses(path: Path, rows: int, seed: int) -> None:
    """A King-County-like table: price (k$) = 0.25 size + 12 bedrooms - 0.8 age + noise."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, 50_000):  # chunks, so memory stays bounded
        n = min(50_000, rows - start)
        size = rng.uniform(500, 4000, n).round()
        bedrooms = rng.integers(1, 6, n)
        age = rng.integers(0, 100, n)
        price = 0.25 * size + 12 * bedrooms - 0.8 * age + rng.normal(0, 20, n)
        frame = pd.DataFrame(
            {"size": size, "bedrooms": bedrooms, "age": age, "price": price.round(1)}
        )
        frame.to_csv(path, mode="a" if start else "w", header=not start, index=False)


def linear_model(stats_source: object) -> Sequential:
    """The seed's linear model (intercept and slopes), after a streamed Normalization."""
    torch.manual_seed(0)
    norm = Normalization()
    norm.adapt(stats_source)  # one pass over the file, bounded memory
    model = Sequential([norm, Dense(1)])
    # Plain SGD suits a linear model on standardised inputs; Adam's default rate
    # (1e-3 per step) would need ~600 steps just to move the intercept to 600 k$.
    model.compile(optimizer=SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--chunksize", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        train_csv, val_csv = Path(tmp) / "houses.csv", Path(tmp) / "houses-val.csv"
        write_houses(train_csv, args.rows, seed=0)
        write_houses(val_csv, max(args.rows // 10, 100), seed=1)
        print(f"wrote {train_csv.stat().st_size / 1e6:.1f} MB ({args.rows:,} rows)")
        stats = bf.data.csv(str(train_csv), target="price", features=FEATURES, batch_size=65_536)

        # 1. pandas chunks + train_on_batch, as in the seed
        model = linear_model(stats)
        t0 = time.perf_counter()
        for epoch in range(args.epochs):
            for batch in pd.read_csv(train_csv, chunksize=args.chunksize):
                x = batch[FEATURES].to_numpy(np.float32)
                y = batch["price"].to_numpy(np.float32)
                loss, mae = model.train_on_batch(x, y)
            print(f"pandas chunks epoch {epoch + 1}: last chunk loss {loss:.2f}, mae {mae:.2f}")
        loop_seconds = time.perf_counter() - t0
        val = pd.read_csv(val_csv)
        x_val, y_val = val[FEATURES].to_numpy(np.float32), val["price"].to_numpy(np.float32)
        pandas_eval = model.evaluate(x_val, y_val, verbose=0)

        # 2. batchfit.data.csv + fit
        model = linear_model(stats)
        train = bf.data.csv(
            str(train_csv), target="price", features=FEATURES,
            batch_size=args.chunksize, shuffle_buffer=10_000, seed=0,
        )  # fmt: skip
        validation = bf.data.csv(str(val_csv), target="price", features=FEATURES, batch_size=4096)
        t0 = time.perf_counter()
        history = model.fit(train, epochs=args.epochs, validation_data=validation, verbose=2)
        fit_seconds = time.perf_counter() - t0
        kernel, bias = model.layers[-1].get_weights()
        print(f"pandas loop: {loop_seconds:.1f}s, validation [mse, mae] {np.round(pandas_eval, 2)}")
        print(
            f"bf.data.csv + fit: {fit_seconds:.1f}s, validation mse "
            f"{history.history['val_loss'][-1]:.2f}, mae {history.history['val_mae'][-1]:.2f}"
        )
        print(f"slopes on standardised features {kernel.ravel().round(2)}, intercept {bias[0]:.1f}")


if __name__ == "__main__":
    main()
