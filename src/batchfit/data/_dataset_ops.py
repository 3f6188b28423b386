"""The few `tf.data.Dataset` methods Keras examples call on a dataset: `take`, `map`, `prefetch`.

Keras' dataset utilities return `tf.data` datasets, and keras.io programs
write `for x, y in ds.take(1)`, `ds.map(lambda x, y: (f(x), y))` and
`ds.prefetch(n)`. The sources made by `batchfit.utils` (and any `Source`
given to `take`/`map`) offer them:
- `take(n)`: the first `n` batches of the current epoch as torch tensors (CPU,
  sharing the arrays' memory), read without moving the source's own position
  (a peek does not shift the next `fit`). Tensors, as `tf.data` yields: Keras
  code calls `images[i].numpy()`, `int(labels[i])` and `x.shape` on them.
  Iterating the source itself yields NumPy batches (NOTE [ The source contract ]);
- `map(fn)`: a source whose batches are `fn(*batch)`, with the inner
  source's order, position, shard and resume;
- `prefetch(n)`: the source itself; it already reads one batch ahead (and
  image folders decode in threads).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from batchfit.data._base import Batch, Source
from batchfit.data._wrapper import SourceWrapper

__all__ = ["DatasetOps", "MappedSource", "Taken"]


class Taken:
    """The first `count` batches of `source`'s current epoch; iterable again and again."""

    def __init__(self, source: Source, count: int) -> None:
        if not isinstance(count, int) or count < -1:
            raise ValueError(f"take() expects a count >= 0 (or -1 for all), got {count!r}")
        self.source, self.count = source, count

    def __iter__(self) -> Iterator[Batch]:
        saved = self.source.state_dict()
        try:
            self.source.rewind()
            batches = iter(self.source)
            try:
                stop = None if self.count == -1 else self.count
                for batch in itertools.islice(batches, stop):
                    yield tuple(_as_tensors(part) for part in batch)
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
        finally:
            self.source.load_state_dict(saved)

    def __len__(self) -> int:
        total = len(self.source)
        return total if self.count == -1 else min(total, self.count)


def _as_tensors(part: Any) -> Any:
    """NumPy numbers as CPU torch tensors (zero-copy); strings and other objects as they are."""
    if isinstance(part, dict):
        return {k: _as_tensors(v) for k, v in part.items()}
    if isinstance(part, np.ndarray) and part.dtype.kind in "biuf":
        import torch

        return torch.from_numpy(np.ascontiguousarray(part))
    return part


class DatasetOps:
    """`take`, `map` and `prefetch` for a `Source` subclass (see the module doc)."""

    def take(self, count: int) -> Taken:
        """The first `count` batches (all with -1), e.g. `for x, y in ds.take(1)`."""
        assert isinstance(self, Source)
        return Taken(self, count)

    def map(self, fn: Callable[..., Any], num_parallel_calls: Any = None) -> MappedSource:
        """A source whose batches are `fn(*batch)` (`num_parallel_calls` is accepted, unused)."""
        del num_parallel_calls
        assert isinstance(self, Source)
        return MappedSource(self, fn)

    def prefetch(self, buffer_size: Any = None) -> Any:
        """This source (it already reads ahead); accepted so tf.data-style code runs."""
        del buffer_size
        return self


class MappedSource(DatasetOps, SourceWrapper):
    """`source`'s batches passed through `fn(*batch)` (a tuple result, or one value as x)."""

    def __init__(self, source: Source, fn: Callable[..., Any]) -> None:
        super().__init__(source)
        self.fn = fn

    def wrap_epoch(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        for batch in batches:
            out = self.fn(*batch)
            yield tuple(out) if isinstance(out, (tuple, list)) else (out,)
