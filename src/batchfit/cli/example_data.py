"""`batchfit example-data`: raw tables as people have them, to try the command on.

NOTE [ The example tables ]
`houses.csv` (regression, target `price` in dollars) is generated from a seed,
the same bytes on every machine for the same `--rows` and `--seed`. It holds
every column kind a real export does, so that encoding them matters:

    id             1 .. n (an identifier, not a feature)
    neighborhood   one of 25 names, p_k ~ 1/k^1.5, the last three a tenth of that
                   (about 3 rows in 10,000 each), each with a price factor (0.70 .. 1.55)
    sqft_living    ~ LogNormal(ln 1800, 0.4), clipped to [400, 9000]
    bedrooms       clip(round(sqft_living / 600 + N(0, 0.7)), 1, 8)
    bathrooms      clip(round(4 (0.6 bedrooms + N(0, 0.4))) / 4, 1, 6)
    lot_sqft       ~ LogNormal(ln 7000, 0.6), clipped to [500, 200000]
    basement_sqft  0 with p = .5, else Uniform{200, ..., 1500}
    year_built     Uniform{1900, ..., 2023}
    condition      poor / fair / average / good / excellent (p .03 .10 .50 .27 .10)
    has_garage     True / False (p .70), waterfront True / False (p .02)
    sold_on        a date, Uniform over 2015-01-01 .. 2024-12-31 (YYYY-MM-DD)

    price = (110 sqft_living + 45 basement_sqft + 9000 bathrooms + 3000 bedrooms
             + 12000 ln(lot_sqft / 500))
            x neighborhood factor x condition factor (.80 .90 1 1.08 1.18)
            x 1.06 if has_garage x 1.35 if waterfront
            x (1 - 0.002 min(age, 60) + 0.00004 max(age - 60, 0)^2), age = sale year - year_built
            x 1.045^(years since 2015-01-01) x (1 + 0.03 sin(2 pi (month - 3) / 12))
            x LogNormal(0, 0.08) noise,  rounded to $100

Missing cells, written as real exports spell them (the price uses the values
before they were blanked, so missingness carries no signal):

    lot_sqft       5% empty            (pandas' `to_csv` default)
    bedrooms       3% `NA`             (R's `write.csv`)
    basement_sqft  4% `NaN`            (`str(float("nan"))`)
    neighborhood   2% empty            (a missing category)

`penguins.csv` (classification, target `species`) is the Palmer penguins table
(344 rows, `NA` for missing cells; Horst, Hill & Gorman, data CC0 1.0) copied
from the `palmerpenguins` package when it is installed, else a seeded table
with the same columns: species (Adelie / Chinstrap / Gentoo), island and sex
as strings, the four measurements as numbers, `year`, and `NA` cells.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np

from batchfit._io import atomic_write
from batchfit.cli.errors import CliError

__all__ = [
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "HOUSE_COLUMNS",
    "NEIGHBORHOODS",
    "PENGUIN_COLUMNS",
    "example_data_command",
    "houses_csv",
    "penguins_csv",
]

DEFAULT_ROWS = 10_000
DEFAULT_SEED = 0
HOUSE_COLUMNS = [
    "id",
    "neighborhood",
    "sqft_living",
    "bedrooms",
    "bathrooms",
    "lot_sqft",
    "basement_sqft",
    "year_built",
    "condition",
    "has_garage",
    "waterfront",
    "sold_on",
    "price",
]
PENGUIN_COLUMNS = [
    "species",
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
    "year",
]
# name -> price factor; in order of frequency (the last ones are the rare tail)
NEIGHBORHOODS = {
    "North Ames": 0.95, "College Creek": 1.10, "Old Town": 0.78, "Edwards": 0.82,
    "Somerset": 1.30, "Northridge Heights": 1.50, "Gilbert": 1.08, "Sawyer": 0.85,
    "Northwest Ames": 1.02, "Sawyer West": 1.00, "Mitchell": 0.92, "Brookside": 0.80,
    "Crawford": 1.12, "Iowa DOT and Rail Road": 0.70, "Timberland": 1.25,
    "Northridge": 1.55, "Stone Brook": 1.45, "South & West of ISU": 0.88,
    "Clear Creek": 1.15, "Meadow Village": 0.74, "Briardale": 0.79, "Bloomington Heights": 1.06,
    "Veenker": 1.20, "Northpark Villa": 0.90, "Bluestem": 0.98,
}  # fmt: skip
CONDITIONS = {"poor": 0.80, "fair": 0.90, "average": 1.00, "good": 1.08, "excellent": 1.18}
_CONDITION_P = [0.03, 0.10, 0.50, 0.27, 0.10]
_FIRST_SALE = dt.date(2015, 1, 1)
_SALE_DAYS = (dt.date(2024, 12, 31) - _FIRST_SALE).days + 1
_PENGUINS_SOURCE = (
    "Palmer penguins (Horst, Hill & Gorman 2020; Palmer Station LTER), data licence CC0 1.0"
)


def houses_csv(rows: int, seed: int) -> bytes:
    """The bytes of `houses.csv` (see NOTE [ The example tables ])."""
    if rows < 1:
        raise CliError(f"--rows must be at least 1, got {rows}")
    rng = np.random.default_rng(seed)
    n = rows
    names = list(NEIGHBORHOODS)
    weight = 1.0 / np.arange(1, len(names) + 1) ** 1.5
    weight[-3:] *= 0.1  # the rare tail
    hood = rng.choice(len(names), n, p=weight / weight.sum())
    sqft = np.clip(np.exp(rng.normal(math.log(1800), 0.4, n)), 400, 9000).round()
    bedrooms = np.clip(np.round(sqft / 600 + rng.normal(0, 0.7, n)), 1, 8)
    bathrooms = np.clip(np.round(4 * (0.6 * bedrooms + rng.normal(0, 0.4, n))) / 4, 1, 6)
    lot = np.clip(np.exp(rng.normal(math.log(7000), 0.6, n)), 500, 200_000).round()
    basement = np.where(rng.random(n) < 0.5, 0, rng.integers(200, 1501, n))
    year_built = rng.integers(1900, 2024, n)
    condition = rng.choice(len(CONDITIONS), n, p=_CONDITION_P)
    garage = rng.random(n) < 0.70
    waterfront = rng.random(n) < 0.02
    sale_day = rng.integers(0, _SALE_DAYS, n)
    noise = np.exp(rng.normal(0, 0.08, n))

    sold = np.datetime64(_FIRST_SALE.isoformat()) + sale_day.astype("timedelta64[D]")
    sale_year = sold.astype("datetime64[Y]").astype(np.int64) + 1970
    month = sold.astype("datetime64[M]").astype(np.int64) % 12 + 1
    age = np.maximum(sale_year - year_built, 0)
    size_value = (
        110 * sqft + 45 * basement + 9000 * bathrooms + 3000 * bedrooms + 12000 * np.log(lot / 500)
    )
    price = (
        size_value
        * np.array(list(NEIGHBORHOODS.values()))[hood]
        * np.array(list(CONDITIONS.values()))[condition]
        * np.where(garage, 1.06, 1.0)
        * np.where(waterfront, 1.35, 1.0)
        * (1 - 0.002 * np.minimum(age, 60) + 0.00004 * np.maximum(age - 60, 0) ** 2)
        * 1.045 ** (sale_day / 365.25)
        * (1 + 0.03 * np.sin(2 * np.pi * (month - 3) / 12))
        * noise
    )
    price = (np.round(price / 100) * 100).astype(np.int64)

    columns: dict[str, list[str]] = {
        "id": [str(i) for i in range(1, n + 1)],
        "neighborhood": [names[k] for k in hood],
        "sqft_living": [str(int(v)) for v in sqft],
        "bedrooms": [str(int(v)) for v in bedrooms],
        "bathrooms": [repr(float(v)) for v in bathrooms],
        "lot_sqft": [str(int(v)) for v in lot],
        "basement_sqft": [str(int(v)) for v in basement],
        "year_built": [str(int(v)) for v in year_built],
        "condition": [list(CONDITIONS)[k] for k in condition],
        "has_garage": ["True" if v else "False" for v in garage],
        "waterfront": ["True" if v else "False" for v in waterfront],
        "sold_on": [str(d) for d in sold],
        "price": [str(int(v)) for v in price],
    }
    for column, share, spelling in (
        ("lot_sqft", 0.05, ""),
        ("bedrooms", 0.03, "NA"),
        ("basement_sqft", 0.04, "NaN"),
        ("neighborhood", 0.02, ""),
    ):
        for row in np.flatnonzero(rng.random(n) < share):
            columns[column][row] = spelling
    header = ",".join(HOUSE_COLUMNS)
    body = "\n".join(",".join(cells) for cells in zip(*(columns[c] for c in HOUSE_COLUMNS)))
    return f"{header}\n{body}\n".encode()


def penguins_csv(seed: int) -> tuple[bytes, str]:
    """The bytes of `penguins.csv` and where they came from.

    The `palmerpenguins` package's own `data/penguins.csv` when it is
    installed, else a seeded stand-in with the same columns. The file is
    found through the import system's spec of the package, without importing
    it (its `__init__` imports pandas, which batchfit does not need).
    """
    import importlib.util

    spec = importlib.util.find_spec("palmerpenguins")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        table = Path(folder) / "data" / "penguins.csv"
        if table.is_file():
            return table.read_bytes(), (
                f"{_PENGUINS_SOURCE}; copied from the palmerpenguins package ({table})"
            )
    return _generated_penguins(seed), (
        "generated stand-in with the Palmer penguins' columns (seeded; pip install "
        "palmerpenguins to get the real table)"
    )


# per species: island probabilities (Biscoe, Dream, Torgersen), mean and sd of
# bill length, bill depth, flipper length, body mass, rounded from the real table
_SPECIES = {
    "Adelie": ([0.29, 0.37, 0.34], (38.8, 2.7), (18.3, 1.2), (190.0, 6.5), (3700.0, 460.0)),
    "Gentoo": ([1.0, 0.0, 0.0], (47.5, 3.1), (15.0, 1.0), (217.0, 6.5), (5076.0, 504.0)),
    "Chinstrap": ([0.0, 1.0, 0.0], (48.8, 3.3), (18.4, 1.1), (196.0, 7.1), (3733.0, 384.0)),
}
_ISLANDS = ["Biscoe", "Dream", "Torgersen"]


def _generated_penguins(seed: int, rows: int = 344) -> bytes:
    rng = np.random.default_rng(seed)
    species = rng.choice(list(_SPECIES), rows, p=[0.44, 0.36, 0.20])
    lines = [",".join(PENGUIN_COLUMNS)]
    for kind in species:
        islands, *measures = _SPECIES[str(kind)]
        island = _ISLANDS[rng.choice(3, p=islands)]
        values = [rng.normal(mean, sd) for mean, sd in measures]
        cells = [f"{values[0]:.1f}", f"{values[1]:.1f}", f"{values[2]:.0f}", f"{values[3]:.0f}"]
        if rng.random() < 0.01:
            cells = ["NA"] * 4
        sex = "NA" if rng.random() < 0.03 else str(rng.choice(["female", "male"]))
        year = str(rng.integers(2007, 2010))
        lines.append(",".join([str(kind), island, *cells, sex, year]))
    return ("\n".join(lines) + "\n").encode()


def example_data_command(
    out_dir: str | Path, name: str, rows: int | None, seed: int, overwrite: bool = False
) -> int:
    """Write the example tables to `out_dir` and print how to train on them.

    Args:
        out_dir: the folder to write into (made if missing).
        name: "houses", "penguins" or "all".
        rows: rows of houses.csv (default `DEFAULT_ROWS`); not for penguins.csv.
        seed: seed of the generated tables (same seed, same bytes).
        overwrite: replace files that exist; without it an existing file is an error.

    Returns:
        The exit code (0).

    Raises:
        CliError: an unknown name, `--rows` with penguins only, or a file that
            exists without `overwrite`.
    """
    from batchfit import distributed

    if distributed.torchrun_env():
        raise CliError("batchfit example-data runs in one process: start it without torchrun")
    if name not in ("houses", "penguins", "all"):
        raise CliError(f"--name must be houses, penguins or all, got {name!r}")
    if name == "penguins" and rows is not None:
        raise CliError("--rows sets the size of houses.csv; penguins.csv is a fixed table")
    out = Path(out_dir)
    wanted = ["houses", "penguins"] if name == "all" else [name]
    paths = {table: out / f"{table}.csv" for table in wanted}
    existing = [str(p) for p in paths.values() if p.exists() or p.is_symlink()]
    if existing and not overwrite:
        verb = "exists" if len(existing) == 1 else "exist"
        raise CliError(f"{', '.join(existing)} already {verb}; pass --overwrite to replace it")
    commands = []
    for table, path in paths.items():
        if table == "houses":
            count = DEFAULT_ROWS if rows is None else rows
            data = houses_csv(count, seed)
            source = f"generated, seed {seed} (NOTE [ The example tables ] in {__name__})"
            what = f"{count:,} rows, regression: target price"
            commands.append(f"batchfit fit {path} --target price --out runs/houses")
        else:
            data, source = penguins_csv(seed)
            lines = len(data.splitlines()) - 1  # the header is not a row
            what = f"{lines:,} rows, classification: target species"
            commands.append(f"batchfit fit {path} --target species --out runs/penguins")
        atomic_write(path, data)  # NOTE [ Safe writes ] in batchfit/_io.py
        print(f"Wrote {path} ({what}; {len(data) / 1e3:,.0f} kB)\n  source: {source}", flush=True)
    print("Train on it:", flush=True)
    for command in commands:
        print(f"  {command}", flush=True)
    return 0
