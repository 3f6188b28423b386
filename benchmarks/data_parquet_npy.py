"""Rows/s of `batchfit.data.parquet` and `npy` against the raw readers, interleaved.

    .venv/bin/python benchmarks/data_parquet_npy.py --rows 9500000
    .venv/bin/python benchmarks/data_parquet_npy.py --rows 2000000 --rounds 3   # quick

Parquet: batchfit batches of 256 vs `ParquetFile.iter_batches` (64k-row
record batches to float32 NumPy). npy: batchfit batches of 256 vs slicing a
`np.load(mmap_mode="r")` map into 64k-row float32 blocks.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from data_common import FEATURES, housing_frame, interleave, report

import batchfit.data as bd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    import pyarrow.parquet as pq

    parquet_path = os.path.join(args.dir, f"batchfit_housing_{args.rows}.parquet")
    x_path = os.path.join(args.dir, f"batchfit_housing_{args.rows}_x.npy")
    y_path = os.path.join(args.dir, f"batchfit_housing_{args.rows}_y.npy")
    if not os.path.exists(parquet_path):
        frame = housing_frame(args.rows)
        frame.write_parquet(parquet_path, row_group_size=1_000_000)
        np.save(x_path, frame.select(FEATURES).to_numpy(order="c").astype(np.float32))
        np.save(y_path, frame["price"].to_numpy().astype(np.float32))
        del frame

    def batchfit_parquet() -> int:
        return sum(len(x) for x, _ in bd.parquet(parquet_path, target="price", batch_size=256))

    def iter_batches() -> int:
        rows = 0
        for batch in pq.ParquetFile(parquet_path).iter_batches(batch_size=65_536):
            x = np.empty((batch.num_rows, len(FEATURES)), np.float32)
            for j, name in enumerate(FEATURES):
                x[:, j] = batch.column(name).to_numpy()
            batch.column("price").to_numpy().astype(np.float32)
            rows += len(x)
        return rows

    def batchfit_npy() -> int:
        return sum(len(x) for x, _ in bd.npy(x_path, y_path, batch_size=256))

    def memmap_blocks() -> int:
        x, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
        rows = 0
        for start in range(0, len(x), 65_536):
            block = np.array(x[start : start + 65_536], dtype=np.float32)
            np.array(y[start : start + 65_536], dtype=np.float32)
            rows += len(block)
        return rows

    def memmap_batches() -> int:
        x, y = np.load(x_path, mmap_mode="r"), np.load(y_path, mmap_mode="r")
        rows = 0
        for start in range(0, len(x), 256):
            batch = np.array(x[start : start + 256], dtype=np.float32)
            np.array(y[start : start + 256], dtype=np.float32)
            rows += len(batch)
        return rows

    readers = {
        "batchfit parquet (256)": batchfit_parquet,
        "ParquetFile.iter_batches": iter_batches,
        "batchfit npy (256)": batchfit_npy,
        "np.load mmap blocks": memmap_blocks,
        "np.load mmap batches of 256": memmap_batches,
    }
    rates = interleave(readers, args.rounds)
    print(f"\n{args.rows} rows, {args.rounds} interleaved rounds, {os.cpu_count()} cores")
    print(
        report(
            {k: rates[k] for k in list(readers)[:2]},
            "batchfit parquet (256)",
            ["ParquetFile.iter_batches"],
        )
    )
    print()
    print(
        report(
            {k: rates[k] for k in list(readers)[2:]},
            "batchfit npy (256)",
            ["np.load mmap blocks", "np.load mmap batches of 256"],
        )
    )


if __name__ == "__main__":
    main()
