"""Batch sources for `fit`, `evaluate` and `predict`: arrays, files, streams.

Every source follows NOTE [ The source contract ] in `batchfit.data._base`.
Three bases carry it: `IndexedSource` (n rows read by position: arrays,
image folders, flows), `StreamSource` (units read in order: csv, parquet,
npy, frames, sql) and `SourceWrapper` (a source made from another).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from batchfit.data._arrays import ArraySource, arrays
from batchfit.data._base import Source, num_batches
from batchfit.data._indexed import IndexedSource
from batchfit.data._ranks import shard_for_ranks
from batchfit.data._wrapper import SourceWrapper

__all__ = [
    "ArraySource",
    "IndexedSource",
    "Source",
    "SourceWrapper",
    "arrays",
    "csv",
    "dataset",
    "frames",
    "generator",
    "hf",
    "images",
    "npy",
    "num_batches",
    "parquet",
    "shard_for_ranks",
    "sql",
]

# Sources with heavier imports load on first use.
_LAZY = {
    "csv": "batchfit.data._csv",
    "parquet": "batchfit.data._parquet",
    "npy": "batchfit.data._npy",
    "frames": "batchfit.data._frames",
    "generator": "batchfit.data._generator",
    "images": "batchfit.data._images",
    "dataset": "batchfit.data._dataset_source",
    "hf": "batchfit.data._hf",
    "sql": "batchfit.data._sql",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchfit.data' has no attribute {name!r}")
    return getattr(import_module(module), name)
