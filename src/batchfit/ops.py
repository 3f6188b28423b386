"""Keras' `keras.ops`: the common subset, as thin calls of torch functions.

Inputs may be tensors, NumPy arrays or Python numbers (converted with
`convert_to_tensor`); results are torch tensors. `axis` follows Keras (None
reduces over everything). Called on symbolic tensors (`keras.Input` and what
layers make of it), an operation becomes a node of the functional graph
(`layers/_ops_layer.py`), as in Keras.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "abs", "add", "all", "any", "arange", "argmax", "argmin", "binary_crossentropy", "cast",
    "categorical_crossentropy", "clip", "concatenate", "convert_to_numpy", "convert_to_tensor",
    "divide", "dot", "equal", "exp", "expand_dims", "full", "gelu", "greater", "greater_equal",
    "less", "less_equal", "log", "log1p", "log_softmax", "logical_and", "logical_not",
    "logical_or", "matmul", "max", "maximum", "mean", "min", "minimum", "multiply", "negative",
    "not_equal", "one_hot", "ones", "ones_like", "power", "relu", "reshape", "round", "shape",
    "sigmoid", "sign", "softmax", "sparse_categorical_crossentropy", "sqrt", "square", "squeeze",
    "stack", "std", "subtract", "sum", "tanh", "transpose", "var", "where", "zeros", "zeros_like",
]  # fmt: skip

Axis = int | Sequence[int] | None


def _dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None:
        return None
    from batchfit.layers._input import as_dtype

    return as_dtype(dtype)


def convert_to_tensor(x: Any, dtype: Any = None) -> torch.Tensor:
    """A torch tensor from a tensor, array or number (Python floats become float32)."""
    wanted = _dtype(dtype)
    if isinstance(x, torch.Tensor):
        return x if wanted is None or x.dtype == wanted else x.to(wanted)
    if isinstance(x, float) and wanted is None:
        wanted = torch.float32
    if isinstance(x, (list, tuple)) and wanted is None:
        arr = np.asarray(x)
        if arr.dtype == np.float64:
            wanted = torch.float32  # as Keras: Python floats are floatx
        return torch.as_tensor(arr, dtype=wanted)
    return torch.as_tensor(x, dtype=wanted)


def convert_to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (copied off the device, detached from the graph)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


_t = convert_to_tensor


def _dims(axis: Axis) -> Any:
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def cast(x: Any, dtype: Any) -> torch.Tensor:
    return _t(x).to(_dtype(dtype))


def shape(x: Any) -> tuple[int, ...]:
    return tuple(_t(x).shape) if not hasattr(x, "shape") else tuple(x.shape)


# -- creation --------------------------------------------------------------------------
def ones(shape: Sequence[int], dtype: Any = None) -> torch.Tensor:
    return torch.ones(tuple(shape), dtype=_dtype(dtype) or torch.float32)


def zeros(shape: Sequence[int], dtype: Any = None) -> torch.Tensor:
    return torch.zeros(tuple(shape), dtype=_dtype(dtype) or torch.float32)


def full(shape: Sequence[int], fill_value: float, dtype: Any = None) -> torch.Tensor:
    return torch.full(tuple(shape), fill_value, dtype=_dtype(dtype) or torch.float32)


def ones_like(x: Any, dtype: Any = None) -> torch.Tensor:
    return torch.ones_like(_t(x), dtype=_dtype(dtype))


def zeros_like(x: Any, dtype: Any = None) -> torch.Tensor:
    return torch.zeros_like(_t(x), dtype=_dtype(dtype))


def arange(
    start: float, stop: float | None = None, step: float = 1, dtype: Any = None
) -> torch.Tensor:
    if stop is None:
        start, stop = 0, start
    return torch.arange(start, stop, step, dtype=_dtype(dtype))


# -- arithmetic ----------------------------------------------------------------------
def add(x1: Any, x2: Any) -> torch.Tensor:
    return torch.add(_t(x1), _t(x2))


def subtract(x1: Any, x2: Any) -> torch.Tensor:
    return torch.subtract(_t(x1), _t(x2))


def multiply(x1: Any, x2: Any) -> torch.Tensor:
    return torch.multiply(_t(x1), _t(x2))


def divide(x1: Any, x2: Any) -> torch.Tensor:
    return torch.true_divide(_t(x1), _t(x2))


def power(x1: Any, x2: Any) -> torch.Tensor:
    return torch.pow(_t(x1), _t(x2))


def negative(x: Any) -> torch.Tensor:
    return torch.negative(_t(x))


def abs(x: Any) -> torch.Tensor:
    return torch.abs(_t(x))


def sign(x: Any) -> torch.Tensor:
    return torch.sign(_t(x))


def square(x: Any) -> torch.Tensor:
    return torch.square(_t(x))


def sqrt(x: Any) -> torch.Tensor:
    t = _t(x)
    return torch.sqrt(t if t.is_floating_point() else t.float())


def exp(x: Any) -> torch.Tensor:
    return torch.exp(_t(x))


def log(x: Any) -> torch.Tensor:
    return torch.log(_t(x))


def log1p(x: Any) -> torch.Tensor:
    return torch.log1p(_t(x))


def round(x: Any, decimals: int = 0) -> torch.Tensor:
    return torch.round(_t(x), decimals=decimals)


def clip(x: Any, x_min: float, x_max: float) -> torch.Tensor:
    return torch.clamp(_t(x), x_min, x_max)


def maximum(x1: Any, x2: Any) -> torch.Tensor:
    return torch.maximum(_t(x1), _t(x2))


def minimum(x1: Any, x2: Any) -> torch.Tensor:
    return torch.minimum(_t(x1), _t(x2))


def matmul(x1: Any, x2: Any) -> torch.Tensor:
    return torch.matmul(_t(x1), _t(x2))


def dot(x1: Any, x2: Any) -> torch.Tensor:
    a, b = _t(x1), _t(x2)
    return a * b if a.dim() == 0 or b.dim() == 0 else torch.matmul(a, b)


# -- reductions ----------------------------------------------------------------------
def _reduce(fn: Any, x: Any, axis: Axis, keepdims: bool) -> torch.Tensor:
    t = _t(x)
    if axis is None:
        out = fn(t)
        return out.reshape((1,) * t.dim()) if keepdims else out
    return fn(t, dim=_dims(axis), keepdim=keepdims)


def _float(x: Any) -> torch.Tensor:
    t = _t(x)
    return t if t.is_floating_point() else t.float()


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.sum, x, axis, keepdims)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.mean, _float(x), axis, keepdims)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.amax, x, axis, keepdims)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.amin, x, axis, keepdims)


def var(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    t = _float(x)
    if axis is None:
        out = t.var(unbiased=False)
        return out.reshape((1,) * t.dim()) if keepdims else out
    return t.var(dim=_dims(axis), unbiased=False, keepdim=keepdims)  # Keras: population variance


def std(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return torch.sqrt(var(x, axis, keepdims))


def all(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.all, _t(x).bool(), axis, keepdims)


def any(x: Any, axis: Axis = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.any, _t(x).bool(), axis, keepdims)


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    return torch.argmax(_t(x), dim=axis, keepdim=keepdims and axis is not None).to(torch.int32)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> torch.Tensor:
    return torch.argmin(_t(x), dim=axis, keepdim=keepdims and axis is not None).to(torch.int32)


# -- comparisons ---------------------------------------------------------------------
def equal(x1: Any, x2: Any) -> torch.Tensor:
    return torch.eq(_t(x1), _t(x2))


def not_equal(x1: Any, x2: Any) -> torch.Tensor:
    return torch.ne(_t(x1), _t(x2))


def greater(x1: Any, x2: Any) -> torch.Tensor:
    return torch.gt(_t(x1), _t(x2))


def greater_equal(x1: Any, x2: Any) -> torch.Tensor:
    return torch.ge(_t(x1), _t(x2))


def less(x1: Any, x2: Any) -> torch.Tensor:
    return torch.lt(_t(x1), _t(x2))


def less_equal(x1: Any, x2: Any) -> torch.Tensor:
    return torch.le(_t(x1), _t(x2))


def logical_and(x1: Any, x2: Any) -> torch.Tensor:
    return torch.logical_and(_t(x1), _t(x2))


def logical_or(x1: Any, x2: Any) -> torch.Tensor:
    return torch.logical_or(_t(x1), _t(x2))


def logical_not(x: Any) -> torch.Tensor:
    return torch.logical_not(_t(x))


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """`x1` where `condition` holds, else `x2`; with only `condition`, the indices (a tuple)."""
    if x1 is None and x2 is None:
        return torch.where(_t(condition))
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither")
    return torch.where(_t(condition).bool(), _t(x1), _t(x2))


# -- shapes --------------------------------------------------------------------------
def reshape(x: Any, newshape: Sequence[int] | int) -> torch.Tensor:
    return torch.reshape(_t(x), (newshape,) if isinstance(newshape, int) else tuple(newshape))


def transpose(x: Any, axes: Sequence[int] | None = None) -> torch.Tensor:
    t = _t(x)
    return t.permute(*(reversed(range(t.dim())) if axes is None else axes))


def expand_dims(x: Any, axis: int) -> torch.Tensor:
    return torch.unsqueeze(_t(x), axis)


def squeeze(x: Any, axis: Axis = None) -> torch.Tensor:
    t = _t(x)
    return torch.squeeze(t) if axis is None else torch.squeeze(t, _dims(axis))


def concatenate(xs: Sequence[Any], axis: int = 0) -> torch.Tensor:
    return torch.cat([_t(x) for x in xs], dim=axis)


def stack(x: Sequence[Any], axis: int = 0) -> torch.Tensor:
    return torch.stack([_t(v) for v in x], dim=axis)


# -- neural network ------------------------------------------------------------------
def relu(x: Any) -> torch.Tensor:
    return torch.relu(_t(x))


def sigmoid(x: Any) -> torch.Tensor:
    return torch.sigmoid(_t(x))


def tanh(x: Any) -> torch.Tensor:
    return torch.tanh(_t(x))


def gelu(x: Any, approximate: bool = True) -> torch.Tensor:
    return F.gelu(_t(x), approximate="tanh" if approximate else "none")


def softmax(x: Any, axis: int = -1) -> torch.Tensor:
    return torch.softmax(_t(x), dim=axis)


def log_softmax(x: Any, axis: int = -1) -> torch.Tensor:
    return torch.log_softmax(_t(x), dim=axis)


def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None) -> torch.Tensor:
    out = F.one_hot(_t(x).long(), num_classes).to(_dtype(dtype) or torch.float32)
    return out if axis == -1 else out.movedim(-1, axis)


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> torch.Tensor:
    """Element-wise binary cross-entropy (probabilities clipped to [1e-7, 1 - 1e-7], as Keras)."""
    y, p = _float(target), _float(output)
    if from_logits:
        return F.binary_cross_entropy_with_logits(p, y, reduction="none")
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> torch.Tensor:
    """Cross-entropy per sample from one-hot targets (probabilities renormalised and clipped)."""
    y, p = _float(target), _float(output)
    if from_logits:
        log_p = torch.log_softmax(p, dim=axis)
    else:
        p = p / p.sum(dim=axis, keepdim=True)
        log_p = torch.log(p.clamp(1e-7, 1 - 1e-7))
    return -(y * log_p).sum(dim=axis)


def sparse_categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> torch.Tensor:
    """Cross-entropy per sample from integer class targets."""
    p = _float(output)
    classes = p.shape[axis]
    return categorical_crossentropy(one_hot(target, classes, axis=axis), p, from_logits, axis)


def _records_on_symbols(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as is on tensors; on symbolic tensors, a node of the functional graph."""

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        if _any_symbolic(args) or (kwargs and _any_symbolic(tuple(kwargs.values()))):
            from batchfit.layers._ops_layer import OpLayer
            from batchfit.layers._symbolic import call_symbolic

            return call_symbolic(OpLayer(fn.__name__), args, kwargs)
        return fn(*args, **kwargs)

    return op


def _any_symbolic(values: tuple[Any, ...]) -> bool:
    from batchfit.layers._symbolic import is_symbolic

    # `any` here is keras.ops.any: the builtin is spelled out
    return builtins.any(
        is_symbolic(v) for v in values if not isinstance(v, (torch.Tensor, int, float))
    )


for _name in __all__:
    globals()[_name] = _records_on_symbols(globals()[_name])
del _name
