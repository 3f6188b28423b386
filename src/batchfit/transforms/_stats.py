"""Streaming data-set statistics kept as sums, so chunks and processes merge by addition.

NOTE [ Statistics as sums ]
A `Moments` holds `count`, `sum` and `sum_sq` (and, for ZCA, `sum_outer`, the
d x d sum of outer products) of `x - shift` in float64, where `shift` is a
fixed reference value (the first chunk's mean). The shift keeps the sums small
so `sum_sq / n - mean**2` does not cancel catastrophically on data with a
large mean and a small spread; it costs nothing and `merge` converts between
shifts exactly. Two `Moments` with the same shift add element-wise, which is
what an all-reduce across ranks needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Moments", "available_memory_bytes", "for_this_rank", "merge_ranks", "zca_matrix"]


def available_memory_bytes() -> int | None:
    """Memory the OS says is available now, or None when it cannot tell."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclass
class Moments:
    """Count, sum and sum of squares (optionally outer products) of features.

    `update(x)` reduces a chunk `x` of shape `(n, d)` over its rows. The
    statistics are exact whatever the chunking (up to float64 rounding).

    Example:
        >>> m = Moments.empty(3)
        >>> m.update(np.ones((4, 3)))
        >>> m.mean
        array([1., 1., 1.])
    """

    count: int
    shift: np.ndarray
    sum: np.ndarray
    sum_sq: np.ndarray
    sum_outer: np.ndarray | None = None
    _shift_set: bool = field(default=False, repr=False)

    @classmethod
    def empty(cls, dim: int, *, outer: bool = False) -> Moments:
        """Zero statistics over `dim` features; `outer=True` also keeps the d x d sums."""
        zeros = np.zeros(dim, np.float64)
        return cls(
            count=0,
            shift=zeros.copy(),
            sum=zeros.copy(),
            sum_sq=zeros.copy(),
            sum_outer=np.zeros((dim, dim), np.float64) if outer else None,
        )

    @property
    def dim(self) -> int:
        return int(self.sum.shape[0])

    def update(self, x: Any) -> None:
        """Add the rows of `x` (shape `(n, d)`) to the sums."""
        arr = np.asarray(x)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"expected a chunk of shape (n, {self.dim}), got {arr.shape}")
        if arr.shape[0] == 0:
            return
        if not self._shift_set:
            self.shift = arr.mean(axis=0, dtype=np.float64)
            self._shift_set = True
        d = arr.astype(np.float64) - self.shift
        self.count += int(arr.shape[0])
        self.sum += d.sum(axis=0)
        self.sum_sq += np.einsum("ij,ij->j", d, d)
        if self.sum_outer is not None:
            self.sum_outer += d.T @ d

    def merge(self, other: Moments) -> Moments:
        """The statistics of both chunks together (exact, whatever their shifts)."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of {self.dim} and {other.dim} features")
        moved = other._with_shift(self.shift)
        outer = None
        if self.sum_outer is not None and moved.sum_outer is not None:
            outer = self.sum_outer + moved.sum_outer
        result = Moments(
            count=self.count + moved.count,
            shift=self.shift.copy(),
            sum=self.sum + moved.sum,
            sum_sq=self.sum_sq + moved.sum_sq,
            sum_outer=outer,
        )
        result._shift_set = self._shift_set or other._shift_set
        return result

    __add__ = merge

    def _with_shift(self, shift: np.ndarray) -> Moments:
        # sum over (x - s2) = S1 + n*delta with delta = s1 - s2; squares expand likewise.
        delta = self.shift - shift
        n = self.count
        outer = None
        if self.sum_outer is not None:
            outer = (
                self.sum_outer
                + np.outer(self.sum, delta)
                + np.outer(delta, self.sum)
                + n * np.outer(delta, delta)
            )
        return Moments(
            count=n,
            shift=np.asarray(shift, np.float64).copy(),
            sum=self.sum + n * delta,
            sum_sq=self.sum_sq + 2 * delta * self.sum + n * delta**2,
            sum_outer=outer,
        )

    def _require_data(self) -> None:
        if self.count == 0:
            raise ValueError("no samples were seen: the statistics are undefined")

    @property
    def mean(self) -> np.ndarray:
        """Per-feature mean (float64)."""
        self._require_data()
        return self.shift + self.sum / self.count

    @property
    def variance(self) -> np.ndarray:
        """Per-feature population variance (ddof=0, as NumPy's and Keras' default)."""
        self._require_data()
        centred = self.sum / self.count
        return np.maximum(self.sum_sq / self.count - centred**2, 0.0)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.variance)

    def second_moment(self, about: np.ndarray) -> np.ndarray:
        """`E[(x - about)(x - about)^T]`, the d x d matrix ZCA whitens (needs `outer=True`)."""
        self._require_data()
        if self.sum_outer is None:
            raise ValueError("these statistics were gathered without outer products")
        moved = self._with_shift(np.broadcast_to(np.asarray(about, np.float64), (self.dim,)))
        assert moved.sum_outer is not None  # internal invariant, not user input
        return moved.sum_outer / self.count

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Moments:
        """Statistics from `state_dict()` output."""
        outer = state.get("sum_outer")
        moments = cls(
            count=int(state["count"]),
            shift=np.asarray(state["shift"], np.float64),
            sum=np.asarray(state["sum"], np.float64),
            sum_sq=np.asarray(state["sum_sq"], np.float64),
            sum_outer=None if outer is None else np.asarray(outer, np.float64),
        )
        moments._shift_set = moments.count > 0
        return moments

    def state_dict(self) -> dict[str, Any]:
        """The sums as arrays (what a checkpoint or an all-reduce carries)."""
        state: dict[str, Any] = {
            "count": self.count,
            "shift": self.shift,
            "sum": self.sum,
            "sum_sq": self.sum_sq,
        }
        if self.sum_outer is not None:
            state["sum_outer"] = self.sum_outer
        return state


def zca_matrix(second_moment: np.ndarray, epsilon: float) -> np.ndarray:
    """The symmetric ZCA whitening matrix `U diag(1/sqrt(s + eps)) U^T` of a second moment.

    Whitened data `x @ W` then has second moment close to the identity.
    """
    eigenvalues, vectors = np.linalg.eigh(second_moment)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(eigenvalues, 0.0) + epsilon)
    return (vectors * inv_sqrt) @ vectors.T


def for_this_rank(data: Any) -> tuple[Any, bool]:
    """Under torchrun, this rank's part of `data`, and whether it was split.

    Arrays are split by rows (`rank::world_size`), batch sources by their
    `shard`; other iterables cannot be split, so every rank reads them whole.
    """
    from batchfit import distributed
    from batchfit.data import Source, shard_for_ranks

    if not distributed.is_distributed():
        return data, False
    if isinstance(data, Source):
        shard = shard_for_ranks(data)
        return shard, shard is not data
    if hasattr(data, "shape") and hasattr(data, "__getitem__"):
        return data[distributed.rank() :: distributed.world_size()], True
    return data, False


def merge_ranks(moments: Moments | None) -> Moments | None:
    """Every rank's statistics merged, in rank order: the same result on every rank."""
    from batchfit import distributed

    parts = distributed.gather_objects(None if moments is None else moments.state_dict())
    merged: Moments | None = None
    for part in parts:
        if part is None:
            continue
        m = Moments.from_state_dict(part)
        merged = m if merged is None else merged.merge(m)
    return merged
