"""Keras' `keras.utils`: `to_categorical`, `normalize`, `pad_sequences`, `Progbar`, ...

Light to import: torch loads only when `set_random_seed` runs.
"""

from __future__ import annotations

from batchfit.utils._numerical import normalize, set_random_seed, to_categorical
from batchfit.utils._progbar import Progbar
from batchfit.utils._sequences import pad_sequences

__all__ = ["Progbar", "normalize", "pad_sequences", "set_random_seed", "to_categorical"]
