"""`npy(...)`: batches from `.npy` files through memory maps.

Only the block being read is in memory; the page cache does the rest. Rows
are known from the headers, so `len()` is exact and a shard is a contiguous
row range cut into units of `block_rows` (NOTE [ Order and sharding ]).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._nodes import Chunk
from batchfit.data._options import NpyOptions
from batchfit.data._order import shard_rows
from batchfit.data._stream import StreamSource

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["NpySource", "npy"]


def _open(path: str | os.PathLike[str] | None, what: str) -> np.ndarray | None:
    if path is None:
        return None
    try:
        array = np.load(os.fspath(path), mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file {os.fspath(path)!r} does not exist") from None
    except ValueError as error:
        raise ValueError(
            f"{what} file {os.fspath(path)!r} is not a plain .npy array: {error}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{what} in {os.fspath(path)!r} must be numeric, got dtype {array.dtype}")
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError(f"{what} file {os.fspath(path)!r} is empty: expected at least one row")
    return array


class NpySource(StreamSource):
    """Batches over memory-mapped `.npy` files; build it with `batchfit.data.npy`."""

    def __init__(
        self,
        x_path: str | os.PathLike[str],
        y_path: str | os.PathLike[str] | None = None,
        sample_weight_path: str | os.PathLike[str] | None = None,
        *,
        block_rows: int = 65_536,
        **options: Unpack[NpyOptions],
    ) -> None:
        super().__init__(name="npy", x_format="array", sample_weight=None, **options)
        if not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        self.block_rows = block_rows
        self.paths = [os.fspath(p) for p in (x_path, y_path, sample_weight_path) if p is not None]
        arrays = [
            _open(x_path, "x"),
            _open(y_path, "y"),
            _open(sample_weight_path, "sample_weight"),
        ]
        self._arrays = [a for a in arrays if a is not None]
        n = self._arrays[0].shape[0]
        for path, array in zip(self.paths[1:], self._arrays[1:], strict=True):
            if array.shape[0] != n:
                raise ValueError(
                    f"{path} has {array.shape[0]} rows but {self.paths[0]} has {n}: "
                    "x, y and sample_weight must have the same number of rows"
                )
        self.rows = int(n)
        self._names = [self.paths[0], *self.paths[1:]]
        self._units = self._compute_units()

    def _compute_units(self) -> list[Any]:
        lo, hi = shard_rows(self.rows, self.rank, self.world_size)
        return [(s, min(s + self.block_rows, hi)) for s in range(lo, hi, self.block_rows)]

    def _unit_rows(self, unit: tuple[int, int]) -> int:
        return unit[1] - unit[0]

    def _read_unit(self, unit: tuple[int, int]) -> Iterator[Chunk]:
        start, stop = unit
        # One copy out of the map, to float32 (weights and targets too).
        parts = tuple(np.asarray(a[start:stop], dtype=np.float32, copy=True) for a in self._arrays)
        yield Chunk(parts, lambda i: f"row {start + i} of {self.paths[0]}")


def npy(
    x_path: str | os.PathLike[str],
    y_path: str | os.PathLike[str] | None = None,
    sample_weight_path: str | os.PathLike[str] | None = None,
    **options: Any,
) -> NpySource:
    """Batches from `.npy` files read through memory maps (never loaded whole).

    Args:
        x_path: features, shape `(rows, ...)`, any numeric dtype (batches are float32).
        y_path: targets with the same number of rows, or None for `(x,)` batches.
        sample_weight_path: one weight per row, or None.
        **options: `batch_size` (32), `shuffle_buffer` (rows), `shuffle` (block
            order; default: when `shuffle_buffer > 0`), `seed`, `drop_remainder`,
            `on_nan`, `block_rows` (65536), `prefetch` (blocks ahead; 0: no thread).

    Example:
        >>> src = npy("x.npy", "y.npy", batch_size=256)  # doctest: +SKIP
    """
    return NpySource(x_path, y_path, sample_weight_path, **options)
