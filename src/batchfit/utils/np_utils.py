"""Keras 2's `keras.utils.np_utils` spelling (`np_utils.to_categorical`), kept for old programs."""

from __future__ import annotations

from batchfit.utils._numerical import normalize, to_categorical

__all__ = ["normalize", "to_categorical"]
