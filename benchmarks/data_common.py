"""Shared helpers of the data benchmarks: a housing-like table, timing, reporting."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

FEATURES = [
    "bedrooms",
    "bathrooms",
    "sqft_living",
    "sqft_lot",
    "floors",
    "waterfront",
    "view",
    "condition",
    "grade",
    "sqft_above",
    "yr_built",
    "lat",
]
COLUMNS = [*FEATURES, "price"]  # 13 numeric columns


def housing_frame(rows: int, seed: int = 0):  # -> polars.DataFrame
    """A King-County-like table of `rows` rows (12 features and a price)."""
    import polars as pl

    rng = np.random.default_rng(seed)
    scales = [5, 4, 5000, 20000, 3, 1, 4, 5, 13, 4000, 2015, 47.7]
    cols = {
        name: np.round(rng.random(rows) * scale, 3)
        for name, scale in zip(FEATURES, scales, strict=True)
    }
    cols["price"] = np.round(rng.random(rows) * 1e6, 2)
    return pl.DataFrame(cols)


def ensure_csv(path: str, rows: int) -> str:
    """Write the CSV once (in pieces, so generation never needs the whole table)."""
    if os.path.exists(path):
        return path
    step = 1_000_000
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        for start in range(0, rows, step):
            frame = housing_frame(min(step, rows - start), seed=start)
            frame.write_csv(out, include_header=start == 0)
    os.replace(tmp, path)
    return path


def timed(fn: Callable[[], int]) -> float:
    """Rows per second of `fn`, which returns the rows it delivered."""
    start = time.perf_counter()
    rows = fn()
    return rows / (time.perf_counter() - start)


def interleave(readers: dict[str, Callable[[], int]], rounds: int) -> dict[str, list[float]]:
    """Run every reader once per round, rotating the order, so load hits all alike."""
    rates: dict[str, list[float]] = {name: [] for name in readers}
    names = list(readers)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            rates[name].append(timed(readers[name]))
            print(f"  round {r + 1} {name:<28} {rates[name][-1] / 1e6:7.2f} M rows/s", flush=True)
    return rates


def report(rates: dict[str, list[float]], ours: str, versus: list[str]) -> str:
    """A Markdown table: median rates, and ours as a ratio of each reference.

    Two ratios: of the medians, and the median of per-round ratios (each
    round's readers ran back to back, so the paired ratio cancels slow
    phases of a shared machine).
    """
    median = {name: statistics.median(v) for name, v in rates.items()}
    lines = [
        "| reader | median M rows/s | runs | batchfit / reader (medians) | (paired rounds) |",
        "|---|---:|---|---:|---:|",
    ]
    for name, value in median.items():
        runs = ", ".join(f"{v / 1e6:.2f}" for v in rates[name])
        ratio = paired = ""
        if name in versus and name != ours:
            ratio = f"{median[ours] / value:.2f}x"
            pairs = [a / b for a, b in zip(rates[ours], rates[name], strict=True)]
            paired = f"{statistics.median(pairs):.2f}x"
        lines.append(f"| {name} | {value / 1e6:.2f} | {runs} | {ratio} | {paired} |")
    return "\n".join(lines)
