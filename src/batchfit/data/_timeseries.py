"""Keras' `timeseries_dataset_from_array`: sliding windows over an array, read lazily.

Window `k` starts at `start_index + p[k]`, where `p = arange(0, num_seqs,
sequence_stride)` and `num_seqs = end_index - start_index - (sequence_length
- 1) * sampling_rate` (at most `len(targets)`), and takes every
`sampling_rate`-th step for `sequence_length` steps; its target is
`targets[start_index:end_index][p[k]]`. With `shuffle` and a `seed`, `p` is
shuffled once by `np.random.RandomState(seed)` as Keras does.
Keras then mixes batches in a `tf.data` buffer each epoch; here the windows
are permuted each epoch from the seed instead (same windows, another order).
Windows are cut when a batch is read, so memory holds the array, not the windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batchfit.data._base import Batch, check_batch_size
from batchfit.data._dataset_ops import DatasetOps
from batchfit.data._indexed import IndexedSource

__all__ = ["TimeseriesSource", "timeseries_dataset_from_array"]


def _check_position(name: str, value: Any, length: int, low: int) -> int:
    if not isinstance(value, (int, np.integer)) or not low <= value < length:
        raise ValueError(
            f"`{name}` must be an integer in [{low}, {length}) for data of length {length}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


class TimeseriesSource(DatasetOps, IndexedSource):
    """Batches of windows `(sequences, targets)` (or `(sequences,)`); see the module doc."""

    rows_as_slices = True

    def __init__(
        self,
        data: Any,
        targets: Any,
        *,
        sequence_length: int,
        sequence_stride: int = 1,
        sampling_rate: int = 1,
        batch_size: int | None = 128,
        shuffle: bool = False,
        seed: int | None = None,
        start_index: int | None = None,
        end_index: int | None = None,
    ) -> None:
        data = np.asarray(data)
        length = len(data)
        start = 0 if not start_index else _check_position("start_index", start_index, length, 0)
        end = length if not end_index else _check_position("end_index", end_index, length, 1)
        if end <= start:
            raise ValueError(
                f"`end_index` must be higher than `start_index`. Received: "
                f"start_index={start_index}, and end_index={end_index}"
            )
        for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
            _check_position(name, value, length, 1)
        if not isinstance(sequence_length, (int, np.integer)) or sequence_length < 1:
            raise ValueError(
                f"`sequence_length` must be a positive integer, got {sequence_length!r}"
            )
        num_seqs = end - start - (int(sequence_length) - 1) * int(sampling_rate)
        if targets is not None:
            targets = np.asarray(targets)
            num_seqs = min(num_seqs, len(targets))
        positions = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=np.int64)
        if len(positions) == 0:
            raise ValueError(
                f"no window of sequence_length={sequence_length} and sampling_rate="
                f"{sampling_rate} fits in data[{start}:{end}] ({end - start} steps)"
            )
        if shuffle and seed is not None:
            # Keras' start-position shuffle; without a seed only the epochs' permutations
            # shuffle, so that torchrun ranks (whose seeds may differ) index one list
            np.random.RandomState(seed).shuffle(positions)
        self.unbatched = batch_size is None
        super().__init__(
            len(positions),
            batch_size=1 if batch_size is None else check_batch_size(batch_size),
            shuffle=shuffle,
            seed=seed,
        )
        self.steps = data[start:end]
        self.targets = None if targets is None else targets[start:end]
        self.positions = positions
        self.offsets = np.arange(int(sequence_length), dtype=np.int64) * int(sampling_rate)

    def load(self, rows: slice | np.ndarray) -> Batch:
        starts = self.positions[rows]
        x = self.steps[starts[:, None] + self.offsets]
        if self.targets is None:
            return (x,)
        return (x, self.targets[starts])

    def finish(self, batch: Batch, rows: Any, epoch: int, index: int) -> Batch:
        if self.unbatched:
            return tuple(part[0] for part in batch)
        return batch

    def fingerprint(self) -> dict[str, Any]:
        from batchfit.data._fingerprint import array_fingerprint

        return array_fingerprint([self.steps, self.targets, self.positions])


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesSource:
    """Sliding windows over `data` as a batch source (Keras' function, same windows).

    Args:
        data: array whose axis 0 is time.
        targets: `targets[i]` is the target of the window starting at `i`; None for none.
        sequence_length: steps in a window.
        sequence_stride: steps between the starts of successive windows.
        sampling_rate: steps between successive elements of a window.
        batch_size: windows per batch; None yields single windows.
        shuffle: shuffle the windows (Keras' start-position shuffle, then each epoch).
        seed: seed of the shuffle.
        start_index: first step used (inclusive).
        end_index: last step used (exclusive).

    Returns:
        A `TimeseriesSource` yielding `(windows, targets)` or `(windows,)` NumPy batches.

    Example:
        >>> ds = timeseries_dataset_from_array(np.arange(100), None, sequence_length=10,
        ...                                    sampling_rate=2, sequence_stride=3, batch_size=4)
        >>> next(iter(ds))[0][1]
        array([ 3,  5,  7,  9, 11, 13, 15, 17, 19, 21])
    """
    return TimeseriesSource(
        data,
        targets,
        sequence_length=sequence_length,
        sequence_stride=sequence_stride,
        sampling_rate=sampling_rate,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        start_index=start_index,
        end_index=end_index,
    )
