"""What quote-aware cutting costs: `csv(..., newlines_in_values=True)` (the default) vs False.

True reads each file once when the source is made, to cut only between records;
False cuts at every line break. Runs alternate; the medians are compared.

    .venv/bin/python benchmarks/data_csv_quotes.py --rows 9500000 --rounds 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from data_common import ensure_csv

import batchfit.data as bd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    path = ensure_csv(os.path.join(args.dir, f"batchfit_housing_{args.rows}.csv"), args.rows)
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(args.rounds):
        for flag in (True, False):
            start = time.perf_counter()
            source = bd.csv(path, target="price", batch_size=256, newlines_in_values=flag)
            built = time.perf_counter() - start
            rows = sum(len(x) for x, _ in source)
            results[flag].append((time.perf_counter() - start, built))
            print(f"  round {r + 1} newlines_in_values={flag}: {rows} rows, "
                  f"{results[flag][-1][0]:.2f}s ({built * 1e3:.0f} ms to build)")  # fmt: skip
    print(
        "\n| newlines_in_values | median s (build + read) | median ms to build |\n|---|---:|---:|"
    )
    for flag, runs in results.items():
        total = statistics.median(t for t, _ in runs)
        built = statistics.median(b for _, b in runs) * 1e3
        print(f"| {flag} | {total:.2f} | {built:.0f} |")


if __name__ == "__main__":
    main()
