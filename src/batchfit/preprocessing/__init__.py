"""Keras-compatible preprocessing: `image.ImageDataGenerator` and `sequence.pad_sequences`.

Keras 3 also exports its dataset utilities here (`keras.preprocessing.
timeseries_dataset_from_array`, ...): the same functions as `batchfit.utils`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from batchfit.preprocessing import image, sequence
from batchfit.preprocessing.image import ImageDataGenerator

__all__ = [
    "ImageDataGenerator",
    "image",
    "image_dataset_from_directory",
    "sequence",
    "text_dataset_from_directory",
    "timeseries_dataset_from_array",
]

_LAZY = {
    "image_dataset_from_directory": "batchfit.data._keras_folders",
    "text_dataset_from_directory": "batchfit.data._keras_folders",
    "timeseries_dataset_from_array": "batchfit.data._timeseries",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchfit.preprocessing' has no attribute {name!r}")
    return getattr(import_module(module), name)
