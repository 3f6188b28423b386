"""`ParquetSink`: stream predictions to a Parquet file, memory bounded.

Used by `predict(..., output="preds.parquet")`. Rows are buffered up to
`row_group_rows`, written as one row group, and the file is written under a
temporary name and renamed into place by `close()`, so a crash never leaves
a truncated file under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NullSink", "ParquetSink"]


class ParquetSink:
    """Append batches of predictions; `close()` publishes the file atomically.

    Args:
        path: the final file name.
        column_names: one name per output column; default `output` for 1-D
            predictions, `output_0`, `output_1`, ... otherwise.
        row_group_rows: rows per row group (memory holds at most this many).

    Example:
        >>> with ParquetSink("preds.parquet") as sink:  # doctest: +SKIP
        ...     for x, in source:
        ...         sink.write(model.predict_on_batch(x))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        column_names: Sequence[str] | None = None,
        *,
        row_group_rows: int = 65_536,
    ) -> None:
        self.path = os.fspath(path)
        self.column_names = list(column_names) if column_names is not None else None
        self.row_group_rows = int(row_group_rows)
        self.rows_written = 0
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"cannot write {self.path}: directory {directory} does not exist"
            )
        self._tmp = os.path.join(directory, f".{os.path.basename(self.path)}.{os.getpid()}.tmp")
        self._writer: Any = None
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._width: int | None = None
        self._closed = False

    def write(self, batch: Any) -> None:
        """Append one batch, shape `(rows,)` or `(rows, columns)` (more dims are flattened)."""
        if self._closed:
            raise ValueError(f"ParquetSink for {self.path} is closed")
        if hasattr(batch, "detach"):  # a torch tensor
            batch = batch.detach().cpu().numpy()
        array = np.asarray(batch)
        if array.ndim == 0:
            raise ValueError("expected a batch with a first (rows) dimension, got a scalar")
        array = array.reshape(array.shape[0], -1)
        if self._width is None:
            self._width = array.shape[1]
            if self.column_names is None:
                self.column_names = (
                    ["output"] if batch.ndim == 1 else [f"output_{j}" for j in range(self._width)]
                )
            if len(self.column_names) != self._width:
                raise ValueError(
                    f"expected {len(self.column_names)} columns ({self.column_names}), "
                    f"got batches with {self._width}"
                )
        elif array.shape[1] != self._width:
            raise ValueError(
                f"expected batches with {self._width} columns, got {array.shape[1]} "
                f"after {self.rows_written + self._pending_rows} rows"
            )
        self._pending.append(array)
        self._pending_rows += array.shape[0]
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._pending:
            return
        data = np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        assert self.column_names is not None
        table = pa.table({name: data[:, j] for j, name in enumerate(self.column_names)})
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table)
        self.rows_written += data.shape[0]

    def close(self) -> None:
        """Write what is buffered, then rename the file into place (fsynced)."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        if self._writer is None:
            raise ValueError(f"nothing was written to {self.path}: no batches")
        self._writer.close()
        with open(self._tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file (after an error); the final name is untouched."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class NullSink:
    """Where the ranks other than 0 send a shared prediction pass: nowhere."""

    def write(self, batch: Any) -> None:
        del batch

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
