"""Steps/s of `fit` on a compute-bound model: CSV stream vs the same rows in memory.

Prefetch should hide reading: the bar is >= 0.9x the in-memory rate. Runs
alternate (memory, csv, memory, csv, ...) and the medians are compared.

    .venv/bin/python benchmarks/data_fit_overlap.py --rows 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
from data_common import FEATURES, ensure_csv

import batchfit.data as bd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=512, help="hidden units (compute per step)")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    import polars as pl
    import torch

    from batchfit.layers import Dense
    from batchfit.models import Sequential

    torch.set_num_threads(1)  # one core computes, the other reads
    path = ensure_csv(os.path.join(args.dir, f"batchfit_housing_{args.rows}.csv"), args.rows)
    frame = pl.read_csv(path)
    x = frame.select(FEATURES).to_numpy().astype(np.float32)
    y = frame["price"].to_numpy().astype(np.float32) / 1e6
    x = (x - x.mean(0)) / x.std(0)

    def model():
        m = Sequential()
        m.add(Dense(args.width, activation="relu", input_dim=len(FEATURES)))
        m.add(Dense(args.width, activation="relu"))
        m.add(Dense(1))
        m.compile(optimizer="adam", loss="mse")
        return m

    def run(source) -> float:
        m = model()
        start = time.perf_counter()
        m.fit(source, epochs=1, verbose=0)
        return (-(-args.rows // 256)) / (time.perf_counter() - start)

    rates: dict[str, list[float]] = {"in memory (arrays)": [], "csv stream": []}
    for r in range(args.rounds):
        rates["in memory (arrays)"].append(run(bd.arrays(x, y, batch_size=256)))
        rates["csv stream"].append(run(bd.csv(path, target="price", batch_size=256)))
        print(
            f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f} steps/s" for k, v in rates.items())
        )
    memory, stream = (statistics.median(v) for v in rates.values())
    print(f"\nfit, MLP {args.width}x2, batch 256, {args.rows} rows, {args.rounds} rounds")
    print(f"| source | median steps/s |\n|---|---:|\n| in memory | {memory:.0f} |")
    print(
        f"| csv stream | {stream:.0f} |\n\ncsv / in memory: {stream / memory:.2f}x (bar: >= 0.9x)"
    )


if __name__ == "__main__":
    main()
