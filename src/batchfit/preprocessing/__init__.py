"""Keras-compatible preprocessing: `image.ImageDataGenerator` and `sequence.pad_sequences`."""

from __future__ import annotations

from batchfit.preprocessing import image, sequence
from batchfit.preprocessing.image import ImageDataGenerator

__all__ = ["ImageDataGenerator", "image", "sequence"]
