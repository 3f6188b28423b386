"""What identifies a source's data, so a resume can tell it changed (NOTE below).

NOTE [ Data fingerprints ]
A resume recomputes the sample order and skips the batches already done, which
is exact only if the data is the data the backup was taken on. Each source can
say what it reads, cheaply (`Source.fingerprint()`):
- files: path, size, modification time, and a hash of the first and last
  64 KiB (a grown, shrunk, rewritten or touched file differs; a same-size edit
  in the middle that kept the modification time does not, which is the price
  of not reading the whole file);
- arrays in memory: shape, dtype and a hash of up to 1,024 evenly spaced rows;
- image folders: the list of files and their sizes;
- a SQL query with a key (`_sql.py`): the query, the masked database URI,
  the row count, the largest key and a hash of the unit boundary keys;
- generators and a user's iterables: None, they cannot be checked.
The backup stores it; the resume compares it and refuses with an error naming
the file and what changed (`describe_change`), unless told to go on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["array_fingerprint", "describe_change", "files_fingerprint"]

_BLOCK = 64 * 1024
_SAMPLED_ROWS = 1024


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def files_fingerprint(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Size, modification time and edge hashes of each file, in order."""
    entries = []
    for path in paths:
        stat = os.stat(path)
        with open(path, "rb") as f:
            head = f.read(_BLOCK)
            f.seek(max(stat.st_size - _BLOCK, 0))
            tail = f.read(_BLOCK)
        entries.append(
            {
                "path": os.fspath(path),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "head": _digest(head),
                "tail": _digest(tail),
            }
        )
    return {"kind": "files", "files": entries}


def array_fingerprint(arrays: Sequence[Any]) -> dict[str, Any]:
    """Shapes, dtypes and a hash of evenly spaced rows of each array (None entries kept)."""
    entries: list[Any] = []
    for a in arrays:
        if a is None:
            entries.append(None)
            continue
        if isinstance(a, dict):
            entries.append({k: array_fingerprint([v])["arrays"][0] for k, v in sorted(a.items())})
            continue
        if isinstance(a, (list, tuple)):
            entries.append(array_fingerprint(list(a))["arrays"])
            continue
        arr = np.asarray(a.cpu() if hasattr(a, "cpu") else a)
        n = arr.shape[0] if arr.ndim else 1
        rows = np.unique(np.linspace(0, max(n - 1, 0), num=min(n, _SAMPLED_ROWS)).astype(np.int64))
        sample = np.ascontiguousarray(arr[rows] if arr.ndim else arr)
        entries.append(
            {"shape": list(arr.shape), "dtype": str(arr.dtype), "hash": _digest(sample.tobytes())}
        )
    return {"kind": "arrays", "arrays": entries}


def describe_change(saved: Any, current: Any) -> str | None:
    """What differs between two fingerprints, in words; None when they agree."""
    if saved == current:
        return None
    if saved is None or current is None:
        return "the backup's data could not be compared with this source's"
    if saved.get("kind") != current.get("kind"):
        return (
            f"the backup was taken on {saved.get('kind')}, the source reads {current.get('kind')}"
        )
    if saved["kind"] == "files":
        return _files_change(saved["files"], current["files"])
    if saved["kind"] == "arrays":
        for i, (old, new) in enumerate(zip(saved["arrays"], current["arrays"])):
            if old != new:
                if isinstance(old, dict) and isinstance(new, dict) and "shape" in old:
                    if old["shape"] != new["shape"]:
                        return f"array {i} has shape {new['shape']}, the backup's {old['shape']}"
                    if old["dtype"] != new["dtype"]:
                        return f"array {i} has dtype {new['dtype']}, the backup's {old['dtype']}"
                return f"array {i} holds different values than when the backup was taken"
        return "the arrays differ from the backup's"
    if saved["kind"] == "sql":
        return _sql_change(saved, current)
    if saved.get("count") != current.get("count"):
        return f"{current.get('count')} {saved['kind']} now, {saved.get('count')} in the backup"
    return f"the {saved['kind']} differ from the backup's (names or labels)"


def _sql_change(saved: dict[str, Any], current: dict[str, Any]) -> str:
    for key, what in (
        ("query", "the query"),
        ("database", "the database"),
        ("order_by", "order_by"),
    ):
        if saved.get(key) != current.get(key):
            return f"{what} is {current.get(key)!r}, the backup's {saved.get(key)!r}"
    if saved.get("count") != current.get("count"):
        return (
            f"the query returns {current.get('count')} rows now, {saved.get('count')} in the backup"
        )
    if saved.get("max_key") != current.get("max_key"):
        return (
            f"the query's largest {saved.get('order_by')} is {current.get('max_key')} now, "
            f"{saved.get('max_key')} in the backup"
        )
    return "rows were added, removed or rekeyed in the query's result since the backup"


def _files_change(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> str:
    old_paths = [e["path"] for e in saved]
    new_paths = [e["path"] for e in current]
    if old_paths != new_paths:
        added = sorted(set(new_paths) - set(old_paths))
        gone = sorted(set(old_paths) - set(new_paths))
        parts = []
        if added:
            parts.append(f"new files {added[:3]}")
        if gone:
            parts.append(f"missing files {gone[:3]}")
        return ", ".join(parts) or "the files are listed in another order"
    for old, new in zip(saved, current):
        path = new["path"]
        if old["size"] != new["size"]:
            return f"{path} changed size from {old['size']} to {new['size']} bytes"
        if old["head"] != new["head"] or old["tail"] != new["tail"]:
            return f"{path} has different contents (same size)"
        if old["mtime_ns"] != new["mtime_ns"]:
            return f"{path} was modified after the backup (its modification time changed)"
    return "the files differ from the backup's"
