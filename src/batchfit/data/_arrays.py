"""In-memory arrays as a source: what `fit(x, y)` uses under the hood."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from batchfit.data._base import Batch
from batchfit.data._indexed import IndexedSource, check_batch_size
from batchfit.data._order import epoch_permutation

__all__ = ["ArraySource", "arrays", "epoch_permutation", "to_array"]


def to_array(a: Any, what: str) -> Any:
    """NumPy or torch data ready to index; pandas frames become arrays.

    float64 NumPy data becomes float32 once here rather than at every batch.
    Object or string arrays are refused: training on them would be garbage.
    """
    if a is None:
        return None
    if isinstance(a, Mapping):
        return {k: to_array(v, f"{what}[{k!r}]") for k, v in a.items()}
    if isinstance(a, (list, tuple)) and a and _nested_arrays(a):
        return type(a)(to_array(v, f"{what}[{i}]") for i, v in enumerate(a))
    if hasattr(a, "to_numpy") and not isinstance(a, np.ndarray) and hasattr(a, "columns"):
        cols = [str(c) for c in a.columns]
        bad = [
            c for c, t in zip(cols, a.dtypes, strict=True) if getattr(t, "kind", "O") not in "biuf"
        ]
        if bad:
            raise TypeError(
                f"{what}: non-numeric column(s) {bad} (dtypes {list(map(str, a.dtypes))})"
            )
        a = a.to_numpy()
    elif hasattr(a, "to_numpy") and not isinstance(a, np.ndarray) and not _is_torch(a):
        a = a.to_numpy()
    if _is_torch(a):
        return a
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} must hold numbers, got an array of dtype {arr.dtype}"
            + (
                " (strings or mixed objects; encode strings before the model, e.g. with "
                "StringLookup(output_mode='one_hot') applied to the data)"
                if arr.dtype.kind in "OUS"
                else ""
            )
        )
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a batch dimension, got a scalar")
    if arr.dtype == np.float64 or arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    return arr


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch") and hasattr(a, "dim")


def _length(a: Any) -> int:
    if isinstance(a, Mapping):
        lengths = {k: _length(v) for k, v in a.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"inputs of a dict must have the same length, got {lengths}")
        return next(iter(lengths.values()))
    if isinstance(a, (list, tuple)):
        return _length(a[0])
    return int(a.shape[0])


def _take(a: Any, index: Any) -> Any:
    if a is None:
        return None
    if isinstance(a, Mapping):
        return {k: _take(v, index) for k, v in a.items()}
    if isinstance(a, (list, tuple)):
        return type(a)(_take(v, index) for v in a)
    return a[index]


class ArraySource(IndexedSource):
    """Batches over arrays held in memory, optionally shuffled each epoch.

    An `IndexedSource` (NOTE [ Indexed sources ]): the order is
    `epoch_permutation(n, seed, epoch)` when shuffling, else the natural
    order (batches are then views); a shard takes every `world_size`-th
    position of that order.
    """

    rows_as_slices = True

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        *,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        drop_remainder: bool = False,
    ) -> None:
        check_batch_size(batch_size)
        if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]) and _nested_arrays(x):
            x = type(x)(to_array(v, f"x[{i}]") for i, v in enumerate(x))
        else:
            x = to_array(x, "x")
        y = to_array(y, "y")
        sample_weight = to_array(sample_weight, "sample_weight")
        n = _length(x)
        for name, arr in (("y", y), ("sample_weight", sample_weight)):
            if arr is not None and _length(arr) != n:
                raise ValueError(
                    f"x and {name} must have the same number of samples, "
                    f"got {n} in x and {_length(arr)} in {name}"
                )
        if n == 0:
            raise ValueError("x is empty: there are no samples to iterate over")
        if seed is None and not shuffle:
            seed = 0  # no draw: the order does not depend on it, and there is no transform
        super().__init__(
            n, batch_size=batch_size, shuffle=shuffle, seed=seed, drop_remainder=drop_remainder
        )
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self._parts = [p for p in (y, sample_weight) if p is not None]
        if sample_weight is not None and y is None:
            self._parts = [None, sample_weight]  # (x, None, w): the weights keep their place

    def fingerprint(self) -> dict[str, Any]:
        from batchfit.data._fingerprint import array_fingerprint

        return array_fingerprint([self.x, self.y, self.sample_weight])

    def load(self, rows: slice | np.ndarray) -> Batch:
        return tuple(_take(p, rows) for p in (self.x, *self._parts))


def _nested_arrays(x: Sequence[Any]) -> bool:
    """A list of arrays (several inputs or outputs), not a list of rows or numbers."""
    return all(len(getattr(v, "shape", ())) >= 1 for v in x)


def arrays(x: Any, y: Any = None, sample_weight: Any = None, **options: Any) -> ArraySource:
    """Batches of in-memory NumPy/torch/pandas data.

    Args:
        x: features (array, tensor, DataFrame, or a dict/tuple of them).
        y: targets, or None.
        sample_weight: one weight per sample, or None.
        **options: `ArraySource`'s keywords: `batch_size` (32; the last batch
            may be smaller), `shuffle` (False; reshuffle every epoch, the order
            from `seed` and the epoch), `seed` (drawn once from torch's global
            generator when None, so `torch.manual_seed` makes the run
            reproducible), `drop_remainder` (False: keep the last partial batch).

    Example:
        >>> src = arrays(np.zeros((10, 3)), np.ones(10), batch_size=4)
        >>> [b[0].shape[0] for b in src]
        [4, 4, 2]
    """
    return ArraySource(x, y, sample_weight, **options)
