"""Keras' `keras.utils`: `to_categorical`, `normalize`, `pad_sequences`, `Progbar`, ...

Light to import: torch loads only when `set_random_seed` runs, PIL when an image helper does.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from batchfit._progress import Progbar
from batchfit.utils import np_utils
from batchfit.utils._files import get_file
from batchfit.utils._image import array_to_img, img_to_array, load_img, save_img
from batchfit.utils._numerical import normalize, set_random_seed, to_categorical
from batchfit.utils._plot import plot_model
from batchfit.utils._sequences import pad_sequences

__all__ = [
    "PyDataset",
    "Sequence",
    "Progbar",
    "array_to_img",
    "get_file",
    "image_dataset_from_directory",
    "img_to_array",
    "load_img",
    "normalize",
    "np_utils",
    "pad_sequences",
    "plot_model",
    "save_img",
    "set_random_seed",
    "split_dataset",
    "text_dataset_from_directory",
    "timeseries_dataset_from_array",
    "to_categorical",
]

# Keras' dataset utilities are batchfit sources (batchfit.data); they load on first use.
_LAZY = {
    "PyDataset": "batchfit.data._pydataset",
    "Sequence": "batchfit.data._pydataset",
    "image_dataset_from_directory": "batchfit.data._keras_folders",
    "text_dataset_from_directory": "batchfit.data._keras_folders",
    "timeseries_dataset_from_array": "batchfit.data._timeseries",
    "split_dataset": "batchfit.data._split",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchfit.utils' has no attribute {name!r}")
    return getattr(import_module(module), name)
