"""Keras' `keras.preprocessing.sequence` path: `pad_sequences` (as `keras.utils.pad_sequences`)."""

from __future__ import annotations

from batchfit.utils._sequences import pad_sequences

__all__ = ["pad_sequences"]
