"""Keras-named layers on `torch.nn` (channels-last images, lazy shapes)."""

from __future__ import annotations

from batchfit.layers._base import Layer, layer_registry, register_layer
from batchfit.layers._conv import (
    AveragePooling2D,
    Conv2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from batchfit.layers._core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
from batchfit.layers._norm import BatchNormalization
from batchfit.layers._normalization import Normalization

__all__ = [
    "Activation",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "Layer",
    "MaxPooling2D",
    "Normalization",
    "Reshape",
    "layer_registry",
    "register_layer",
]
