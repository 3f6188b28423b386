"""Seed 002: image data that does not fit in memory, with augmentation.

1. `ImageDataGenerator.fit` computes the featurewise mean/std in one streamed
   pass over chunks (here generated on the fly; think "chunks of ~10k
   pictures" read from disk), never holding the whole set.
2. The seed's loop: for each chunk, `for X_batch, Y_batch in datagen.flow(...)`
   with `train_on_batch`. batchfit's `flow` is finite (one pass), so the loop
   ends, unlike Keras' endless iterator.
3. The same with `fit` on a flow, which reshuffles and re-augments every epoch.

python examples/augment_stream.py [--chunks 4] [--chunk-size 512] [--epochs 2] [--size 16]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np
import torch

from batchfit.layers import Conv2D, Dense, Flatten, MaxPooling2D
from batchfit.models import Sequential
from batchfit.preprocessing.image import ImageDataGenerator


def chunk(index: int, size: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """One chunk of images: bright-left (class 0) or bright-right (class 1) squares."""
    rng = np.random.default_rng(index)
    x = rng.random((size, side, side, 3)).astype(np.float32) * 100
    y = rng.integers(0, 2, size)
    half = side // 2
    for i, label in enumerate(y):
        cols = slice(0, half) if label == 0 else slice(half, side)
        x[i, :, cols] += 120
    return x, np.eye(2, dtype=np.float32)[y]


def chunks(n: int, size: int, side: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for index in range(n):
        yield chunk(index, size, side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)

    datagen = ImageDataGenerator(
        featurewise_center=True,  # set input mean to 0 over the dataset
        featurewise_std_normalization=True,  # divide inputs by std of the dataset
        rotation_range=20,
        width_shift_range=0.2,
        height_shift_range=0.2,
        horizontal_flip=False,  # a flip would swap the classes here
    )
    datagen.fit(chunks(args.chunks, args.chunk_size, args.size))  # one pass, bounded memory
    print(f"featurewise mean {np.ravel(datagen.mean)[:3]}, std {np.ravel(datagen.std)[:3]}")

    model = Sequential(
        [
            Conv2D(8, 3, activation="relu", input_shape=(args.size, args.size, 3)),
            MaxPooling2D(2),
            Flatten(),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    # The seed's Example 1: chunks, then batches of 32 from a finite flow.
    for epoch in range(args.epochs):
        batches = 0
        for x_train, y_train in chunks(args.chunks, args.chunk_size, args.size):
            for x_batch, y_batch in datagen.flow(x_train, y_train, batch_size=32, seed=epoch):
                loss, accuracy = model.train_on_batch(x_batch, y_batch)
                batches += 1
        print(f"loop epoch {epoch + 1}: {batches} batches, loss {loss:.4f}, acc {accuracy:.3f}")

    # The same model keeps training with fit on a flow over one chunk.
    x_train, y_train = chunk(99, args.chunk_size, args.size)
    flow = datagen.flow(x_train, y_train, batch_size=32, seed=1)
    history = model.fit(flow, epochs=args.epochs, verbose=0)
    x_test, y_test = chunk(1000, 256, args.size)
    test = datagen.standardize(x_test.copy())
    loss, accuracy = model.evaluate(test, y_test, verbose=0)
    print(f"fit on a flow: loss per epoch {[round(v, 4) for v in history.history['loss']]}")
    print(f"test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
