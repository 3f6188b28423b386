"""The seed 000 article's code, run with only its imports changed."""

from __future__ import annotations

import numpy as np


def test_seed_000_runs_unchanged_with_batchfit_imports(capsys):
    # -- the article's code, imports swapped, nothing else changed --------------------
    import numpy as np

    from batchfit.layers import Dense
    from batchfit.models import Sequential
    from batchfit.optimizers import Adam

    # Create sample data
    data = np.random.random((1000, 32))
    labels = np.random.randint(2, size=(1000, 1))

    # Define a simple model
    model = Sequential()
    model.add(Dense(64, activation="relu", input_dim=32))
    model.add(Dense(1, activation="sigmoid"))

    # Compile the model
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])

    # Train using `train_on_batch()`
    batch_size = 32
    for epoch in range(10):  # An arbitrary number of epochs
        print(f"Epoch {epoch + 1}")
        for i in range(0, len(data), batch_size):
            x_batch = data[i : i + batch_size]
            y_batch = labels[i : i + batch_size]
            loss, accuracy = model.train_on_batch(x_batch, y_batch)
            print(f"Batch {i // batch_size + 1}: Loss = {loss:.4f}, Accuracy = {accuracy:.4f}")
    # ----------------------------------------------------------------------------------
    out = capsys.readouterr().out.splitlines()
    batch_lines = [line for line in out if line.startswith("Batch")]
    assert len(batch_lines) == 10 * 32
    assert isinstance(loss, float) and isinstance(accuracy, float)
    # the last batch has 1000 - 31 * 32 = 8 samples: accuracy is a multiple of 1/8
    assert abs(accuracy * 8 - round(accuracy * 8)) < 1e-6
    pred = model.predict_on_batch(data[992:])
    assert pred.shape == (8, 1) and pred.dtype == np.float32
    assert np.all((pred > 0) & (pred < 1))


def test_seed_000_with_fit_and_validation_split():
    from batchfit.layers import Dense
    from batchfit.models import Sequential
    from batchfit.optimizers import Adam

    rng = np.random.default_rng(1)
    data = rng.random((1000, 32))
    labels = (data[:, :1] > 0.5).astype(int)  # learnable: the first feature decides
    model = Sequential()
    model.add(Dense(64, activation="relu", input_dim=32))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(data, labels, batch_size=32, epochs=10, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 10 for v in history.history.values())
    assert history.epoch == list(range(10))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.8
    # validation is the last 20% of the data, as in Keras: evaluate agrees exactly
    loss, acc = model.evaluate(data[800:], labels[800:], batch_size=32, verbose=0)
    assert np.isclose(loss, history.history["val_loss"][-1], rtol=1e-6)
    assert acc == history.history["val_accuracy"][-1]
