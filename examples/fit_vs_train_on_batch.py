"""Seed 001: one model trained with `fit` and with a `train_on_batch` loop, same numbers.

`fit` is the high-level path (batching, shuffling, callbacks, validation);
`train_on_batch` is the low-level one for custom loops. In batchfit both call
the same step function, so the same batches in the same order give the same
weights bit for bit, and the loop costs what `fit` costs.

python examples/fit_vs_train_on_batch.py [--samples 20000] [--epochs 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from batchfit.layers import Dense
from batchfit.models import Sequential


def build(seed: int) -> Sequential:
    torch.manual_seed(seed)
    model = Sequential([Dense(32, activation="relu", input_dim=8), Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(args.samples, 1))).astype(np.float32)

    warm_up = build(seed=9)  # first calls pay for torch's lazy initialisation: not timed
    warm_up.fit(x[:256], y[:256], batch_size=args.batch_size, verbose=0)
    warm_up.train_on_batch(x[:64], y[:64])

    # 1. fit: Keras' high-level path (shuffle=False so both paths see the same order)
    with_fit = build(seed=1)
    t0 = time.perf_counter()
    history = with_fit.fit(
        x, y, batch_size=args.batch_size, epochs=args.epochs, shuffle=False, verbose=0
    )
    fit_seconds = time.perf_counter() - t0

    # 2. train_on_batch: the same batches by hand
    by_hand = build(seed=1)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        for start in range(0, args.samples, args.batch_size):
            loss, mae = by_hand.train_on_batch(
                x[start : start + args.batch_size], y[start : start + args.batch_size]
            )
        print(f"train_on_batch epoch {epoch + 1}: last batch loss {loss:.4f}, mae {mae:.4f}")
    loop_seconds = time.perf_counter() - t0

    same = all(np.array_equal(a, b) for a, b in zip(with_fit.get_weights(), by_hand.get_weights()))
    fit_eval = with_fit.evaluate(x, y, batch_size=1024, verbose=0)
    hand_eval = by_hand.evaluate(x, y, batch_size=1024, verbose=0)
    print(f"fit: final epoch loss {history.history['loss'][-1]:.4f}; evaluate {fit_eval}")
    print(f"train_on_batch: evaluate {hand_eval}")
    steps = args.epochs * -(-args.samples // args.batch_size)
    print(
        f"time for {steps} steps: fit {fit_seconds:.2f}s, train_on_batch loop {loop_seconds:.2f}s "
        f"(ratio {loop_seconds / fit_seconds:.2f})"
    )
    print(f"same weights from both paths (bit for bit): {same}")
    if not same or fit_eval != hand_eval:
        raise SystemExit("fit and the train_on_batch loop disagree")


if __name__ == "__main__":
    main()
