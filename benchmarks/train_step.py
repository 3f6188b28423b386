"""Per-step cost of batchfit's `train_on_batch` and `fit` against a hand-written torch loop.

All three run in one process, interleaved round by round on the same data and
the same initial weights, so machine noise hits them alike; the script prints
the median microseconds per step and the ratio to the hand loop.

    python benchmarks/train_step.py            # both workloads
    python benchmarks/train_step.py --rounds 9 --workload seed
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from batchfit.callbacks import BackupAndRestore, CSVLogger, ProgbarLogger
from batchfit.layers import Dense
from batchfit.models import Sequential
from batchfit.optimizers import Adam

WORKLOADS = {
    # name: (input features, hidden sizes, batch size, batches per round)
    "seed": (32, [64], 32, 300),
    "large": (1024, [1024, 1024], 256, 30),
}


def make_data(features: int, batch: int, batches: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((batch * batches, features), dtype=np.float32)
    y = rng.integers(0, 2, size=(batch * batches, 1)).astype(np.float32)
    return x, y


def batchfit_model(features: int, hidden: list[int]) -> Sequential:
    layers = [Dense(hidden[0], activation="relu", input_dim=features)]
    layers += [Dense(h, activation="relu") for h in hidden[1:]]
    layers.append(Dense(1, activation="sigmoid"))
    model = Sequential(layers, device="cpu")
    model.compile(optimizer=Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def torch_twin(model: Sequential) -> nn.Sequential:
    """A plain torch network with the batchfit model's weights."""
    mods: list[nn.Module] = []
    dense = model.layers
    for i, layer in enumerate(dense):
        kernel, bias = layer.get_weights()
        lin = nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(kernel.T))
            lin.bias.copy_(torch.from_numpy(bias))
        mods += [lin, nn.ReLU() if i < len(dense) - 1 else nn.Sigmoid()]
    return nn.Sequential(*mods)


def hand_loop(x: np.ndarray, y: np.ndarray, batch: int) -> Callable[[], None]:
    features = x.shape[1]
    hidden = [64] if features == 32 else [1024, 1024]
    net = torch_twin(batchfit_model(features, hidden))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)

    def run() -> None:
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i : i + batch])
            yb = torch.from_numpy(y[i : i + batch])
            opt.zero_grad(set_to_none=True)
            out = net(xb)
            loss = F.binary_cross_entropy(out, yb)
            loss.backward()
            opt.step()
            acc = ((out > 0.5) == (yb > 0.5)).float().mean()
            loss.item()
            acc.item()

    return run


def tob_loop(x: np.ndarray, y: np.ndarray, batch: int, hidden: list[int]) -> Callable[[], None]:
    model = batchfit_model(x.shape[1], hidden)

    def run() -> None:
        for i in range(0, len(x), batch):
            model.train_on_batch(x[i : i + batch], y[i : i + batch])

    return run


def fit_run(x: np.ndarray, y: np.ndarray, batch: int, hidden: list[int]) -> Callable[[], None]:
    model = batchfit_model(x.shape[1], hidden)

    def run() -> None:
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    return run


def fit_with_callbacks(
    x: np.ndarray, y: np.ndarray, batch: int, hidden: list[int], tmp: str
) -> Callable[[], None]:
    """fit with a progress bar, History, CSVLogger and BackupAndRestore(save_freq=1000)."""
    model = batchfit_model(x.shape[1], hidden)
    sink = open(os.devnull, "w")  # noqa: SIM115  # the bar's output, kept for the process

    def run() -> None:
        model.fit(
            x,
            y,
            batch_size=batch,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[
                ProgbarLogger(1, file=sink),
                CSVLogger(os.path.join(tmp, "log.csv")),
                BackupAndRestore(os.path.join(tmp, "backup"), save_freq=1000),
            ],
        )

    return run


def measure(workload: str, rounds: int) -> dict[str, float]:
    features, hidden, batch, batches = WORKLOADS[workload]
    x, y = make_data(features, batch, batches)
    runners = {
        "hand torch loop": hand_loop(x, y, batch),
        "batchfit train_on_batch": tob_loop(x, y, batch, hidden),
        "batchfit fit": fit_run(x, y, batch, hidden),
        "fit + bar/CSV/backup": fit_with_callbacks(x, y, batch, hidden, tempfile.mkdtemp()),
    }
    for run in runners.values():  # warm-up: allocator, first-batch build
        run()
    times: dict[str, list[float]] = {k: [] for k in runners}
    ratios: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        this_round = {}
        for name, run in runners.items():
            t0 = time.perf_counter()
            run()
            this_round[name] = (time.perf_counter() - t0) / batches * 1e6
            times[name].append(this_round[name])
        for name in runners:
            ratios[name].append(this_round[name] / this_round["hand torch loop"])
    print(
        f"\n{workload}: {features}-{'-'.join(map(str, hidden))}-1 MLP, batch {batch}, "
        f"{batches} steps x {rounds} rounds, torch threads {torch.get_num_threads()}"
    )
    print(f"{'':28s}{'us/step (median)':>18s}{'ratio to hand (median)':>26s}")
    out = {}
    for name in runners:
        med_t = statistics.median(times[name])
        med_r = statistics.median(ratios[name])
        out[name] = med_r
        print(f"{name:28s}{med_t:18.1f}{med_r:26.3f}")
    cb = [a / b for a, b in zip(times["fit + bar/CSV/backup"], times["batchfit fit"])]
    print(f"{'callbacks vs bare fit':28s}{'':18s}{statistics.median(cb):26.3f}")
    return out


def profile_ops(workload: str) -> None:
    """Operator time (torch.profiler) of the hand loop and train_on_batch: the work itself."""
    from torch.profiler import ProfilerActivity, profile

    features, hidden, batch, _ = WORKLOADS[workload]
    x, y = make_data(features, batch, 6)
    runners = {
        "hand torch loop": hand_loop(x, y, batch),
        "train_on_batch": tob_loop(x, y, batch, hidden),
    }
    totals = {}
    for name, run in runners.items():
        run()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
        totals[name] = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3
    hand = totals["hand torch loop"]
    for name, ms in totals.items():
        print(f"{workload}: {name:16s} operator time over 6 steps {ms:8.1f} ms ({ms / hand:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--profile", action="store_true", help="operator time instead of wall time")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        for workload in WORKLOADS if args.workload == "all" else [args.workload]:
            profile_ops(workload)
        return
    for workload in WORKLOADS if args.workload == "all" else [args.workload]:
        measure(workload, args.rounds)


if __name__ == "__main__":
    main()
