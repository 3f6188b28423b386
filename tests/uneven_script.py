"""Run under torchrun by tests/test_uneven_shards.py: ranks with different batch counts.

    torchrun --standalone --nproc_per_node=2 tests/uneven_script.py OUT_DIR MODE
MODE 'arrays': 33 rows, batch 4 (rank 0 holds 5 batches, rank 1 holds 4);
'lists': rank 0 trains on a list of 10 batches, rank 1 on one of 6;
'nan': rank 1's third batch holds NaN, the model has BatchNormalization.
Each rank writes its final weights (and what it saw) to OUT_DIR/rank{r}.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

import batchfit as bf
from batchfit import distributed
from batchfit.layers import BatchNormalization, Dense, Flatten
from batchfit.models import Sequential


def make_data(rows: int = 33) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    return x, y


def build(batch_norm: bool = False, flatten: bool = False) -> Sequential:
    torch.manual_seed(0)
    layers: list = [Flatten()] if flatten else []
    layers.append(Dense(4, activation="tanh") if flatten else Dense(4, "tanh", input_dim=3))
    if batch_norm:
        layers.append(BatchNormalization())
    layers.append(Dense(1))
    model = Sequential(layers)
    model.compile(bf.optimizers.SGD(learning_rate=0.1), "mse")
    return model


def list_batches(rank: int) -> list[tuple[np.ndarray, np.ndarray]]:
    x, y = make_data(64)
    count = 10 if rank == 0 else 6
    first = 0 if rank == 0 else 40
    return [(x[i : i + 4], y[i : i + 4]) for i in range(first, first + 4 * count, 4)]


def file_source(out: Path, kind: str) -> bf.data.Source:
    """The same rows as a CSV, a Parquet file of several row groups, or an image folder.

    The files are written by the test before torchrun starts (see `write_files`).
    """
    if kind == "csv":
        return bf.data.csv(str(out / "data.csv"), target="t", batch_size=4, block_bytes=64)
    if kind == "parquet":
        return bf.data.parquet(str(out / "data.parquet"), target="t", batch_size=4)
    return bf.data.images(
        out / "images",
        target_size=(2, 2),
        color_mode="grayscale",
        class_mode="binary",
        batch_size=4,
        shuffle=False,
    )


def write_files(out: Path) -> None:
    """33 rows as CSV, as Parquet (row groups of 5), and 17 tiny images in 2 classes."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    x, y = make_data()
    lines = ["a,b,c,t"] + [",".join(f"{v:.6f}" for v in (*row, t)) for row, t in zip(x, y[:, 0])]
    (out / "data.csv").write_text("\n".join(lines) + "\n")
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "t": y[:, 0]})
    pq.write_table(table, out / "data.parquet", row_group_size=5)
    rng = np.random.default_rng(1)
    for i in range(17):
        folder = out / "images" / ("cat" if i % 3 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(2, 2)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    distributed.init()  # rank() is 0 until the process group exists
    rank = distributed.rank()
    report: dict = {}
    if mode == "arrays":
        x, y = make_data()
        model = build()
        report["initial"] = [w.tolist() for w in model.get_weights()]
        history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        report["loss"] = history.history["loss"]
    elif mode == "lists":
        model = build()
        report["initial"] = [w.tolist() for w in model.get_weights()]
        model.fit(list_batches(rank), epochs=1, verbose=0)
    elif mode in ("csv", "parquet", "images"):
        source = file_source(out, mode)
        shard = source.shard(rank, 2)
        report["batches"] = [[np.asarray(p).tolist() for p in b[:2]] for b in shard]
        model = build(flatten=mode == "images")
        if mode == "images":
            model.build((None, 2, 2, 1))  # weights exist before fit, to report them
        report["initial"] = [w.tolist() for w in model.get_weights()]
        model.fit(source, epochs=1, verbose=0)
    else:  # nan
        x, y = make_data(32)
        poisoned = x.copy()
        if rank == 1:
            poisoned[17, 0] = np.nan  # in rank 1's third batch (ranks take every other row)
        model = build(batch_norm=True)
        try:
            model.fit(poisoned, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
            report["raised"] = None
        except FloatingPointError as e:
            report["raised"] = str(e)
        # the same model trained on the two batches per rank before the poisoned one
        clean = build(batch_norm=True)
        clean.fit(x[:16], y[:16], batch_size=4, epochs=1, shuffle=False, verbose=0)
        report["clean"] = [w.tolist() for w in clean.get_weights()]
    report["weights"] = [w.tolist() for w in model.get_weights()]
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    sys.stdout.flush()
    os._exit(0)  # gloo's threads may abort the interpreter at exit (see ddp_script.py)


if __name__ == "__main__":
    main()
