"""A training run from a PostgreSQL query for the kill -9 resume test.

python tests/data/sql_resume_script.py OUT_DIR URI TABLE
Prints each batch, backs up every 3 batches, saves the final weights.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

import batchfit as bf
from batchfit.callbacks import BackupAndRestore, LambdaCallback
from batchfit.layers import Dense, Dropout
from batchfit.models import Sequential


def main() -> None:
    out, uri, table = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    torch.manual_seed(0)
    train = bf.data.sql(
        f"SELECT * FROM {table}",
        uri,
        target="label",
        order_by="id",
        batch_size=16,
        block_rows=50,
        shuffle_buffer=64,
        seed=3,
    )
    model = Sequential([Dense(16, activation="relu"), Dropout(0.3), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], accumulate_steps=2)
    announce = LambdaCallback(on_train_batch_end=lambda b, logs: print(f"batch {b}", flush=True))
    history = model.fit(
        train,
        epochs=3,
        verbose=0,
        callbacks=[BackupAndRestore(out / "backup", save_freq=3), announce],
    )
    np.savez(out / "final.npz", *model.get_weights(), loss=np.array(history.history["loss"]))
    print("done", flush=True)


if __name__ == "__main__":
    main()
