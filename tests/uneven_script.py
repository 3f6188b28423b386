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
from batchfit.layers import BatchNormalization, Dense
from batchfit.models import Sequential


def make_data(rows: int = 33) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    return x, y


def build(batch_norm: bool = False) -> Sequential:
    torch.manual_seed(0)
    layers = [Dense(4, activation="tanh", input_dim=3)]
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
