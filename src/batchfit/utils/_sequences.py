"""`pad_sequences`: lists of varying length to one array, as Keras."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(
    sequences: Sequence[Any],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pad (or cut) each sequence to `maxlen`, giving an array `(len(sequences), maxlen, ...)`.

    Args:
        sequences: sequences (lists or arrays) whose items share a shape.
        maxlen: the length of the result (default: the longest sequence).
        dtype: dtype of the result.
        padding: 'pre' (pad at the start, Keras' default) or 'post'.
        truncating: cut longer sequences at the start ('pre') or the end ('post').
        value: the padding value.

    Example:
        >>> pad_sequences([[1, 2], [3]], maxlen=3)
        array([[0, 1, 2],
               [0, 0, 3]], dtype=int32)
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"padding must be 'pre' or 'post', got {padding!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}")
    arrays = [np.asarray(s) for s in sequences]
    lengths = [len(a) for a in arrays]
    if maxlen is None:
        maxlen = max(lengths, default=0)
    sample_shape = next((a.shape[1:] for a in arrays if len(a)), ())
    is_text = np.issubdtype(np.dtype(dtype), np.str_) or np.dtype(dtype) == object
    if is_text != isinstance(value, str) and not (np.dtype(dtype) == object):
        raise ValueError(
            f"pad_sequences: dtype {dtype!r} and padding value {value!r} differ in kind"
        )
    out = np.full((len(arrays), maxlen, *sample_shape), value, dtype=dtype)
    for i, a in enumerate(arrays):
        if not len(a) or maxlen == 0:
            continue
        kept = a[-maxlen:] if truncating == "pre" else a[:maxlen]
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"sequence {i} has items of shape {kept.shape[1:]}, the first non-empty one "
                f"{sample_shape}"
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, maxlen - len(kept) :] = kept
    return out
