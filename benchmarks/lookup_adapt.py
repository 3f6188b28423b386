"""StringLookup.adapt / IntegerLookup.adapt / Discretization.adapt throughput against
pandas' value_counts (and np.quantile) on the same batches, interleaved, printed as ratios.

    .venv/bin/python benchmarks/lookup_adapt.py --rows 1000000 5000000 --rounds 3

The strings are a categorical column as a CSV reader yields it: an object array of
Python str per batch (65,536 rows), drawn from a Zipf-like vocabulary. The baseline
does the same streamed job with pandas: `value_counts` per batch, summed, then the
Keras order (count descending, token descending). Lower time is better; the ratio is
batchfit's time over the baseline's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from batchfit.layers import Discretization, IntegerLookup, StringLookup


def string_batches(rows: int, vocabulary: int, batch: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    words = np.array([f"category_{i}" for i in range(vocabulary)], dtype=object)
    p = 1.0 / np.arange(1, vocabulary + 1)
    picks = rng.choice(vocabulary, size=rows, p=p / p.sum())
    return [words[picks[i : i + batch]] for i in range(0, rows, batch)]


def pandas_vocabulary(batches: list[np.ndarray]) -> list[object]:
    total: pd.Series | None = None
    for b in batches:
        counts = pd.Series(b).value_counts()
        total = counts if total is None else total.add(counts, fill_value=0)
    assert total is not None
    frame = pd.DataFrame({"token": total.index, "count": total.to_numpy()})
    return frame.sort_values(["count", "token"], ascending=False)["token"].tolist()


def best_of(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def race(
    rows: int, name: str, ours: Callable[[], object], theirs: Callable[[], object], rounds: int
) -> None:
    """Interleaved rounds of both; prints rows/s and batchfit's time over the baseline's."""
    ours_time = theirs_time = 0.0
    for _ in range(rounds):
        ours_time += best_of(ours, 1)
        theirs_time += best_of(theirs, 1)
    print(
        f"| {rows:,} | {name} | {rows * rounds / ours_time / 1e6:.1f} M rows/s "
        f"| {rows * rounds / theirs_time / 1e6:.1f} M rows/s | {ours_time / theirs_time:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--vocabulary", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=65_536)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| rows | layer | batchfit | baseline | ratio |")
    print("|---:|---|---:|---:|---:|")
    for rows in args.rows:
        strings = string_batches(rows, args.vocabulary, args.batch, seed=0)
        layer = StringLookup()
        layer.adapt(iter(strings))
        assert layer.get_vocabulary()[1:] == pandas_vocabulary(strings)
        race(
            rows,
            "StringLookup (vs pandas value_counts)",
            lambda strings=strings: StringLookup().adapt(iter(strings)),
            lambda strings=strings: pandas_vocabulary(strings),
            args.rounds,
        )
        rng = np.random.default_rng(1)
        ints = [rng.zipf(1.3, size=len(b)).astype(np.int64) for b in strings]
        race(
            rows,
            "IntegerLookup, max_tokens=10,000 (vs pandas value_counts)",
            lambda ints=ints: IntegerLookup(max_tokens=10_000).adapt(iter(ints)),
            lambda ints=ints: pandas_vocabulary(ints),
            args.rounds,
        )
        floats = [rng.lognormal(size=len(b)).astype(np.float32) for b in strings]
        race(
            rows,
            "Discretization, num_bins=10 (vs np.quantile of all rows)",
            lambda floats=floats: Discretization(num_bins=10).adapt(iter(floats)),
            lambda floats=floats: np.quantile(np.concatenate(floats), np.arange(1, 10) / 10),
            args.rounds,
        )


if __name__ == "__main__":
    main()
