"""In-memory arrays as a source: what `fit(x, y)` uses under the hood."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from batchfit.data._base import Batch, Source, draw_seed

__all__ = ["ArraySource", "arrays", "epoch_permutation", "to_array"]


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of `n` samples in `epoch`: a pure function of its arguments."""
    return np.random.default_rng((int(seed), int(epoch))).permutation(n)


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
            + (" (strings or mixed objects)" if arr.dtype.kind in "OUS" else "")
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


class ArraySource(Source):
    """Batches over arrays held in memory, optionally shuffled each epoch.

    Order is `epoch_permutation(n, seed, epoch)` when shuffling, else the
    natural order; a shard takes every `world_size`-th position of that order.
    """

    batch_size: int

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
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]) and _nested_arrays(x):
            self.x: Any = type(x)(to_array(v, f"x[{i}]") for i, v in enumerate(x))
        else:
            self.x = to_array(x, "x")
        self.y = to_array(y, "y")
        self.sample_weight = to_array(sample_weight, "sample_weight")
        n = _length(self.x)
        for name, arr in (("y", self.y), ("sample_weight", self.sample_weight)):
            if arr is not None and _length(arr) != n:
                raise ValueError(
                    f"x and {name} must have the same number of samples, "
                    f"got {n} in x and {_length(arr)} in {name}"
                )
        if n == 0:
            raise ValueError("x is empty: there are no samples to iterate over")
        self.n = n
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        if seed is None:
            seed = draw_seed() if shuffle else 0
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size = int(rank), int(world_size)

    def _rows(self) -> int:
        total = self.n // self.world_size
        return total + (1 if self.rank < self.n % self.world_size else 0)

    def _num_batches(self) -> int:
        rows = self._rows()
        return rows // self.batch_size if self.drop_remainder else -(-rows // self.batch_size)

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        bs = self.batch_size
        order: np.ndarray | None = None
        if self.shuffle:
            order = epoch_permutation(self.n, self.seed, epoch)
        if self.world_size > 1:
            base = order if order is not None else np.arange(self.n)
            order = base[self.rank :: self.world_size]
        parts = (
            [self.x, self.y] if self.sample_weight is None else [self.x, self.y, self.sample_weight]
        )
        if self.y is None and self.sample_weight is None:
            parts = [self.x]
        rows = self._rows()
        for b in range(skip_batches, self._num_batches()):
            start, stop = b * bs, min((b + 1) * bs, rows)
            index: Any = slice(start, stop) if order is None else order[start:stop]
            yield tuple(_take(p, index) for p in parts)

    def _extra_state(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seed = int(state.get("seed", self.seed))

    def shard(self, rank: int, world_size: int) -> ArraySource:
        return ArraySource(
            self.x,
            self.y,
            self.sample_weight,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_remainder=self.drop_remainder,
            rank=rank,
            world_size=world_size,
        )


def _nested_arrays(x: Sequence[Any]) -> bool:
    """A list of arrays (several inputs or outputs), not a list of rows or numbers."""
    return all(len(getattr(v, "shape", ())) >= 1 for v in x)


def arrays(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> ArraySource:
    """Batches of in-memory NumPy/torch/pandas data.

    Args:
        x: features (array, tensor, DataFrame, or a dict/tuple of them).
        y: targets, or None.
        sample_weight: one weight per sample, or None.
        batch_size: rows per batch; the last batch may be smaller.
        shuffle: reshuffle every epoch (order from `seed` and the epoch).
        seed: shuffle seed; drawn once from torch's global generator when None,
            so `torch.manual_seed` makes the run reproducible.
        drop_remainder: drop the last partial batch.

    Example:
        >>> src = arrays(np.zeros((10, 3)), np.ones(10), batch_size=4)
        >>> [b[0].shape[0] for b in src]
        [4, 4, 2]
    """
    return ArraySource(
        x,
        y,
        sample_weight,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
    )
