"""Whatever the user passes to `fit`/`evaluate`/`predict`, as a batch source."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from batchfit._engine.batches import batch_size_of
from batchfit.data import ArraySource, Source, shard_for_ranks
from batchfit.data._arrays import to_array
from batchfit.data._base import Batch
from batchfit.data._pydataset import PyDataset, PyDatasetSource

__all__ = [
    "IterableSource",
    "fit_sources",
    "is_array_like",
    "shard_for_ranks",
    "to_source",
]


def _is_batch_list(x: Any) -> bool:
    """A list of batches `[(x, y), ...]` rather than a list of input arrays."""
    return (
        isinstance(x, list)
        and len(x) > 0
        and all(isinstance(b, (tuple, list)) or (isinstance(b, Mapping) and "x" in b) for b in x)
    )


def is_array_like(x: Any) -> bool:
    """Arrays, tensors, frames, and dicts/tuples of them (data held in memory)."""
    if isinstance(x, Mapping):
        return all(is_array_like(v) for v in x.values())
    if _is_batch_list(x):
        return False
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(is_array_like(v) or np.isscalar(v) for v in x)
    return hasattr(x, "shape") or hasattr(x, "to_numpy") or hasattr(x, "__array__")


class IterableSource(Source):
    """Any re-iterable of batches (a DataLoader, a list); a `PyDataset` has its own source.

    A one-shot iterator (a generator object) can give one epoch only; a second
    epoch raises instead of silently training on nothing.
    """

    def __init__(self, iterable: Iterable[Any]) -> None:
        super().__init__()
        self.iterable = iterable
        self.one_shot = iter(iterable) is iterable
        self._used = False
        self.batch_size = getattr(iterable, "batch_size", None)

    def _num_batches(self) -> int | None:
        try:
            return len(self.iterable)  # type: ignore[arg-type]
        except TypeError:
            return None

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        if self.one_shot:
            if self._used:
                raise RuntimeError(
                    "this generator/iterator was already consumed by an earlier epoch; pass a "
                    "re-iterable (a batchfit.data source, a list, a DataLoader) or set "
                    "steps_per_epoch to train on an endless stream"
                )
            self._used = True
        # a DataLoader's DistributedSampler reshuffles per epoch only when told the epoch
        for owner in (self.iterable, getattr(self.iterable, "sampler", None)):
            set_epoch = getattr(owner, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)
        for i, batch in enumerate(self.iterable):
            if i >= skip_batches:
                yield batch if isinstance(batch, tuple) else _as_batch(batch)


def _as_batch(batch: Any) -> Batch:
    if isinstance(batch, list):
        return tuple(batch)
    if isinstance(batch, Mapping) and "x" in batch:
        return tuple(batch[k] for k in ("x", "y", "sample_weight") if k in batch)
    return (batch,)


def to_source(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    batch_size: int | None,
    shuffle: bool,
    what: str = "x",
) -> Source:
    """A batch source for `x` (and `y`), checking the combination is meaningful."""
    if x is None:
        raise ValueError(f"{what} is required")
    if isinstance(x, Source):
        if y is not None:
            raise ValueError(
                f"y must be None when {what} is a batch source (it yields its own targets)"
            )
        return x
    if isinstance(x, PyDataset):
        for name, given in (("y", y), ("sample_weight", sample_weight)):
            if given is not None:
                raise ValueError(
                    f"{name} must be None when {what} is a PyDataset (its batches hold it)"
                )
        return PyDatasetSource(x, shuffle=shuffle)
    if is_array_like(x):
        return ArraySource(
            x, y, sample_weight, batch_size=batch_size or 32, shuffle=shuffle, seed=None
        )
    if isinstance(x, Iterable) and not isinstance(x, (str, bytes)):
        if y is not None:
            raise ValueError(f"y must be None when {what} is an iterable of batches")
        return IterableSource(x)
    raise TypeError(
        f"{what} must be arrays (NumPy, torch, pandas), a batchfit.data source or an iterable "
        f"of batches, got {type(x).__name__}"
    )


def fit_sources(
    x: Any,
    y: Any,
    sample_weight: Any,
    *,
    batch_size: int | None,
    shuffle: bool,
    validation_split: float,
    validation_data: Any,
    validation_batch_size: int | None,
) -> tuple[Source, Source | None]:
    """The training source and the validation source (or None) for `fit`'s arguments."""
    if validation_split and validation_data is not None:
        raise ValueError("give validation_split or validation_data, not both")
    if validation_split:
        (x, y, sample_weight), validation_data = split_for_validation(
            x, y, sample_weight, validation_split
        )
    if batch_size is not None and isinstance(x, Source):
        raise ValueError(
            "batch_size is set by the source (e.g. batchfit.data.csv(..., batch_size=256)); "
            "do not pass it to fit"
        )
    source = to_source(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle)
    if validation_data is None:
        return source, None
    val_batch = validation_batch_size or batch_size
    if isinstance(validation_data, Source):
        return source, validation_data
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
        parts = (*validation_data, None)[:3]
        return source, to_source(
            parts[0],
            parts[1],
            parts[2],
            batch_size=val_batch,
            shuffle=False,
            what="validation_data",
        )
    return source, to_source(
        validation_data, batch_size=val_batch, shuffle=False, what="validation_data"
    )


def split_for_validation(
    x: Any, y: Any, sample_weight: Any, validation_split: float
) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """Keras' `validation_split`: the last fraction of the arrays, before shuffling."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    if not is_array_like(x):
        raise ValueError(
            "validation_split needs in-memory arrays; for a stream pass validation_data "
            "(e.g. a second batchfit.data source)"
        )
    xa, ya, wa = to_array(x, "x"), to_array(y, "y"), to_array(sample_weight, "sample_weight")
    n = batch_size_of(xa)
    split_at = int(n * (1.0 - validation_split))
    if split_at <= 0 or split_at >= n:
        raise ValueError(
            f"validation_split={validation_split} leaves no samples on one side ({n} samples)"
        )

    def cut(a: Any, part: slice) -> Any:
        if a is None:
            return None
        if isinstance(a, Mapping):
            return {k: v[part] for k, v in a.items()}
        if isinstance(a, (list, tuple)):
            return type(a)(v[part] for v in a)
        return a[part]

    head, tail = slice(0, split_at), slice(split_at, None)
    return (cut(xa, head), cut(ya, head), cut(wa, head)), (
        cut(xa, tail),
        cut(ya, tail),
        cut(wa, tail),
    )
