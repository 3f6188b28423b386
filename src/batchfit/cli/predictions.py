"""`batchfit predict`'s output: labels, probabilities and kept columns, as CSV or Parquet.

The file is written under a temporary name in the output's directory and
renamed into place at the end, so a failure never leaves a truncated file
under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from batchfit.cli.errors import CliError

__all__ = ["output_kind", "prediction_columns", "write_predictions"]


def output_kind(path: str) -> str:
    """'csv' or 'parquet' from `--output`'s extension."""
    name = path.lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise CliError(f"--output {path!r}: expected a name ending in .csv or .parquet")


def prediction_columns(spec: Any, outputs: np.ndarray) -> dict[str, Any]:
    """Named columns of one batch of model outputs (see `write_predictions`)."""
    target = spec.targets[0]
    if spec.task == "regression":
        values = outputs.reshape(len(outputs), -1)
        return {f"{t}_pred": values[:, j].astype(np.float64) for j, t in enumerate(spec.targets)}
    classes = np.asarray(spec.classes, dtype=object)
    if spec.task == "binary" and outputs.reshape(len(outputs), -1).shape[1] == 1:
        p1 = outputs.reshape(-1).astype(np.float64)
        probs = np.stack([1.0 - p1, p1], axis=1)
    else:
        probs = outputs.reshape(len(outputs), -1).astype(np.float64)
    columns: dict[str, Any] = {f"{target}_pred": classes[probs.argmax(axis=1)]}
    for j, name in enumerate(spec.classes):
        columns[f"{target}_prob_{name}"] = probs[:, j]
    return columns


def write_predictions(
    model: Any, source: Any, keep: list[str], spec: Any, output: str, kind: str
) -> int:
    """Predict batch by batch and stream the rows to `output`; returns the row count.

    Columns: the `keep` columns as read (their own types from Parquet; from a
    CSV, strings unless also a numeric feature), `<target>_pred` (a number,
    or the predicted label), then for classification `<target>_prob_<class>`.
    """
    import pyarrow as pa

    path = Path(output)
    if not path.parent.is_dir():
        raise CliError(f"--output {output!r}: directory {path.parent} does not exist")
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    writer: Any = None
    schema: Any = None
    rows = 0
    try:
        for batch in source:
            x = batch[0]
            columns: dict[str, Any] = {}
            if keep:
                kept = batch[1]
                for j, name in enumerate(keep):
                    columns[name] = pa.array(kept[:, j].tolist())
            outputs = np.asarray(model.predict_on_batch(x))
            for name, values in prediction_columns(spec, outputs).items():
                columns[name] = pa.array(values.tolist() if values.dtype == object else values)
            table = pa.table(columns)
            if writer is None:
                nulls = [f.name for f in table.schema if pa.types.is_null(f.type)]
                for name in nulls:  # a kept column empty in the first batch: text
                    table = table.set_column(
                        table.schema.get_field_index(name), name, table[name].cast(pa.string())
                    )
                schema = table.schema
                writer = _open_writer(tmp, schema, kind)
            else:
                table = table.cast(schema, safe=False)
            writer.write_table(table) if kind == "parquet" else writer.write(table)
            rows += table.num_rows
        if writer is None:
            raise CliError("predict: the data has no rows")
        writer.close()
        writer = None
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return rows


def _open_writer(path: Path, schema: Any, kind: str) -> Any:
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(path), schema)
    import pyarrow.csv as pacsv

    return pacsv.CSVWriter(str(path), schema)
