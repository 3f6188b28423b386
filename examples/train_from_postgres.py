"""Train from a PostgreSQL table without exporting it, stop, and resume exactly.

1. Creates a `sales` table (generated rows) in the database at --uri.
2. Trains with `batchfit.data.sql`: the query is streamed as Arrow batches,
   cut into key ranges by `order_by="id"`, shuffled through a bounded buffer.
3. A second run is stopped mid-epoch (as a crash would) and run again with
   the same `BackupAndRestore` folder: it ends with the same weights, bit
   for bit, as the run never stopped.

python examples/train_from_postgres.py [--uri postgresql://user@host:port/db] [--rows 20000]
The URI defaults to BATCHFIT_TEST_PG (see scripts/postgres.sh); a password is
better given through PGPASSWORD or ~/.pgpass than in the URI.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import batchfit as bf
from batchfit.callbacks import BackupAndRestore, Callback
from batchfit.layers import Dense, Normalization
from batchfit.models import Sequential


def make_table(uri: str, rows: int) -> None:
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow as pa

    rng = np.random.default_rng(0)
    size = rng.uniform(30, 250, rows)
    rooms = rng.integers(1, 7, rows)
    age = rng.uniform(0, 80, rows)
    price = 2.5 * size + 12 * rooms - 0.8 * age + rng.normal(0, 10, rows)
    table = pa.table(
        {"id": np.arange(rows), "size": size, "rooms": rooms, "age": age, "price": price}
    )
    with pg.connect(uri, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sales")
        cursor.adbc_ingest("sales", table, mode="create")
        cursor.execute("ALTER TABLE sales ADD PRIMARY KEY (id)")


class StopAt(Callback):
    """Raises after `after` training batches, like a crash."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.seen = after, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt


def train(uri: str, epochs: int, backup: Path, stop_after: int | None = None) -> list[np.ndarray]:
    source = bf.data.sql(
        "SELECT id, size, rooms, age, price FROM sales",
        uri,
        target="price",
        features=["size", "rooms", "age"],
        order_by="id",
        batch_size=128,
        shuffle_buffer=4096,
        seed=0,
    )
    torch.manual_seed(0)
    norm = Normalization()
    sample, _ = next(
        iter(
            bf.data.sql(
                "SELECT * FROM sales", uri, "price", ["size", "rooms", "age"], batch_size=2048
            )
        )
    )
    norm.adapt(sample)
    model = Sequential([norm, Dense(32, activation="relu"), Dense(1)])
    model.compile(bf.optimizers.Adam(0.01), "mse", metrics=["mae"])
    callbacks: list[Callback] = [BackupAndRestore(backup, save_freq=20)]
    if stop_after is not None:
        callbacks.append(StopAt(stop_after))
    history = model.fit(source, epochs=epochs, verbose=0, callbacks=callbacks)
    print(
        f"epochs run: {len(history.history['loss'])}, last loss {history.history['loss'][-1]:.2f}"
    )
    return model.get_weights()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uri", default=os.environ.get("BATCHFIT_TEST_PG"))
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not args.uri:
        parser.error("give --uri or set BATCHFIT_TEST_PG (bash scripts/postgres.sh start)")
    make_table(args.uri, args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        whole = train(args.uri, args.epochs, Path(tmp) / "a")
        try:
            train(args.uri, args.epochs, Path(tmp) / "b", stop_after=args.rows // 128 + 7)
        except KeyboardInterrupt:
            print("stopped in the middle of epoch 2; running the same command again")
        resumed = train(args.uri, args.epochs, Path(tmp) / "b")
    same = all(np.array_equal(a, b) for a, b in zip(whole, resumed, strict=True))
    print(f"resumed run == uninterrupted run (bit for bit): {same}")


if __name__ == "__main__":
    main()
