"""`keras.Input`: the symbolic entry point of a functional model.

See NOTE [ Recording a functional graph ] in `layers/_symbolic.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from batchfit.layers._core import InputLayer
from batchfit.layers._symbolic import STAND_IN_SIZES, KerasTensor, Node, inbound_nodes

__all__ = ["Input", "as_dtype"]


def as_dtype(dtype: Any) -> torch.dtype:
    """A torch dtype from a Keras/NumPy name, a NumPy dtype or a torch dtype (None: float32)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use e.g. 'float32', 'int64' or 'bool'")
    return value


def Input(
    shape: Sequence[int | None] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Sequence[int | None] | None = None,
    name: str | None = None,
    tensor: Any = None,
    optional: bool = False,
) -> KerasTensor:
    """Keras' `Input`: a symbolic tensor that starts a functional model (or a `Sequential`).

    Args:
        shape: shape of one sample, without the batch dimension; `None` for an unknown size.
        batch_size: a fixed batch size (shown in shapes; any batch size runs).
        dtype: dtype of the data ('float32' default; 'int64' for token ids).
        sparse, tensor, optional: Keras arguments batchfit does not support (must be unset).
        batch_shape: shape with the batch dimension, instead of `shape` and `batch_size`.
        name: name of the input (the key of this input when `x` is a dict).

    Returns:
        A `KerasTensor`; call layers on it, then `keras.Model(inputs, outputs)`.

    Example:
        >>> inputs = Input(shape=(28, 28, 1))
        >>> x = Conv2D(32, 3, activation="relu")(inputs)
    """
    if sparse or tensor is not None or optional:
        raise ValueError("Input: sparse, tensor and optional inputs are not supported by batchfit")
    if batch_shape is not None:
        if shape is not None:
            raise ValueError("Input: give shape or batch_shape, not both")
        batch_size, shape = batch_shape[0], tuple(batch_shape[1:])
    if shape is None:
        raise ValueError("Input needs a shape, e.g. Input(shape=(32,))")
    if isinstance(shape, int):
        shape = (shape,)
    sample_shape = tuple(None if d is None else int(d) for d in shape)
    torch_dtype = as_dtype(dtype)
    layer = InputLayer(shape=sample_shape, name=name)
    layer.__dict__["dtype_"] = torch_dtype  # a plain attribute (not a torch parameter)
    stand_ins = STAND_IN_SIZES if None in sample_shape else STAND_IN_SIZES[:1]
    examples = tuple(
        torch.zeros((1, *(size if d is None else d for d in sample_shape)), dtype=torch_dtype)
        for size in stand_ins
    )
    tensor_out = KerasTensor((batch_size, *sample_shape), torch_dtype, layer.name, examples)
    tensor_out._keras_history = (layer, 0, 0)
    inbound_nodes(layer).append(Node(layer, (), {}, tensor_out))
    return tensor_out
