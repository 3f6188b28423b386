"""Backups on disk: what a resume needs, written atomically and read back safely.

NOTE [ Exact resume ]
A training state is taken after a batch has been fully applied. Each owner
saves its own part (`state_dict()`): the step (weights, optimizer with its
pending accumulated gradients and loss scaler, metric sums of the epoch so
far), the epoch iterator (the data source's position: its order is
recomputed from seeds, then the consumed batches skipped), the callbacks
(the history among them), and the RNGs (torch, CUDA, NumPy's global,
Python's). `FitRun.state_dict()` in `loop.py` nests them under
`{epoch, batches_done}`. Restoring all of it before the next batch makes the
rest of the run bit-identical on CPU to one never stopped.

On disk it is one safetensors file (tensors) whose metadata holds the rest as
JSON; nothing in it is ever unpickled or executed. Writes go to a temporary
file that is fsynced and renamed over the old one, and the previous file is
kept as a fallback, so a crash during a save loses nothing.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from batchfit._io import atomic_write, refuse_symlink, remove_orphans

__all__ = [
    "TARGET_DTYPES",
    "Checkpointer",
    "checked_first_batch",
    "backup_name",
    "read_state",
    "rng_state",
    "set_rng_state",
    "write_state",
]

#: 2: each owner nests its own state (1 was one flat capture)
FORMAT = 2


# -- nested values <-> (JSON, tensors) ----------------------------------------------------
def _flatten(value: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": path}
    if isinstance(value, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(value).copy())
        return {"__ndarray__": path}
    if isinstance(value, dict):
        return {"__dict__": [[k, _flatten(v, tensors, f"{path}/{k}")] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_flatten(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot save a value of type {type(value).__name__} at {path}")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy()
        if "__tuple__" in value:
            return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
    return value


# -- RNGs -------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": list(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- files ------------------------------------------------------------------------------------
def write_state(
    state: dict[str, Any], path: str | os.PathLike[str], keep_previous: bool = True
) -> None:
    """Write atomically, keeping the old file as `.prev` (NOTE [ Safe writes ] in `_io.py`)."""
    tensors: dict[str, torch.Tensor] = {}
    meta = json.dumps(_flatten(state, tensors, "s"))
    atomic_write(path, save(tensors, metadata={"batchfit_state": meta}), keep_previous)


def read_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state written by `write_state`; a damaged file is a clear error."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {}).get("batchfit_state")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{path} is not a readable batchfit backup (truncated or corrupt): {e}"
        ) from None
    if meta is None:
        raise ValueError(f"{path} is a safetensors file but not a batchfit backup")
    try:
        state = _unflatten(json.loads(meta), tensors)
    except (json.JSONDecodeError, KeyError) as e:
        raise ValueError(f"{path}: the backup's metadata is damaged ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a batchfit backup of format {FORMAT}")
    return state


# -- one rank's backup file ---------------------------------------------------------------------
def backup_name() -> str:
    """This rank's file name: each rank saves its own data position and RNG states."""
    from batchfit import distributed

    if distributed.world_size() > 1:
        return f"backup-rank{distributed.rank()}.safetensors"
    return "backup.safetensors"


class Checkpointer:
    """Saves and loads the training state in a folder (or a given file), keeping one previous copy.

    Args:
        where: a folder (this rank's `backup_name()` inside it) or a backup file.
    """

    def __init__(self, where: str | os.PathLike[str]) -> None:
        where = Path(where)
        self.path = where if where.is_file() else where / backup_name()

    @property
    def previous(self) -> Path:
        return self.path.with_name(self.path.name + ".prev")

    def save(self, state: dict[str, Any]) -> None:
        write_state(state, self.path)

    def load(self) -> dict[str, Any] | None:
        """The newest readable state, the previous one if that is damaged, or None.

        Temporary files of saves killed midway are removed first.
        """
        # safetensors' own `.tmpXXXXXX` files, left by backups that older versions of
        # batchfit wrote through `save_file` and a kill interrupted
        remove_orphans(self.path.parent, self.path.name, (".tmp??????",))
        for path in (self.path, self.previous):
            refuse_symlink(path)
        if not self.path.exists() and not self.previous.exists():
            return None
        errors = []
        for candidate in (self.path, self.previous):
            if candidate.exists():
                try:
                    return read_state(candidate)
                except ValueError as e:
                    errors.append(str(e))
        raise ValueError("no usable backup: " + "; ".join(errors))

    def remove(self) -> None:
        for path in (self.path, self.previous):
            path.unlink(missing_ok=True)


# -- the first batch's shapes, read back from a backup ------------------------------------
#: dtypes a backup may name for the first batch's targets (anything else is refused)
TARGET_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

#: the most elements per sample a backup may ask the shape-building dummy batch for,
#: beyond the number of weights it holds (128 MiB of float32)
_SPEC_FLOOR = 2**25


def checked_first_batch(spec: Any, weights: Mapping[str, torch.Tensor]) -> tuple[Any, Any, Any]:
    """The first-batch shapes of a backup, for a one-row dummy batch, once they are plausible.

    The dummy batch is allocated from sizes read from the file, so they are checked
    first: whole positive numbers, a few dimensions, and no more elements per sample
    than the backup holds weights (or `_SPEC_FLOOR`), so a doctored file cannot make
    a resume allocate gigabytes.
    """
    if not (isinstance(spec, (list, tuple)) and len(spec) == 3):
        raise ValueError(f"the backup's first-batch record is malformed: {spec!r}")
    x_shape, y_shape, y_dtype = spec
    if y_dtype is not None and y_dtype not in TARGET_DTYPES:
        raise ValueError(f"the backup names an unexpected target dtype {y_dtype!r}")
    budget = max(_SPEC_FLOOR, sum(t.numel() for t in weights.values()))
    shapes: list[list[int] | None] = []
    for what, shape in (("input", x_shape), ("target", y_shape)):
        if shape is None and what == "target":
            shapes.append(None)
            continue
        if not (
            isinstance(shape, (list, tuple))
            and 1 <= len(shape) <= 8
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        ):
            raise ValueError(f"the backup's first-batch {what} shape is malformed: {shape!r}")
        per_sample = math.prod(shape[1:])
        if per_sample > budget:
            raise ValueError(
                f"the backup's first-batch {what} shape {list(shape)} asks for {per_sample:,} "
                f"elements per sample, more than the {budget:,} its weights justify; "
                "refusing to allocate it (is the backup file damaged or doctored?)"
            )
        shapes.append([1, *shape[1:]])
    return shapes[0], shapes[1], y_dtype
