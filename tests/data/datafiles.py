"""Small seeded data files for the data tests."""

from __future__ import annotations

import os

import numpy as np


def table(rows: int, start: int = 0, features: int = 3) -> dict[str, np.ndarray]:
    """Columns `id`, `f0..`, `price`: `id` numbers rows, `price = 2*id + 1` (exact in float32)."""
    ids = np.arange(start, start + rows, dtype=np.float64)
    cols = {"id": ids}
    for j in range(features):
        cols[f"f{j}"] = np.round(ids * 0.5 + j, 1)
    cols["price"] = 2 * ids + 1
    return cols


def write_csv(path: str, cols: dict[str, np.ndarray], compression: str | None = None) -> str:
    names = list(cols)
    lines = [",".join(names)]
    matrix = np.column_stack([cols[n] for n in names])
    lines.extend(",".join(repr(float(v)) for v in row) for row in matrix)
    data = ("\n".join(lines) + "\n").encode()
    if compression == "gzip":
        import gzip

        data = gzip.compress(data)
    elif compression == "zstd":
        import pyarrow as pa

        with pa.output_stream(path, compression="zstd") as out:
            out.write(data)
        return path
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_parquet(path: str, cols: dict[str, np.ndarray], row_group_rows: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cols), path, row_group_size=row_group_rows)
    return path


def split_csvs(directory: str, rows: int, files: int, compression: str | None = None) -> list[str]:
    """`rows` rows spread over `files` CSV files (some may be small, none empty)."""
    bounds = np.linspace(0, rows, files + 1).astype(int)
    suffix = {"gzip": ".csv.gz", "zstd": ".csv.zst"}.get(compression or "", ".csv")
    paths = []
    for k in range(files):
        path = os.path.join(directory, f"part{k:03d}{suffix}")
        write_csv(path, table(bounds[k + 1] - bounds[k], start=bounds[k]), compression)
        paths.append(path)
    return paths
