"""`batchfit demo`: a housing-like CSV with a known price model, streamed through `fit`.

NOTE [ The demo's price model ]
Each row is a house (fixed seed, so the file is the same on every machine),
with an `id` column that is not a feature (`--drop id`):

    sqft_living  ~ LogNormal(ln 1900, 0.4), clipped to [350, 12000]
    bedrooms     = clip(round(sqft_living / 600 + N(0, 0.7)), 1, 8)
    bathrooms    = clip(round(4 * (0.6 * bedrooms + N(0, 0.4))) / 4, 1, 6)
    floors       in {1, 1.5, 2, 2.5, 3} with p = .45 .1 .35 .05 .05
    lot_sqft     ~ LogNormal(ln 7000, 0.6), clipped to [500, 200000]
    year_built   ~ Uniform{1900, ..., 2023}
    condition    in {1, ..., 5} with p = .02 .08 .55 .25 .10
    grade        = clip(round(7 + 1.2 ln(sqft_living / 1900) + N(0, 1)), 3, 13)
    waterfront   ~ Bernoulli(0.01)
    latitude     ~ Uniform(47.20, 47.80), longitude ~ Uniform(-122.50, -121.70)

    distance_km  = great-circle-ish distance to (47.62, -122.33) (not a column)
    age          = 2024 - year_built
    price (k$)   = 80 + (0.12 + 0.02 (grade - 7) + 0.01 (condition - 3)) sqft_living
                   + 350 exp(-distance_km / 10) + 8 bathrooms
                   + 20 ln(lot_sqft / 7000) + 300 waterfront
                   - 1.0 age + 0.01 age^2
                   + noise,  noise ~ N(0, 30^2)

The noise is independent of the features, so no model can beat it: the noise
floor is an RMSE (= sqrt of the MSE loss) of 30 k$ and a mean absolute error
of 30 sqrt(2/pi) = 23.94 k$. Values are written rounded (coordinates to 1e-4
degrees, price to 0.1 k$), which moves these floors by far less than 0.1%.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_ROWS", "NOISE_MAE", "NOISE_SD", "generate_houses", "run_demo"]

DEFAULT_ROWS = 2_000_000
DEFAULT_EPOCHS = 4
NOISE_SD = 30.0  # k$, the standard deviation of the price noise
NOISE_MAE = NOISE_SD * math.sqrt(2 / math.pi)
SEED = 20240601
COLUMNS = [
    "id",
    "sqft_living",
    "bedrooms",
    "bathrooms",
    "floors",
    "lot_sqft",
    "year_built",
    "condition",
    "grade",
    "waterfront",
    "latitude",
    "longitude",
    "price",
]
_CHUNK_ROWS = 250_000  # rows generated and written at a time (~30 MB of arrays)


def _houses(rng: np.random.Generator, n: int, first_id: int) -> dict[str, np.ndarray]:
    """`n` rows of the price model in NOTE [ The demo's price model ]."""
    sqft = np.clip(np.exp(rng.normal(math.log(1900), 0.4, n)), 350, 12000).round()
    bedrooms = np.clip(np.round(sqft / 600 + rng.normal(0, 0.7, n)), 1, 8)
    bathrooms = np.clip(np.round(4 * (0.6 * bedrooms + rng.normal(0, 0.4, n))) / 4, 1, 6)
    floors = rng.choice([1.0, 1.5, 2.0, 2.5, 3.0], n, p=[0.45, 0.1, 0.35, 0.05, 0.05])
    lot = np.clip(np.exp(rng.normal(math.log(7000), 0.6, n)), 500, 200_000).round()
    year = rng.integers(1900, 2024, n)
    condition = rng.choice([1, 2, 3, 4, 5], n, p=[0.02, 0.08, 0.55, 0.25, 0.10])
    grade = np.clip(np.round(7 + 1.2 * np.log(sqft / 1900) + rng.normal(0, 1, n)), 3, 13)
    waterfront = (rng.random(n) < 0.01).astype(np.int64)
    lat = np.round(rng.uniform(47.2, 47.8, n), 4)
    lon = np.round(rng.uniform(-122.5, -121.7, n), 4)
    north_km = (lat - 47.62) * 111.2
    east_km = (lon + 122.33) * 111.2 * math.cos(math.radians(47.62))
    distance = np.hypot(north_km, east_km)
    age = 2024 - year
    price = (
        80
        + (0.12 + 0.02 * (grade - 7) + 0.01 * (condition - 3)) * sqft
        + 350 * np.exp(-distance / 10)
        + 8 * bathrooms
        + 20 * np.log(lot / 7000)
        + 300 * waterfront
        - 1.0 * age
        + 0.01 * age**2
        + rng.normal(0, NOISE_SD, n)
    )
    return {
        "id": np.arange(first_id, first_id + n, dtype=np.int64),
        "sqft_living": sqft.astype(np.int64),
        "bedrooms": bedrooms.astype(np.int64),
        "bathrooms": bathrooms,
        "floors": floors,
        "lot_sqft": lot.astype(np.int64),
        "year_built": year,
        "condition": condition,
        "grade": grade.astype(np.int64),
        "waterfront": waterfront,
        "latitude": lat,
        "longitude": lon,
        "price": np.round(price, 1),
    }


def generate_houses(path: str | Path, rows: int, seed: int = SEED) -> Path:
    """Write `rows` houses to a CSV in chunks (memory stays at one chunk).

    The file is the same for the same `rows` and `seed` on every machine.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tmp = path.with_name(f".{path.name}.tmp")
    writer = None
    try:
        for start in range(0, rows, _CHUNK_ROWS):
            table = pa.table(_houses(rng, min(_CHUNK_ROWS, rows - start), 1_000_001 + start))
            if writer is None:
                writer = pacsv.CSVWriter(
                    str(tmp), table.schema, write_options=pacsv.WriteOptions(quoting_style="none")
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return path


def run_demo(rows: int, out: Path, epochs: int = DEFAULT_EPOCHS, quiet: bool = False) -> int:
    """Generate (or reuse) the data, train with a validation split, compare with the floor."""
    from batchfit.cli.fit import fit_command
    from batchfit.cli.run_dir import read_run
    from batchfit.cli.settings import merge_settings

    t_start = time.perf_counter()
    data = out / f"houses-{rows}.csv"
    marker = out / f"houses-{rows}.json"
    expected = {"rows": rows, "seed": SEED, "noise_sd": NOISE_SD, "columns": COLUMNS}
    if data.is_file() and marker.is_file() and json.loads(marker.read_text()) == expected:
        print(f"Reusing {data} ({data.stat().st_size / 1e6:.0f} MB, {rows:,} rows)", flush=True)
    else:
        print(f"Generating {data} ({rows:,} rows, seed {SEED}) ...", flush=True)
        t0 = time.perf_counter()
        generate_houses(data, rows)
        marker.write_text(json.dumps(expected))
        print(
            f"  {data.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
    run_dir = out / "run"
    overwrite = False
    if (run_dir / "run.json").is_file():
        overwrite = read_run(run_dir).get("status") == "complete"  # an interrupted run resumes
    settings = merge_settings(
        {
            "data": [str(data)],
            "target": ["price"],
            "drop": ["id"],
            "model": "dense:64:relu,dense:64:relu,dense:1",
            "loss": "mse",
            "metrics": ["mae"],
            "learning_rate": 3e-3,
            "epochs": epochs,
            "batch_size": 512,
            "validation_split": 0.1,
            "shuffle_buffer": 100_000,
            "normalize": True,
            "normalize_target": True,
            "out": str(run_dir),
            "backup_every": 1000,
        }
    )
    command = (
        f"batchfit fit {data} --target price --drop id --model {settings.model} --loss mse "
        f"--metrics mae --learning-rate 0.003 --epochs {epochs} --batch-size 512 "
        f"--validation-split 0.1 --normalize --normalize-target --out {run_dir}"
    )
    print(f"Training, the same as:\n  {command}", flush=True)
    fit_command(settings, resume=False, overwrite=overwrite, quiet=quiet)
    final = read_run(run_dir)["final"]
    rmse, mae = math.sqrt(final["val_loss"]), final["val_mae"]
    print(
        f"\nValidation error vs the noise floor (NOTE [ The demo's price model ] in "
        f"batchfit/cli/demo.py):\n"
        f"  RMSE {rmse:7.2f} k$   floor {NOISE_SD:6.2f} k$   ({rmse / NOISE_SD:.2f}x)\n"
        f"  MAE  {mae:7.2f} k$   floor {NOISE_MAE:6.2f} k$   ({mae / NOISE_MAE:.2f}x)\n"
        f"Demo finished in {time.perf_counter() - t_start:.0f}s.",
        flush=True,
    )
    return 0
