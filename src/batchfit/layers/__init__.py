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

# isort: split
# vision, activation and structural layers (issue 13)
from batchfit.layers._activations_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from batchfit.layers._augment_layers import (
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from batchfit.layers._conv_depthwise import DepthwiseConv2D, SeparableConv2D
from batchfit.layers._conv_extra import Conv1D, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from batchfit.layers._image_layers import CenterCrop, Rescaling, Resizing
from batchfit.layers._reshaping import (
    AveragePooling1D,
    Cropping1D,
    Cropping2D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
    UpSampling1D,
    UpSampling2D,
    ZeroPadding1D,
    ZeroPadding2D,
)
from batchfit.layers._reshaping3d import Cropping3D, UpSampling3D, ZeroPadding3D
from batchfit.layers._structural import (
    ActivityRegularization,
    GaussianDropout,
    GaussianNoise,
    Identity,
    Lambda,
    Permute,
    RepeatVector,
    SpatialDropout1D,
    SpatialDropout2D,
)

# isort: split
# volumes, group normalization, Dot (issue 13)
from batchfit.layers._conv3d import (
    AveragePooling3D,
    Conv3D,
    GlobalAveragePooling3D,
    GlobalMaxPooling3D,
    MaxPooling3D,
)
from batchfit.layers._group_norm import GroupNormalization
from batchfit.layers._merge import Dot, dot

# isort: split
# preprocessing layers (issue 14)
from batchfit.layers._discretization import Discretization
from batchfit.layers._encoding import CategoryEncoding, Hashing
from batchfit.layers._lookup import IntegerLookup, StringLookup

Convolution1D = Conv1D  # Keras 2 aliases
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
Convolution3D = Conv3D

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
    # vision, activation and structural layers (issue 13)
    "AveragePooling1D",
    "CenterCrop",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "ActivityRegularization",
    "Convolution1D",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "DepthwiseConv2D",
    "ELU",
    "GaussianDropout",
    "GaussianNoise",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "Identity",
    "Lambda",
    "LeakyReLU",
    "MaxPooling1D",
    "PReLU",
    "Permute",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "RepeatVector",
    "Rescaling",
    "Resizing",
    "SeparableConv2D",
    "Softmax",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
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
    # volumes, group normalization, Dot (issue 13)
    "AveragePooling3D",
    "Conv3D",
    "Convolution3D",
    "Dot",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling3D",
    "GroupNormalization",
    "MaxPooling3D",
    "dot",
    # preprocessing layers (issue 14)
    "CategoryEncoding",
    "Discretization",
    "Hashing",
    "IntegerLookup",
    "StringLookup",
]
