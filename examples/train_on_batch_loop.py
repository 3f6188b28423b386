"""Seed 000: Keras' train_on_batch loop, with batchfit imports, then the same model with fit.

python examples/train_on_batch_loop.py [--epochs 10] [--samples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from batchfit.layers import Dense
from batchfit.models import Sequential
from batchfit.optimizers import Adam


def build() -> Sequential:
    model = Sequential()
    model.add(Dense(64, activation="relu", input_dim=32))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = rng.random((args.samples, 32))
    # a learnable rule (the article's labels are random): the first features decide
    labels = (data[:, :4].sum(axis=1, keepdims=True) > 2).astype(int)

    model = build()
    initial = model.get_weights()
    batch_size = 32
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        for i in range(0, len(data), batch_size):
            loss, accuracy = model.train_on_batch(
                data[i : i + batch_size], labels[i : i + batch_size]
            )
        print(
            f"train_on_batch epoch {epoch + 1}: "
            f"last batch loss = {loss:.4f}, accuracy = {accuracy:.4f}"
        )
    loop_time = time.perf_counter() - t0

    twin = build()
    twin.set_weights(initial)
    t0 = time.perf_counter()
    history = twin.fit(
        data, labels, batch_size=batch_size, epochs=args.epochs, shuffle=False, verbose=1
    )
    fit_time = time.perf_counter() - t0
    same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    print(
        f"\nfit final loss {history.history['loss'][-1]:.4f}, "
        f"accuracy {history.history['accuracy'][-1]:.4f}"
    )
    print(f"train_on_batch loop {loop_time:.2f}s, fit {fit_time:.2f}s")
    print(f"same weights from both paths (bit for bit): {same}")
    if not same:
        raise SystemExit("fit and the train_on_batch loop disagree")


if __name__ == "__main__":
    main()
