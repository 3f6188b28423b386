"""Keras' `keras.utils`: `to_categorical`, `normalize`, `pad_sequences`, `Progbar`, ...

Light to import: torch loads only when `set_random_seed` runs, PIL when an image helper does.
"""

from __future__ import annotations

from batchfit._progress import Progbar
from batchfit.utils import np_utils
from batchfit.utils._files import get_file
from batchfit.utils._image import array_to_img, img_to_array, load_img, save_img
from batchfit.utils._numerical import normalize, set_random_seed, to_categorical
from batchfit.utils._plot import plot_model
from batchfit.utils._sequences import pad_sequences

__all__ = [
    "Progbar",
    "array_to_img",
    "get_file",
    "img_to_array",
    "load_img",
    "normalize",
    "np_utils",
    "pad_sequences",
    "plot_model",
    "save_img",
    "set_random_seed",
    "to_categorical",
]
