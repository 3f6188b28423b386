"""`hf(...)`: stream a Hugging Face `datasets.Dataset` or `IterableDataset`.

NOTE [ Hugging Face datasets ]
A `Dataset` is an Arrow table (memory-mapped from `load_from_disk`, or in
memory), possibly behind an indices mapping (`select`, `shuffle`, `filter`).
Its rows are read in slices through its own Arrow formatter (which applies
the mapping), so the row count is known: a unit is a range of `block_rows`
rows, a shard a contiguous row range (`shard_rows`), and `len()`, shuffle,
shard and resume are exact, as for `parquet`.
An `IterableDataset` is one stream (one unit). A shard is
`datasets.distributed.split_dataset_by_node` (whole shards of the stream when
their number divides by the world size, else every `world_size`-th row); a
resume replays the stream and skips the batches done, which is exact only if
the stream yields the same rows in the same order in every process. A
`.shuffle()` applied by `datasets` draws from a generator batchfit cannot read
back, so such a stream is refused unless `deterministic=True` says the user
seeded it; the seeded `shuffle_buffer` of `hf` is exact without that.
Columns of numbers give one x column each; a column of fixed-shape arrays
(`Array2D/3D`, `List(..., length=k)`, or lists whose rows all have one shape)
gives x of that shape when it is the only feature, and is flattened beside
the others when it is not (`x_format="dict"` keeps each feature's shape).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit.data._base import Batch
from batchfit.data._nodes import Chunk, Parts
from batchfit.data._options import StreamOptions
from batchfit.data._order import shard_rows
from batchfit.data._stream import Columns, StreamSource, resolve_columns

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["HFSource", "hf"]

_SAMPLED_ROWS = 64


def _numeric(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    )


def _column_shape(name: str, kind: Any, where: str) -> tuple[int, ...] | None:
    """Per-row shape from the Arrow type; None where lists may vary (checked per block)."""
    import pyarrow as pa

    storage = getattr(kind, "storage_type", None)
    if storage is not None:  # datasets' ArrayXD extension types
        shape = getattr(kind, "shape", None)
        inner = storage
        while pa.types.is_list(inner) or pa.types.is_fixed_size_list(inner):
            inner = inner.value_type
        if shape is not None and _numeric(inner):
            return tuple(int(s) for s in shape)
        kind = storage
    if _numeric(kind):
        return ()
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = _column_shape(name, kind.value_type, where)
        if pa.types.is_fixed_size_list(kind) and inner is not None:
            return (int(kind.list_size), *inner)
        return None
    hint = ""
    if pa.types.is_struct(kind) and {"bytes", "path"} <= {f.name for f in kind}:
        hint = " (an Image or Audio column: decode it into arrays first, e.g. with .map)"
    raise TypeError(
        f"column {name!r} of {where} has type {kind}; expected numbers or fixed-shape "
        f"arrays of numbers{hint}. Leave it out with features=[...]"
    )


def _to_array(column: Any, name: str, locate: Callable[[int], str]) -> np.ndarray:
    """An Arrow column as float32 `(rows, *shape)`; nulls inside numbers become NaN."""
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows = len(array)
    shape: list[int] = []
    while True:
        if isinstance(array, pa.ExtensionArray):
            array = array.storage
        kind = array.type
        if _numeric(kind):
            break
        if array.null_count:
            row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
            row = row // max(int(np.prod(shape)), 1)
            raise ValueError(f"column {name!r} holds a missing array at {locate(row)}")
        if pa.types.is_fixed_size_list(kind):
            size = int(kind.list_size)
        else:
            lengths = array.value_lengths().to_numpy(zero_copy_only=False)
            size = int(lengths[0]) if len(lengths) else 0
            if len(lengths) and (lengths != size).any():
                outer = max(int(np.prod(shape)), 1)
                row = int(np.flatnonzero(lengths != size)[0]) // outer
                raise ValueError(
                    f"column {name!r} holds arrays of different shapes: length "
                    f"{int(lengths[row * outer])} at {locate(row)}, {size} at {locate(0)}; "
                    "expected every row to have the same shape"
                )
        shape.append(size)
        array = array.flatten()
    if array.null_count:
        array = array.cast(pa.float64()).fill_null(float("nan"))
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float32)
    return values.reshape(rows, *shape)


class HFSource(StreamSource):
    """Batches from a Hugging Face dataset; build it with `batchfit.data.hf`."""

    def __init__(
        self,
        data: Any,
        target: str | Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        *,
        block_rows: int = 65_536,
        deterministic: bool = False,
        **options: Unpack[StreamOptions],
    ) -> None:
        super().__init__(name="hf", **options)
        import datasets

        if not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
        self.block_rows = block_rows
        self._epoch_reading = 0
        self.iterable = isinstance(data, datasets.IterableDataset)
        if not self.iterable and not isinstance(data, datasets.Dataset):
            raise TypeError(
                "hf() reads a datasets.Dataset or datasets.IterableDataset, got "
                f"{type(data).__name__} (a DatasetDict? pick a split: data['train'])"
            )
        self.where = "the Hugging Face " + ("IterableDataset" if self.iterable else "Dataset")
        schema = self._schema(data)
        named = resolve_columns(
            list(schema.names), target, features, self.sample_weight_column, self.where
        )
        self.shapes = {n: _column_shape(n, schema.field(n).type, self.where) for n in named.needed}
        if named.weight and self.shapes[named.weight] not in ((), None):
            raise TypeError(f"sample_weight column {named.weight!r} must hold one number per row")
        self.named = named
        self._feature_shapes: dict[str, tuple[int, ...]] = {}
        self.columns = self._flat_columns()
        if self.iterable:
            if _shuffled_by_datasets(data) and not deterministic:
                raise ValueError(
                    f"{self.where} was shuffled by datasets (.shuffle()), from a generator "
                    "batchfit cannot read back, so a resumed run could not replay its order. "
                    "Pass the unshuffled dataset with shuffle_buffer=N, seed=S (exact on "
                    "resume), or deterministic=True if you gave .shuffle() a seed"
                )
            self.data = data.select_columns(named.needed)
            self.rows: int | None = None
        else:
            self.data = data.select_columns(named.needed).with_format("arrow")
            self.rows = len(data)
            if self.rows == 0:
                raise ValueError(f"{self.where} is empty: expected at least one row")
        self._units = self._compute_units()

    def _schema(self, data: Any) -> Any:
        import pyarrow as pa

        if data.features is not None:
            return data.features.arrow_schema
        first = next(iter(data.with_format("arrow").iter(batch_size=1)), None)
        if first is None:
            raise ValueError(f"{self.where} is empty: expected at least one row")
        return pa.table(first).schema if not isinstance(first, pa.Table) else first.schema

    def _flat_columns(self) -> Columns:
        """Names of the flattened x columns (`emb[3]`), for error messages."""
        known = {n: s for n, s in self.shapes.items() if s is not None}
        if len(known) < len(self.shapes):
            return Columns(self.named.features, self.named.targets, None, False)
        flat = []
        for name in self.named.features:
            size = int(np.prod(known[name]))
            flat.extend([name] if not known[name] else [f"{name}[{i}]" for i in range(size)])
        return Columns(flat, self.named.targets, self.named.weight, self.named.y_is_vector)

    # -- units ------------------------------------------------------------------------
    def _compute_units(self) -> list[Any]:
        if self.rows is None:
            return [0]
        lo, hi = shard_rows(self.rows, self.rank, self.world_size)
        return [(a, min(a + self.block_rows, hi)) for a in range(lo, hi, self.block_rows)]

    def _unit_rows(self, unit: Any) -> int | None:
        return None if self.iterable else unit[1] - unit[0]

    def _rows_may_drop(self) -> bool:
        return self.iterable or super()._rows_may_drop()

    def _read_unit(self, unit: Any) -> Iterator[Chunk]:
        if not self.iterable:
            start, stop = unit
            yield self._chunk(self.data[start:stop], _locator("row", start))
            return
        from datasets.distributed import split_dataset_by_node

        stream = self.data
        if self.world_size > 1:
            stream = split_dataset_by_node(stream, self.rank, self.world_size)
        stream = stream.with_format("arrow")
        stream.set_epoch(self._epoch_reading)
        seen = 0
        for table in stream.iter(batch_size=self.block_rows):
            yield self._chunk(table, _locator(f"rank {self.rank}'s stream row", seen))
            seen += table.num_rows

    def _iter_epoch(self, epoch: int, skip_batches: int) -> Iterator[Batch]:
        self._epoch_reading = epoch  # the epoch an IterableDataset's own shuffling uses
        return super()._iter_epoch(epoch, skip_batches)

    def _chunk(self, table: Any, locate: Callable[[int], str]) -> Chunk:
        named = self.named
        arrays = {n: _to_array(table.column(n), n, locate) for n in named.needed}
        for name in named.features:
            shape = arrays[name].shape[1:]
            fixed = self._feature_shapes.setdefault(name, shape)
            if shape != fixed:
                raise ValueError(
                    f"column {name!r} holds arrays of shape {shape} at {locate(0)}, "
                    f"{fixed} before; expected every row to have the same shape"
                )
        rows = table.num_rows
        x = np.concatenate([arrays[n].reshape(rows, -1) for n in named.features], axis=1)
        parts: list[np.ndarray] = [np.ascontiguousarray(x)]
        if named.targets:
            y = np.concatenate([arrays[n].reshape(rows, -1) for n in named.targets], axis=1)
            parts.append(
                y.reshape(rows, *arrays[named.targets[0]].shape[1:]) if named.y_is_vector else y
            )
        if named.weight:
            parts.append(arrays[named.weight].reshape(rows))
        return Chunk(tuple(parts), locate)

    def _format(self, parts: Parts) -> Batch:
        x, rest = parts[0], parts[1:]
        names = self.named.features
        shapes = [self._feature_shapes.get(n, ()) for n in names]
        if self.x_format == "dict":
            named, at = {}, 0
            for name, shape in zip(names, shapes):
                size = int(np.prod(shape))
                named[name] = x[:, at : at + size].reshape(len(x), *shape) if shape else x[:, at]
                at += size
            return (named, *rest)
        if len(names) == 1 and shapes[0]:
            return (x.reshape(len(x), *shapes[0]), *rest)
        return (x, *rest)

    # -- contract -------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any] | None:
        """Row count and a hash of evenly spaced rows (a Dataset); None for a stream."""
        if self.iterable or self.rows is None:
            return None
        import hashlib

        picks = np.unique(np.linspace(0, self.rows - 1, num=min(self.rows, _SAMPLED_ROWS)))
        sample = self.data.select(picks.astype(np.int64).tolist())[:]
        text = json.dumps(sample.to_pydict(), sort_keys=True, default=str)
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        return {"kind": "rows", "count": self.rows, "columns": self.named.needed, "hash": digest}


def _locator(prefix: str, first: int) -> Callable[[int], str]:
    return lambda i: f"{prefix} {first + i}"


def _shuffled_by_datasets(data: Any) -> bool:
    """Whether the stream's chain holds a `datasets` shuffle (buffer or shard order)."""
    if getattr(data, "_shuffling", None) is not None:
        return True
    node = getattr(data, "_ex_iterable", None)
    while node is not None:
        if "Shuffl" in type(node).__name__ or getattr(node, "generator", None) is not None:
            return True
        node = getattr(node, "ex_iterable", None)
    return False


def hf(
    data: Any,
    target: str | Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    **options: Any,
) -> HFSource:
    """Stream batches from a Hugging Face `datasets.Dataset` or `IterableDataset`.

    Needs the optional `datasets` package (`pip install batchfit[hf]`); see
    NOTE [ Hugging Face datasets ] for how rows are ordered, sharded and resumed.

    Args:
        data: a `datasets.Dataset` (e.g. `load_from_disk(...)`, or one split of
            a `DatasetDict`) or a `datasets.IterableDataset`.
        target: the target column, a list of them (y is then 2-D), or None for
            predict-only batches `(x,)`.
        features: feature columns; None means every column but the targets.
            Columns of fixed-shape arrays give multi-dimensional x.
        **options: `block_rows` (rows read per slice, 65536), `deterministic`
            (declare a `datasets`-shuffled stream seeded), and the options of
            `parquet` (`batch_size`, `shuffle_buffer`, `shuffle`, `seed`,
            `drop_remainder`, `on_nan`, `x_format`, `sample_weight`, `prefetch`).

    Returns:
        An `HFSource`; `len()` is exact for a `Dataset`, unknown for a stream.

    Raises:
        TypeError: a column holds text, images or anything else not numeric.
        ValueError: a column is missing, arrays differ in shape, or a stream
            was shuffled by `datasets` from a generator that cannot be replayed.

    Example:
        >>> src = hf(datasets.load_from_disk("data/train"), target="label")  # doctest: +SKIP
    """
    return HFSource(data, target, features, **options)
