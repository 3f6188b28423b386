"""Keras' `split_dataset`: two sources over disjoint rows of arrays or of an indexed source.

Sizes follow Keras (a float is a fraction rounded with `round`, an int a
count; the missing side takes the rest). With `shuffle`, the rows are
`torch.randperm(n)` from a generator seeded with `seed`, the first
`left_size` going left, as Keras' torch backend splits (`random_split`);
without, the first `left_size` rows go left and the next `right_size` right.
Rows are picked, never copied: each side reads its rows from the original
when a batch is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batchfit.data._arrays import ArraySource
from batchfit.data._base import Batch, check_batch_size
from batchfit.data._dataset_ops import DatasetOps
from batchfit.data._indexed import IndexedSource

__all__ = ["RowSubsetSource", "split_dataset"]


class RowSubsetSource(DatasetOps, IndexedSource):
    """The rows `rows` of an indexed source, in that order, with its batch size."""

    def __init__(self, inner: IndexedSource, rows: np.ndarray, *, shuffle: bool, seed: int) -> None:
        super().__init__(len(rows), batch_size=inner.batch_size, shuffle=shuffle, seed=seed)
        self.inner, self.rows = inner, np.asarray(rows, np.int64)
        self.class_names = getattr(inner, "class_names", None)

    def load(self, rows: Any) -> Batch:
        return self.inner._batch(self.inner.load(self.rows[rows]), self.rows[rows], self.epoch, 0)

    def batch(self, batch_size: int) -> RowSubsetSource:
        """This split read in batches of `batch_size` (tf.data's `batch`)."""
        clone = RowSubsetSource(self.inner, self.rows, shuffle=self.shuffle, seed=self.seed)
        clone.batch_size = check_batch_size(batch_size)
        return clone

    def fingerprint(self) -> dict[str, Any] | None:
        inner = self.inner.fingerprint()
        if inner is None:
            return None
        return {**inner, "rows": len(self.rows), "first": self.rows[:8].tolist()}


def _sizes(left: Any, right: Any, total: int) -> tuple[int, int]:
    for name, size in (("left_size", left), ("right_size", right)):
        if size is None:
            continue
        if type(size) not in (int, float):
            raise TypeError(f"{name} must be an int, a float or None, got {type(size).__name__}")
        if (type(size) is int and not 0 < size < total) or (
            type(size) is float and not 0 < size < 1
        ):
            raise ValueError(
                f"{name}={size!r} must be in (0, {total}) as a count or in (0, 1) as a "
                f"fraction, for {total} samples"
            )
    if left is None and right is None:
        raise ValueError("give left_size or right_size (or both)")
    lcount = None if left is None else (round(left * total) if type(left) is float else left)
    rcount = None if right is None else (round(right * total) if type(right) is float else right)
    lcount = total - rcount if lcount is None else lcount  # type: ignore[operator]
    rcount = total - lcount if rcount is None else rcount
    if lcount + rcount > total or lcount == 0 or rcount == 0:
        raise ValueError(
            f"left_size={left!r} and right_size={right!r} give {lcount} + {rcount} samples "
            f"of {total}; each side needs at least one, and together at most {total}"
        )
    return int(lcount), int(rcount)


def split_dataset(
    dataset: Any,
    left_size: float | int | None = None,
    right_size: float | int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[RowSubsetSource, RowSubsetSource]:
    """Split arrays (an array, or a tuple/list of arrays) or an indexed source into two.

    Args:
        dataset: an array, a tuple/list of arrays of equal length (e.g. `(x, y)`),
            or an indexed source (arrays, image/text folders, timeseries windows).
        left_size: samples (int) or fraction (float) on the left; None: the rest.
        right_size: samples (int) or fraction (float) on the right; None: the rest.
        shuffle: pick the rows at random (Keras' torch-backend `random_split`).
        seed: seed of that choice.

    Returns:
        `(left, right)` sources over disjoint rows (batches of 32 for arrays; `.batch(n)`
        gives another batch size).

    Example:
        >>> left, right = split_dataset((x, y), left_size=0.8, shuffle=True, seed=1)
        >>> model.fit(left.batch(64), validation_data=right.batch(64))
    """
    if isinstance(dataset, IndexedSource):
        inner = dataset
    elif isinstance(dataset, (list, tuple)) and dataset:
        parts = list(dataset)
        if len(parts) > 3:
            raise ValueError(
                f"a tuple dataset holds x, y and sample_weight at most, got {len(parts)}"
            )
        inner = ArraySource(parts[0], *parts[1:3], batch_size=32)
    elif hasattr(dataset, "shape"):
        inner = ArraySource(dataset, batch_size=32)
    else:
        raise TypeError(
            "split_dataset expects an array, a tuple/list of arrays or a batchfit indexed source, "
            f"got {type(dataset).__name__}"
        )
    total = inner.n
    left_count, right_count = _sizes(left_size, right_size, total)
    if shuffle:
        import torch

        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
        order = torch.randperm(total, generator=generator).numpy()
    else:
        order = np.arange(total)
    keep_shuffling, seed_ = inner.shuffle, inner.seed
    return (
        RowSubsetSource(inner, order[:left_count], shuffle=keep_shuffling, seed=seed_),
        RowSubsetSource(
            inner, order[left_count : left_count + right_count], shuffle=keep_shuffling, seed=seed_
        ),
    )
