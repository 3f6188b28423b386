"""Keras-named layers on `torch.nn` (channels-last images, lazy shapes)."""

from __future__ import annotations

from batchfit.layers._attention import Attention, MultiHeadAttention
from batchfit.layers._base import Layer, layer_registry, register_layer
from batchfit.layers._conv import (
    AveragePooling2D,
    Conv2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    MaxPooling2D,
)
from batchfit.layers._core import Activation, Dense, Dropout, Flatten, InputLayer, Reshape
from batchfit.layers._embedding import Embedding, Masking
from batchfit.layers._input import Input
from batchfit.layers._layer_norm import LayerNormalization
from batchfit.layers._merge import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from batchfit.layers._norm import BatchNormalization
from batchfit.layers._normalization import Normalization
from batchfit.layers._recurrent import GRU, LSTM, SimpleRNN
from batchfit.layers._symbolic import KerasTensor
from batchfit.layers._wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Normalization",
    "Reshape",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "layer_registry",
    "maximum",
    "minimum",
    "multiply",
    "register_layer",
    "subtract",
    # sequence layers
    "Attention",
    "Bidirectional",
    "Embedding",
    "GRU",
    "LSTM",
    "LayerNormalization",
    "Masking",
    "MultiHeadAttention",
    "SimpleRNN",
    "TimeDistributed",
]
