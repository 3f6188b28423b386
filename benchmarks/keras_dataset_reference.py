"""Record real Keras' listing and split of the generated image/text folders.

Run with the Keras venv (its torch backend needs no TensorFlow for these
functions), from the repository root:

    KERAS_BACKEND=torch /work/keras-venv/bin/python benchmarks/keras_dataset_reference.py

`image_dataset_from_directory` itself needs TensorFlow or Grain to build its
dataset, neither installed there, so this calls the two functions it lists
and splits with (`keras.src.utils.dataset_utils.index_directory` and
`get_training_or_validation_split`), which decide which file goes where. The
printed JSON is pasted into `tests/test_keras_datasets.py` (KERAS_LISTING).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "keras_programs"))

from generated_folders import make_image_folder, make_text_folder
from keras.src.utils import dataset_utils

IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def listing(root: str, formats: tuple[str, ...], shuffle: bool, seed: int, split: float) -> dict:
    paths, labels, names = dataset_utils.index_directory(
        root, "inferred", formats=formats, shuffle=shuffle, seed=seed
    )
    out = {"class_names": names, "all": [os.path.relpath(p, root) for p in paths]}
    out["all_labels"] = [int(v) for v in labels]
    for subset in ("training", "validation"):
        part, part_labels = dataset_utils.get_training_or_validation_split(
            paths, labels, split, subset
        )
        out[subset] = [os.path.relpath(p, root) for p in part]
        out[subset + "_labels"] = [int(v) for v in part_labels]
    return out


def main() -> None:
    # Keras prints its counts; they go to stderr so that stdout is the JSON alone
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        images = str(make_image_folder(os.path.join(tmp, "images"), classes=("Cat", "Dog", "Emu")))
        texts = str(make_text_folder(os.path.join(tmp, "texts")))
        record = {
            "images_seed1337": listing(images, IMAGE_FORMATS, True, 1337, 0.2),
            "images_unshuffled": listing(images, IMAGE_FORMATS, False, 0, 0.25),
            "texts_seed7": listing(texts, (".txt",), True, 7, 0.3),
        }
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
