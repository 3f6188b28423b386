"""A training run for the resume tests: prints each batch, backs up, saves final weights.

python tests/resume_script.py OUT_DIR {arrays,csv,images} [--data DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from batchfit.callbacks import BackupAndRestore, EarlyStopping, LambdaCallback
from batchfit.layers import Dense, Dropout, Flatten
from batchfit.models import Sequential


def arrays_data() -> tuple[tuple, dict]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, :2].sum(axis=1, keepdims=True) > 0).astype(np.float32)
    return (x, y), {"batch_size": 16, "validation_split": 0.2}


def csv_data(data_dir: Path) -> tuple[tuple, dict]:
    import batchfit as bf

    train = bf.data.csv(
        str(data_dir / "part-*.csv"), target="label", batch_size=16, shuffle_buffer=64, seed=3
    )
    return (train,), {}


def images_data() -> tuple[tuple, dict]:
    from batchfit.preprocessing.image import ImageDataGenerator

    rng = np.random.default_rng(0)
    x = rng.random((120, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.float32)
    datagen = ImageDataGenerator(rotation_range=20, width_shift_range=0.2, horizontal_flip=True)
    return (datagen.flow(x, y[:, None], batch_size=16, seed=5),), {}


def main() -> None:
    out = Path(sys.argv[1])
    kind = sys.argv[2]
    torch.manual_seed(0)
    if kind == "arrays":
        args, kwargs = arrays_data()
        head = [Dense(16, activation="relu")]
    elif kind == "csv":
        args, kwargs = csv_data(Path(sys.argv[3]))
        head = [Dense(16, activation="relu")]
    else:
        args, kwargs = images_data()
        head = [Flatten(), Dense(16, activation="relu")]
    model = Sequential([*head, Dropout(0.3), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], accumulate_steps=2)
    announce = LambdaCallback(on_train_batch_end=lambda b, logs: print(f"batch {b}", flush=True))
    history = model.fit(
        *args,
        epochs=4,
        verbose=0,
        callbacks=[
            EarlyStopping(monitor="loss", patience=10, restore_best_weights=True),
            BackupAndRestore(out / "backup", save_freq=3),
            announce,
        ],
        **kwargs,
    )
    np.savez(out / "final.npz", *model.get_weights(), loss=np.array(history.history["loss"]))
    print("done", flush=True)


if __name__ == "__main__":
    main()
