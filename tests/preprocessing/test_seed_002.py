"""Seed 002: the Keras loop `for X_batch, Y_batch in datagen.flow(...)` runs and terminates."""

from __future__ import annotations

import numpy as np
import pytest

from batchfit.preprocessing.image import ImageDataGenerator


def _model():  # type: ignore[no-untyped-def]
    try:
        from batchfit.layers import Conv2D, Dense, Flatten
        from batchfit.models import Sequential
    except ImportError as err:
        pytest.skip(f"the engine (batchfit.models) is not importable yet: {err}")
    model = Sequential(
        [
            Conv2D(4, 3, activation="relu", input_shape=(16, 16, 3)),
            Flatten(),
            Dense(4, activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    return model


def test_seed_002_loop_runs_and_terminates() -> None:
    rng = np.random.default_rng(0)
    model = _model()
    datagen = ImageDataGenerator(
        featurewise_center=True,  # set input mean to 0 over the dataset
        samplewise_center=False,
        featurewise_std_normalization=True,  # divide inputs by std of the dataset
        samplewise_std_normalization=False,
        zca_whitening=False,
        rotation_range=20,
        width_shift_range=0.2,
        height_shift_range=0.2,
        horizontal_flip=True,
        vertical_flip=False,
    )
    x_sample = (rng.random((64, 16, 16, 3)) * 255).astype(np.float32)
    datagen.fit(x_sample)
    steps = 0
    for _epoch in range(2):
        for _chunk in range(2):  # "chunks of ~10k pictures", here 48
            x_train = (rng.random((48, 16, 16, 3)) * 255).astype(np.float32)
            y_train = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 48)]
            for x_batch, y_batch in datagen.flow(x_train, y_train, batch_size=32):
                loss = model.train_on_batch(x_batch, y_batch)
                steps += 1
    assert steps == 2 * 2 * 2  # the loop ended: two batches per chunk
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))


def test_model_fit_over_a_flow_runs_every_epoch() -> None:
    model = _model()
    rng = np.random.default_rng(1)
    x = (rng.random((40, 16, 16, 3)) * 255).astype(np.float32)
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 40)]
    datagen = ImageDataGenerator(rotation_range=20, horizontal_flip=True, rescale=1 / 255)
    history = model.fit(datagen.flow(x, y, batch_size=16, seed=0), epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
