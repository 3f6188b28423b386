"""Peak RSS of one epoch over a CSV and over one `--factor` times larger.

Memory must be bounded by block, buffer and batch sizes, never by the data
size. Each epoch runs in its own process; its peak RSS comes from
`os.wait4` (ru_maxrss), so imports are counted the same way for both sizes.

    .venv/bin/python benchmarks/data_memory.py --rows 9500000 --factor 5 --fit   # 1 GB vs 5 GB
    .venv/bin/python benchmarks/data_memory.py --rows 1000000 --factor 5          # quick
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from data_common import ensure_csv

CHILD = r"""
import sys, time
import batchfit.data as bd
path, fit, shuffle = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
source = bd.csv(path, target="price", batch_size=256, shuffle_buffer=shuffle, seed=0)
start = time.perf_counter()
if fit:
    import torch
    from batchfit.layers import Dense
    from batchfit.models import Sequential
    torch.set_num_threads(1)
    model = Sequential()
    model.add(Dense(1, input_dim=12))
    model.compile(optimizer="adam", loss="mse")
    model.fit(source, epochs=1, verbose=0)
else:
    rows = sum(len(x) for x, _ in source)
print(f"{time.perf_counter() - start:.1f}")
"""


def peak_rss_mb(path: str, fit: bool, shuffle: int) -> tuple[float, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, path, "1" if fit else "0", str(shuffle)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    out = process.stdout.read().strip()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"child failed on {path} with code {process.returncode}")
    return usage.ru_maxrss / 1024, out  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the small file")
    parser.add_argument("--factor", type=int, default=5)
    parser.add_argument("--fit", action="store_true", help="run model.fit, not a bare epoch")
    parser.add_argument("--shuffle-buffer", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    small = ensure_csv(os.path.join(args.dir, f"batchfit_housing_{args.rows}.csv"), args.rows)
    big_rows = args.rows * args.factor
    big = ensure_csv(os.path.join(args.dir, f"batchfit_housing_{big_rows}.csv"), big_rows)
    results: dict[str, list[float]] = {small: [], big: []}
    for r in range(args.rounds):
        for path in (small, big) if r % 2 == 0 else (big, small):
            t0 = time.perf_counter()
            rss, seconds = peak_rss_mb(path, args.fit, args.shuffle_buffer)
            results[path].append(rss)
            print(
                f"  {os.path.basename(path)}: peak RSS {rss:.0f} MB "
                f"(epoch {seconds} s, process {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    what = "model.fit, 1 epoch" if args.fit else "bare epoch"
    print(f"\nPeak RSS, {what}, batch 256, shuffle_buffer={args.shuffle_buffer}")
    print("| file | size | peak RSS MB (max over runs) |\n|---|---:|---:|")
    for path, values in results.items():
        size_gb = os.path.getsize(path) / 1e9
        print(f"| {os.path.basename(path)} | {size_gb:.2f} GB | {max(values):.0f} |")
    ratio = max(results[big]) / max(results[small])
    print(f"\nlarger / smaller peak RSS: {ratio:.3f} (bar: <= 1.15, and < 1500 MB)")


if __name__ == "__main__":
    main()
