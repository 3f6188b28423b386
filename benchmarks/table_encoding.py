"""Training throughput on a raw table (strings encoded) against an all-numeric one.

Issue 14 asks that encoding a few string columns keep training within 1.2x of
the all-numeric throughput. Two CSVs of the same rows: `numeric.csv` (the
string columns replaced by integer codes, read by the plain numeric CSV
source) and `raw.csv` (three string columns, a boolean and missing cells,
read through the table encoding, NOTE [ Encoding a raw table ]). Each round
trains one epoch of the same model on each, interleaved; the ratio of the
medians is printed.

    .venv/bin/python benchmarks/table_encoding.py [--rows 400000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def make(rows: int, root: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows).round(4) for i in range(8)})
    for j, n in enumerate((5, 12, 40)):
        frame[f"s{j}"] = rng.integers(0, n, rows)
    frame["flag"] = rng.integers(0, 2, rows)
    frame["y"] = frame["x0"] * 2 + frame["s0"] * 0.5 + rng.normal(size=rows).round(4)
    numeric = root / "numeric.csv"
    frame.to_csv(numeric, index=False)
    raw = frame.copy()
    for j in range(3):
        raw[f"s{j}"] = "v" + raw[f"s{j}"].astype(str)
    raw["flag"] = raw["flag"].map({0: "False", 1: "True"})
    raw.loc[rng.choice(rows, rows // 50, replace=False), "x1"] = np.nan
    raw_path = root / "raw.csv"
    raw.to_csv(raw_path, index=False, na_rep="NA")
    return numeric, raw_path


def model_for(width: int):
    import batchfit as bf

    torch.manual_seed(0)
    model = bf.models.Sequential(
        [
            bf.layers.Input((width,)),
            bf.layers.Dense(64, activation="relu"),
            bf.layers.Dense(64, activation="relu"),
            bf.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def numeric_epoch(path: Path, batch: int) -> float:
    import batchfit as bf

    source = bf.data.csv(str(path), "y", batch_size=batch, shuffle_buffer=100_000, seed=0)
    model = model_for(12)
    t0 = time.perf_counter()
    model.fit(source, epochs=1, verbose=0)
    return time.perf_counter() - t0


def raw_epoch(path: Path, batch: int, spec) -> float:
    import batchfit as bf
    from batchfit.data._table_rows import TableRows

    rows = TableRows([f.name for f in spec.features], ["y"], spec.kinds(), spec=spec)
    source = bf.data.csv(
        str(path), "y", [f.name for f in spec.features], batch_size=batch,
        shuffle_buffer=100_000, seed=0, table=rows,
    )  # fmt: skip
    model = model_for(len(spec.output_names()))
    t0 = time.perf_counter()
    model.fit(source, epochs=1, verbose=0)
    return time.perf_counter() - t0


def learn(path: Path):
    import batchfit as bf
    from batchfit.data._table import TableSpec
    from batchfit.data._table_kinds import sample_kinds
    from batchfit.data._table_rows import TableRows, sample_frame
    from batchfit.data._table_scan import TableScan

    names = [*[f"x{i}" for i in range(8)], "s0", "s1", "s2", "flag"]
    kinds = sample_kinds(sample_frame(str(path), [*names, "y"]), [*names, "y"])
    scan = TableScan(kinds)
    t0 = time.perf_counter()
    list(
        bf.data.csv(
            str(path), "y", names, batch_size=65536, table=TableRows(names, ["y"], kinds, scan=scan)
        )
    )
    seconds = time.perf_counter() - t0
    return TableSpec.from_scan(scan, names, ["y"], task="regression"), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        numeric, raw = make(args.rows, Path(tmp))
        spec, pass_seconds = learn(raw)
        print(
            f"{args.rows:,} rows; {len(spec.output_names())} encoded inputs; "
            f"pass {pass_seconds:.2f}s"
        )
        times: dict[str, list[float]] = {"numeric": [], "raw": []}
        for _ in range(args.rounds):
            times["numeric"].append(numeric_epoch(numeric, args.batch_size))
            times["raw"].append(raw_epoch(raw, args.batch_size, spec))
        med = {k: statistics.median(v) for k, v in times.items()}
        for k, v in times.items():
            print(f"{k:8s} epoch seconds: {', '.join(f'{t:.2f}' for t in v)} (median {med[k]:.2f})")
        print(f"raw / numeric epoch time: {med['raw'] / med['numeric']:.3f}x")


if __name__ == "__main__":
    main()
