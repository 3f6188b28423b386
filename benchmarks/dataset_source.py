"""Rows/s of `batchfit.data.dataset` against `batchfit.data.parquet` on the same files, interleaved.

    .venv/bin/python benchmarks/dataset_source.py --rows 5000000 --rounds 5
    .venv/bin/python benchmarks/dataset_source.py --rows 1000000 --rounds 3   # quick

The housing-like table (12 features and a price) written as 8 Parquet files
in a hive layout (`part=0..7`), row groups of 250,000 rows. Readers, each
yielding batches of 256:
- `parquet`: `bf.data.parquet` over the 8 files;
- `dataset`: `bf.data.dataset` over the same directory (hive partitioning,
  the partition column not read);
- `dataset + filter`: the same with `filter=pc.field("part") != 7` (a
  partition pruned, the scanner's filter on every batch), reported as rows/s
  of the rows it keeps;
- `dataset shuffled`: the same as `dataset` with `shuffle_buffer=100_000`,
  against `parquet` with the same buffer.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from data_common import housing_frame, interleave, report

import batchfit.data as bd

PARTS = 8


def write_lake(root: str, rows: int) -> None:
    """The table in `PARTS` hive directories, written once."""
    done = os.path.join(root, "_done")
    if os.path.exists(done):
        return
    per = rows // PARTS
    for part in range(PARTS):
        folder = os.path.join(root, f"part={part}")
        os.makedirs(folder, exist_ok=True)
        count = per if part < PARTS - 1 else rows - per * (PARTS - 1)
        frame = housing_frame(count, seed=part)
        frame.write_parquet(os.path.join(folder, "data.parquet"), row_group_size=250_000)
    open(done, "w").close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    import pyarrow.compute as pc

    root = os.path.join(args.dir, f"batchfit_lake_{args.rows}")
    write_lake(root, args.rows)
    files = sorted(
        os.path.join(root, d, "data.parquet") for d in os.listdir(root) if d.startswith("part=")
    )

    def rows(source: object) -> int:
        return sum(len(batch[0]) for batch in source)  # type: ignore[attr-defined]

    def parquet() -> int:
        return rows(bd.parquet(files, target="price", batch_size=256))

    def dataset(**extra: object) -> int:
        return rows(
            bd.dataset(
                root,
                target="price",
                features=_features(root),
                partitioning="hive",
                batch_size=256,
                **extra,  # type: ignore[arg-type]
            )
        )

    def parquet_shuffled() -> int:
        return rows(
            bd.parquet(files, target="price", batch_size=256, shuffle_buffer=100_000, seed=0)
        )

    readers = {
        "parquet": parquet,
        "dataset": dataset,
        "dataset + filter": lambda: dataset(filter=pc.field("part") != PARTS - 1),
        "parquet shuffled": parquet_shuffled,
        "dataset shuffled": lambda: dataset(shuffle_buffer=100_000, seed=0),
    }
    rates = interleave(readers, args.rounds)
    print(
        f"\n{args.rows} rows in {PARTS} files, {args.rounds} interleaved rounds, "
        f"{os.cpu_count()} cores; ratios are dataset / parquet"
    )
    print(report({k: rates[k] for k in ("dataset", "parquet")}, "dataset", ["parquet"]))
    print()
    print(
        report(
            {k: rates[k] for k in ("dataset + filter", "parquet")}, "dataset + filter", ["parquet"]
        )
    )
    print()
    print(
        report(
            {k: rates[k] for k in ("dataset shuffled", "parquet shuffled")},
            "dataset shuffled",
            ["parquet shuffled"],
        )
    )


def _features(root: str) -> list[str]:
    """Every column but the target and the partition column."""
    import pyarrow.parquet as pq

    first = os.path.join(root, "part=0", "data.parquet")
    return [name for name in pq.read_schema(first).names if name != "price"]


if __name__ == "__main__":
    main()
