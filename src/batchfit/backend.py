"""Keras' `keras.backend` (and `from tensorflow.keras import backend as K`): the common calls.

Example:
    >>> from batchfit import backend as K
    >>> K.clear_session()
    >>> K.image_data_format()
    'channels_last'
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import torch

from batchfit.config import (
    backend,
    epsilon,
    floatx,
    image_data_format,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)

__all__ = [
    "backend",
    "clear_session",
    "count_params",
    "epsilon",
    "floatx",
    "get_value",
    "image_data_format",
    "int_shape",
    "is_keras_tensor",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_value",
]


def clear_session() -> None:
    """Forget layer names (the next `Dense` is `dense` again) and collect garbage, as Keras."""
    from batchfit.layers._base import _name_counts

    _name_counts.clear()
    gc.collect()


def get_value(x: Any) -> Any:
    """The value of a tensor as NumPy (a Python number stays a number)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, (int, float, np.ndarray, np.generic)):
        return x
    raise TypeError(f"get_value takes a tensor or a number, got {type(x).__name__}")


def set_value(x: torch.Tensor, value: Any) -> None:
    """Write `value` into the tensor `x` in place (e.g. a weight).

    A Python number (such as `model.optimizer.learning_rate`) cannot be changed
    in place: assign `model.optimizer.learning_rate = value` instead.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"set_value writes into a tensor, got {type(x).__name__}; for the learning rate "
            "assign model.optimizer.learning_rate = value"
        )
    with torch.no_grad():
        x.copy_(torch.as_tensor(np.asarray(value), dtype=x.dtype))


def int_shape(x: Any) -> tuple[int | None, ...]:
    """The shape as a tuple (a symbolic tensor's batch dimension is `None`)."""
    return tuple(x.shape)


def is_keras_tensor(x: Any) -> bool:
    """Whether `x` is a symbolic tensor of a functional model (from `keras.Input`)."""
    from batchfit.layers._symbolic import KerasTensor

    return isinstance(x, KerasTensor)


def count_params(x: Any) -> int:
    """The number of values in a tensor."""
    return int(np.prod(tuple(x.shape)))
