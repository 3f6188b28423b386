"""Steps per second of DDP training with 1 and 2 processes (torchrun, gloo on CPU).

A compute-bound MLP (1024-1024-1024-1, batch 256 per process) trains for a fixed
number of steps; each configuration runs in turn, interleaved, several rounds.
On a 2-core machine no speed-up is expected: the figure shows DDP's overhead.

    python benchmarks/ddp_scaling.py [--rounds 3] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(out: str, steps: int) -> None:
    import numpy as np
    import torch

    import batchfit as bf
    from batchfit import distributed
    from batchfit.layers import Dense
    from batchfit.models import Sequential

    torch.manual_seed(0)
    model = Sequential(
        [Dense(1024, activation="relu", input_dim=1024), Dense(1024, activation="relu"), Dense(1)]
    )
    model.compile("sgd", "mse")
    world = distributed.world_size()
    rng = np.random.default_rng(0)
    rows = 256 * world * (steps + 5)
    x = rng.random((rows, 1024), dtype=np.float32)
    y = rng.random((rows, 1), dtype=np.float32)
    model.fit(bf.data.arrays(x[: 256 * world * 5], y[: 256 * world * 5], batch_size=256), verbose=0)
    source = bf.data.arrays(x, y, batch_size=256)
    t0 = time.perf_counter()
    model.fit(source, epochs=1, steps_per_epoch=steps, verbose=0)
    elapsed = time.perf_counter() - t0
    if distributed.is_main():
        Path(out).write_text(json.dumps({"steps_per_s": steps / elapsed, "world": world}))


def run(nproc: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            __file__,
            "--worker",
            out,
            "--steps",
            str(steps),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, 2 // nproc))}
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        return float(json.loads(Path(out).read_text())["steps_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--worker", default=None)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps)
        return
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for nproc in (1, 2):
            rates[nproc].append(run(nproc, args.steps))
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print("MLP 1024-1024-1024-1, batch 256 per process, gloo, OMP threads = 2 / processes")
    print(f"1 process : {one:7.2f} steps/s ({one * 256:8.0f} samples/s)")
    print(f"2 processes: {two:7.2f} steps/s ({two * 512:8.0f} samples/s, global batch 512)")
    print(f"samples/s ratio 2 procs / 1 proc: {two * 2 / one:.2f}")


if __name__ == "__main__":
    main()
