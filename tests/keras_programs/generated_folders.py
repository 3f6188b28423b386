"""Small generated folders standing in for downloaded image and text data sets.

Shared by the tests, the programs and `benchmarks/keras_dataset_reference.py`
(which records real Keras' listing of the same folders), so every side reads
the same files. Everything is a pure function of the arguments.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def make_image_folder(
    root: str | os.PathLike[str],
    per_class: int = 12,
    classes: tuple[str, ...] = ("Cat", "Dog"),
    size: tuple[int, int] = (40, 52),
    seed: int = 0,
    extensions: tuple[str, ...] = ("jpg", "png"),
    nested: bool = True,
) -> Path:
    """`root/<class>/` holding JPEG and PNG files (some in a nested folder), two separable classes.

    Class `k`'s images are bright on the left for even `k`, on the right for odd `k`, plus noise;
    with `nested`, every fifth file lies in a `nested/` subfolder.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        for i in range(per_class):
            h, w = size[0] + (i % 3) * 4, size[1] - (i % 2) * 6
            img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
            half = slice(0, w // 2) if k % 2 == 0 else slice(w // 2, w)
            img[:, half] += 150
            folder = root / name / ("nested" if nested and i % 5 == 4 else "")
            folder.mkdir(parents=True, exist_ok=True)
            ext = extensions[i % len(extensions)]
            Image.fromarray(img).save(folder / f"{(i * 7) % per_class:03d}_{name.lower()}.{ext}")
        # files the listing must skip
        (root / name / "notes.txt").write_text("not an image")
    return root


def make_text_folder(
    root: str | os.PathLike[str],
    per_class: int = 10,
    classes: tuple[str, ...] = ("neg", "pos"),
    seed: int = 0,
) -> Path:
    """`root/<class>/*.txt` short reviews whose words say their class."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    words = {"neg": ["bad", "dull", "awful"], "pos": ["good", "great", "fine"]}
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        vocab = words.get(name, ["word"])
        for i in range(per_class):
            text = " ".join(vocab[j] for j in rng.integers(0, len(vocab), 5 + i % 4))
            (root / name / f"{i:03d}.txt").write_text(f"review {i}: {text}")
    return root


def make_pet_images(root: str | os.PathLike[str], per_class: int = 24) -> Path:
    """keras.io's `PetImages/{Cat,Dog}` stand-in: JPEG (JFIF) files only, and `Cat/6779.jpg`."""
    import shutil

    root = make_image_folder(
        root, per_class=per_class, extensions=("jpg",), size=(56, 64), nested=False
    )
    for name in ("Cat", "Dog"):
        (root / name / "notes.txt").unlink()  # the example's JFIF filter would delete it
    shutil.copy(root / "Cat" / "000_cat.jpg", root / "Cat" / "6779.jpg")
    return root


JENA_COLUMNS = (
    "Date Time", "p (mbar)", "T (degC)", "Tpot (K)", "Tdew (degC)", "rh (%)", "VPmax (mbar)",
    "VPact (mbar)", "VPdef (mbar)", "sh (g/kg)", "H2OC (mmol/mol)", "rho (g/m**3)",
    "wv (m/s)", "max. wv (m/s)", "wd (deg)",
)  # fmt: skip


def make_jena_csv(path: str | os.PathLike[str], rows: int = 6000, seed: int = 0) -> str:
    """A CSV with the Jena climate columns, one row per 10 minutes: daily cycles plus noise.

    Temperature follows a daily sine (144 rows) and a slow drift, so it can be
    forecast 12 hours ahead from the five days before, as in the real data.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    day = np.sin(2 * np.pi * t / 144)
    drift = np.sin(2 * np.pi * t / 5000)
    temp = 8 + 6 * day + 5 * drift + rng.normal(0, 0.3, rows)
    pressure = 990 + 5 * drift + rng.normal(0, 0.5, rows)
    values = {
        "p (mbar)": pressure,
        "T (degC)": temp,
        "Tpot (K)": temp + 273.15 + 0.1 * rng.normal(size=rows),
        "Tdew (degC)": temp - 3 + rng.normal(0, 0.5, rows),
        "rh (%)": 80 - 10 * day + rng.normal(0, 2, rows),
        "VPmax (mbar)": 10 + 4 * day + rng.normal(0, 0.3, rows),
        "VPact (mbar)": 8 + 2 * day + rng.normal(0, 0.3, rows),
        "VPdef (mbar)": 2 + 2 * day + rng.normal(0, 0.3, rows),
        "sh (g/kg)": 5 + day + rng.normal(0, 0.2, rows),
        "H2OC (mmol/mol)": 8 + day + rng.normal(0, 0.2, rows),
        "rho (g/m**3)": 1250 - 20 * day + rng.normal(0, 2, rows),
        "wv (m/s)": np.abs(2 + rng.normal(0, 1, rows)),
        "max. wv (m/s)": np.abs(3 + rng.normal(0, 1, rows)),
        "wd (deg)": rng.uniform(0, 360, rows),
    }
    stamps = pd.date_range("2009-01-01 00:10:00", periods=rows, freq="10min")
    frame = pd.DataFrame({"Date Time": stamps.strftime("%d.%m.%Y %H:%M:%S"), **values})
    frame.to_csv(path, index=False)
    return os.fspath(path)
