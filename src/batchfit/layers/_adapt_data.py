"""What `adapt` reads and how it counts: batches of any source, and a mergeable count table.

See NOTE [ Adapting a vocabulary ] in `_index_lookup.py`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

import numpy as np
import torch

from batchfit.layers._encoding import to_numpy

__all__ = ["TokenCounts", "adapt_batches", "merge_counts"]


def merge_counts(parts: Iterable[Mapping[Any, int] | None]) -> Counter[Any]:
    """Token counts of several parts (ranks, chunks) summed: the counts of one pass."""
    total: Counter[Any] = Counter()
    for part in parts:
        if part:
            total.update(part)
    return total


def adapt_batches(data: Any, batch_size: int | None, layer: str) -> Iterable[tuple[Any, bool]]:
    """`(array, in_memory)` chunks of `data` for `adapt`: arrays/lists/tensors (rows of
    `batch_size`, or whole as Keras), or each batch of an iterable or `batchfit.data` source
    (its x; a dict of exactly one column gives that column)."""
    if isinstance(data, (list, tuple)) and any(
        isinstance(b, (np.ndarray, torch.Tensor, tuple, Mapping)) for b in data[:1]
    ):
        data = iter(data)  # a list of batches (Keras' Discretization reads a list so too)
    if isinstance(data, (list, tuple, np.ndarray, torch.Tensor)) or hasattr(data, "to_numpy"):
        arr = _column(data, layer)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim == 1:
            arr = arr[:, None]
        step = batch_size or len(arr) or 1
        for start in range(0, len(arr), step):
            yield arr[start : start + step], True
        return
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"{layer}.adapt() takes an array, a list, an iterable of batches or a batchfit.data "
            f"source, got {type(data).__name__}"
        )
    for batch in data:
        x = batch[0] if isinstance(batch, tuple) else batch
        yield _column(x, layer), False


def _column(x: Any, layer: str) -> np.ndarray:
    if isinstance(x, Mapping):
        if len(x) != 1:
            raise ValueError(
                f"{layer}.adapt(): a batch of named columns must hold exactly one column to "
                f"take its vocabulary from, got {len(x)}: {sorted(map(str, x))}; select one "
                "(e.g. features=['cut'])"
            )
        x = next(iter(x.values()))
    if hasattr(x, "to_numpy") and not isinstance(x, (np.ndarray, torch.Tensor)):
        x = x.to_numpy()
    return to_numpy(x)


class TokenCounts:
    """Token counts that add batch by batch and merge by addition (ranks, chunks).

    Strings count in a `Counter` (C-speed hashing of Python str); integers in
    sorted NumPy key/count arrays, with per-batch `np.unique` results folded in
    once they outweigh the table, so memory stays within about twice the
    number of distinct tokens.
    """

    def __init__(self) -> None:
        self.objects: Counter[Any] = Counter()
        self.keys = np.zeros(0, np.int64)
        self.numbers = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_size = 0

    def add(self, flat: np.ndarray) -> None:
        """Count the values of a 1-D array."""
        if flat.dtype.kind in "iu":
            keys, numbers = np.unique(flat, return_counts=True)
            self._pending.append((keys.astype(np.int64), numbers.astype(np.int64)))
            self._pending_size += len(keys)
            if self._pending_size > max(len(self.keys), 1 << 16):
                self._fold()
        else:
            self.objects.update(flat.tolist())

    def add_distinct_per_row(self, rows: np.ndarray) -> None:
        """Count each token once per row (document frequencies for TF-IDF)."""
        if rows.shape[1] == 1:
            self.add(rows.reshape(-1))
            return
        ordered = np.sort(rows, axis=1)
        first = np.ones(ordered.shape, bool)
        first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        self.add(ordered[first])

    def merge(self, counts: Mapping[Any, int]) -> None:
        """Add another table's counts (`as_dict()` of a rank's)."""
        ints = [k for k in counts if isinstance(k, int)]
        if ints:
            keys = np.asarray(ints, np.int64)
            self._pending.append((keys, np.asarray([counts[k] for k in ints], np.int64)))
            self._pending_size += len(keys)
        self.objects.update({k: v for k, v in counts.items() if not isinstance(k, int)})

    def _fold(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self.keys, *(k for k, _ in self._pending)])
        numbers = np.concatenate([self.numbers, *(n for _, n in self._pending)])
        self.keys, inverse = np.unique(keys, return_inverse=True)
        self.numbers = np.zeros(len(self.keys), np.int64)
        np.add.at(self.numbers, inverse.reshape(-1), numbers)
        self._pending, self._pending_size = [], 0

    def as_dict(self) -> dict[Any, int]:
        self._fold()
        out: dict[Any, int] = dict(self.objects)
        out.update(zip(self.keys.tolist(), self.numbers.tolist()))
        return out

    def lookup(self, tokens: list[Any]) -> np.ndarray:
        """The count of each of `tokens` (0 when unseen)."""
        self._fold()
        if self.objects or not len(self.keys):
            return np.asarray([self.objects.get(t, 0) for t in tokens], np.int64)
        query = np.asarray(tokens, np.int64)
        pos = np.searchsorted(self.keys, query).clip(max=len(self.keys) - 1)
        return np.where(self.keys[pos] == query, self.numbers[pos], 0)

    def keras_order(
        self, exclude: list[Any], limit: int | None, check: Callable[[list[Any]], list[Any]]
    ) -> list[Any]:
        """Tokens by descending count, ties by descending token (Keras' `np.lexsort((tokens,
        counts))[::-1]`), without `exclude`, the first `limit`; `check` converts/validates."""
        self._fold()
        if self.objects:
            counts = self.objects
            if any(type(k) is not str for k in counts):  # bytes, None, NaN: convert or refuse
                converted: Counter[Any] = Counter()
                for key, value in zip(check(list(counts)), counts.values()):
                    converted[key] += value
                counts = converted
            for token in exclude:
                counts.pop(token, None)
            items = counts.items()
            key = itemgetter(1, 0)
            chosen = (
                heapq.nlargest(limit, items, key=key)
                if limit is not None
                else sorted(items, key=key, reverse=True)
            )
            return [t for t, _ in chosen]
        keep = ~np.isin(self.keys, np.asarray([t for t in exclude if isinstance(t, int)], np.int64))
        keys, numbers = self.keys[keep], self.numbers[keep]
        order = np.lexsort((keys, numbers))[::-1]
        return keys[order[:limit]].tolist()  # already Python ints
