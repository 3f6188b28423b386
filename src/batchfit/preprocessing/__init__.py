"""Keras-compatible preprocessing: `batchfit.preprocessing.image.ImageDataGenerator`."""

from __future__ import annotations

from batchfit.preprocessing import image
from batchfit.preprocessing.image import ImageDataGenerator

__all__ = ["ImageDataGenerator", "image"]
