"""Rows/s of `batchfit.data.csv` against the streaming CSV readers, interleaved.

Every reader delivers the same thing: float32 NumPy features and targets.
batchfit delivers batches of 256 rows; the others deliver their own chunks
(which is less work), so a ratio of 1.0 means batching, shuffling support and
validation cost nothing over the raw reader.

    .venv/bin/python benchmarks/data_csv.py --rows 9500000   # ~1 GB
    .venv/bin/python benchmarks/data_csv.py --rows 1000000 --rounds 3   # quick
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
from data_common import COLUMNS, FEATURES, ensure_csv, interleave, report

import batchfit.data as bd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument(
        "--pandas-100-rows",
        type=int,
        default=200_000,
        help="rows read by the slow pandas chunksize=100 loop (its rate is per row)",
    )
    parser.add_argument(
        "--engines",
        action="store_true",
        help="compare the parsers (polars vs pyarrow) on 8 MiB blocks instead",
    )
    args = parser.parse_args()
    path = ensure_csv(os.path.join(args.dir, f"batchfit_housing_{args.rows}.csv"), args.rows)
    size_mb = os.path.getsize(path) / 1e6
    print(f"{path}: {args.rows} rows, {size_mb:.0f} MB")

    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = {name: pl.Float32 for name in COLUMNS}

    def batchfit_csv() -> int:
        rows = 0
        for x, _y in bd.csv(path, target="price", batch_size=256):
            rows += len(x)
        return rows

    def batchfit_csv_shuffled() -> int:
        rows = 0
        source = bd.csv(path, target="price", batch_size=256, shuffle_buffer=100_000, seed=0)
        for x, _y in source:
            rows += len(x)
        return rows

    def polars_batched() -> int:
        rows = 0
        for frame in pl.scan_csv(path, schema=schema).collect_batches():
            x = frame.select(FEATURES).to_numpy(order="c")
            frame["price"].to_numpy()
            rows += len(x)
        return rows

    def pyarrow_open_csv() -> int:
        rows = 0
        types = {name: pa.float32() for name in COLUMNS}
        reader = pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
        for batch in reader:
            x = np.column_stack([batch.column(n).to_numpy() for n in FEATURES])
            batch.column("price").to_numpy()
            rows += len(x)
        return rows

    def pandas_chunks(chunksize: int, limit: int | None) -> int:
        rows = 0
        for chunk in pd.read_csv(path, chunksize=chunksize):
            x = chunk[FEATURES].to_numpy(dtype=np.float32)
            chunk["price"].to_numpy(dtype=np.float32)
            rows += len(x)
            if limit is not None and rows >= limit:
                break
        return rows

    def blocks(block_bytes: int = 8 << 20):
        """The file cut into byte blocks at line breaks, as the csv source reads it."""
        with open(path, "rb") as f:
            f.readline()
            rest = b""
            while block := f.read(block_bytes):
                data = rest + block
                cut = data.rfind(b"\n") + 1
                yield data[:cut]
                rest = data[cut:]
            if rest:
                yield rest

    def polars_blocks() -> int:
        rows = 0
        for data in blocks():
            frame = pl.read_csv(data, has_header=False, schema=schema)
            rows += len(frame.select(FEATURES).to_numpy(order="c"))
        return rows

    def pyarrow_blocks() -> int:
        rows = 0
        read = pacsv.ReadOptions(column_names=COLUMNS)
        types = pacsv.ConvertOptions(column_types={name: pa.float32() for name in COLUMNS})
        for data in blocks():
            table = pacsv.read_csv(pa.BufferReader(data), read_options=read, convert_options=types)
            rows += len(np.column_stack([table.column(n).to_numpy() for n in FEATURES]))
        return rows

    if args.engines:  # which parser the csv source should use
        rates = interleave(
            {
                "polars read_csv, 8 MiB blocks": polars_blocks,
                "pyarrow read_csv, 8 MiB blocks": pyarrow_blocks,
            },
            args.rounds,
        )
        print(report(rates, "polars read_csv, 8 MiB blocks", list(rates)))
        return

    readers = {
        "batchfit csv (batches of 256)": batchfit_csv,
        "batchfit csv shuffled 100k": batchfit_csv_shuffled,
        "polars scan_csv batches": polars_batched,
        "pyarrow open_csv": pyarrow_open_csv,
        "pandas chunksize=100_000": lambda: pandas_chunks(100_000, None),
        "pandas chunksize=100": lambda: pandas_chunks(100, args.pandas_100_rows),
    }
    rates = interleave(readers, args.rounds)
    print()
    print(
        f"CSV {args.rows} rows ({size_mb:.0f} MB), {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} cores"
    )
    print(report(rates, "batchfit csv (batches of 256)", list(readers)))


if __name__ == "__main__":
    main()
