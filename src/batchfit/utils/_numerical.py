"""`to_categorical`, `normalize` and `set_random_seed`, with Keras' exact behaviour."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

__all__ = ["normalize", "set_random_seed", "to_categorical"]


def to_categorical(x: Any, num_classes: int | None = None) -> Any:
    """One-hot encode class indices; the class axis comes last.

    As Keras: a trailing axis of size 1 is replaced by the class axis, the
    number of classes defaults to `max(x) + 1`, and NumPy input gives a float64
    array (a torch tensor gives a float32 tensor).

    Args:
        x: integer class indices, any shape.
        num_classes: number of classes (default: `max(x) + 1`).

    Returns:
        An array of shape `x.shape + (num_classes,)` (or `x.shape[:-1] + ...`).

    Raises:
        ValueError: an index is negative or not below `num_classes`.

    Example:
        >>> to_categorical([0, 2], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.]])
    """
    if type(x).__module__.startswith("torch"):
        import torch

        return torch.nn.functional.one_hot(x.long(), num_classes or -1).float()
    labels = np.asarray(x)
    if labels.size and not np.all(np.equal(np.mod(labels, 1), 0)):
        raise ValueError("to_categorical takes integer class indices; got non-integer values")
    labels = labels.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    classes = int(num_classes) if num_classes else int(flat.max()) + 1 if flat.size else 0
    if flat.size and (flat.min() < 0 or flat.max() >= classes):
        raise ValueError(
            f"to_categorical: class indices must be in [0, {classes}), got values from "
            f"{flat.min()} to {flat.max()}"
        )
    out = np.zeros((flat.size, classes))
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape((*shape, classes))


def normalize(x: Any, axis: int = -1, order: int = 2) -> Any:
    """`x` divided by its `order`-norm along `axis` (zero vectors stay zero)."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch.nn.functional.normalize(x, p=order, dim=axis, eps=0.0).nan_to_num(0.0)
    arr = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(arr, order, axis))
    norm[norm == 0] = 1
    return arr / np.expand_dims(norm, axis)


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (as Keras does for its backends)."""
    if not isinstance(seed, int):
        raise ValueError(f"set_random_seed takes an integer, got {seed!r}")
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
