"""The options every streaming source shares, declared once.

`csv`, `parquet`, `npy` and `frames` take these as keyword arguments
(`**options: Unpack[StreamOptions]`); their defaults and checks live in one
place, `StreamSource.__init__`. A source that fixes an option (npy's
`x_format`, frames' `shuffle`) takes a TypedDict without it and passes it
itself; a caller who passes it anyway gets a TypeError, as before.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["CommonOptions", "FramesOptions", "NpyOptions", "StreamOptions"]


class CommonOptions(TypedDict, total=False):
    """Keyword options of every streaming source (see `StreamSource`).

    Attributes:
        batch_size: rows per batch (32).
        shuffle_buffer: rows mixed in a bounded, seeded buffer (0: no shuffling).
        seed: seed of the shuffles; drawn from torch's generator when None.
        drop_remainder: drop the last partial batch.
        on_nan: "raise" (default) or "skip" rows holding NaN or inf.
        prefetch: chunks read ahead in a background thread (2; 0: no thread).
    """

    batch_size: int
    shuffle_buffer: int
    seed: int | None
    drop_remainder: bool
    on_nan: str
    prefetch: int


class _UnitOrder(TypedDict, total=False):
    # shuffle the order of units (blocks, row groups); default: when shuffle_buffer > 0
    shuffle: bool | None


class _NamedColumns(TypedDict, total=False):
    # "array" (default) or "dict" (one array per feature column)
    x_format: str


class _WeightColumn(TypedDict, total=False):
    # the column of per-row sample weights (batches become (x, y, w))
    sample_weight: str | None


class StreamOptions(CommonOptions, _UnitOrder, _NamedColumns, _WeightColumn, total=False):
    """Options of sources over files of named columns (`csv`, `parquet`)."""


class NpyOptions(CommonOptions, _UnitOrder, total=False):
    """Options of `npy`: arrays have no column names, so no `x_format`."""


class FramesOptions(CommonOptions, _NamedColumns, _WeightColumn, total=False):
    """Options of `frames`: the chunk order is the iterator's, so no `shuffle`."""
