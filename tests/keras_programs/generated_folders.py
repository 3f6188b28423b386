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
) -> Path:
    """`root/<class>/` holding JPEG and PNG files (some in a nested folder), two separable classes.

    Class `k`'s images are bright on the left for even `k`, on the right for odd `k`, plus noise.
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
            folder = root / name / ("nested" if i % 5 == 4 else "")
            folder.mkdir(parents=True, exist_ok=True)
            ext = "jpg" if i % 2 == 0 else "png"
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
