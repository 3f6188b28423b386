"""Everything a resume needs, captured and restored at a batch boundary.

NOTE [ Exact resume ]
A training state is taken after a batch has been fully applied: weights,
optimizer (and pending accumulated gradients), metric sums of the epoch so
far, the data source's position (its order is recomputed from seeds, then the
consumed batches skipped), callback states, the history, and every RNG
(torch, CUDA, NumPy's global, Python's). Restoring all of it before the next
batch makes the rest of the run bit-identical on CPU to one never stopped.

On disk it is one safetensors file (tensors) whose metadata holds the rest as
JSON; nothing in it is ever unpickled or executed. Writes go to a temporary
file that is fsynced and renamed over the old one, and the previous file is
kept as a fallback, so a crash during a save loses nothing.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

if TYPE_CHECKING:
    from batchfit._engine.step import Step
    from batchfit.callbacks import Callback, History
    from batchfit.data import Source
    from batchfit.models import Model

__all__ = ["capture", "read_state", "restore", "write_state"]

FORMAT = 1


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


# -- capture / restore ----------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": list(np.random.get_state()),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def capture(
    model: Model,
    step: Step,
    source: Source,
    callbacks: list[Callback],
    history: History,
    *,
    epoch: int,
    batches_done: int,
    source_epoch: int | None = None,
) -> dict[str, Any]:
    """The state after `batches_done` batches of `epoch` (see NOTE [ Exact resume ])."""
    pending_grads = None
    if step.micro_step:
        pending_grads = [p.grad for p in model.module.parameters()]
    return {
        "format": FORMAT,
        "epoch": epoch,
        "batches_done": batches_done,
        "source_epoch": source_epoch,
        "first_batch": step.first_batch_spec,
        "model": model.module.state_dict(),
        "optimizer": step.optimizer.state_dict() if step.optimizer is not None else None,
        "micro_step": step.micro_step,
        "pending_grads": pending_grads,
        "scaler": step.scaler.state_dict() if step.scaler is not None else None,
        "metrics": [t.clone() for t in step.metric_states()],
        "source": source.state_dict(),
        "callbacks": [[type(cb).__name__, cb.state_dict()] for cb in callbacks],
        "history": history.state_dict(),
        "rng": _rng_state(),
    }


def restore_model(model: Model, step: Step, state: dict[str, Any]) -> None:
    """Weights, optimizer and pending gradients (building lazy shapes first)."""
    spec = state.get("first_batch")
    if not step.ready and spec is not None:
        x_shape, y_shape, y_dtype = spec
        x = torch.zeros(x_shape, device=step.device)
        dtypes = {
            "float32": torch.float32,
            "float64": torch.float64,
            "int64": torch.int64,
            "int32": torch.int32,
            "float16": torch.float16,
            "bfloat16": torch.bfloat16,
        }
        if y_dtype is not None and y_dtype not in dtypes:
            raise ValueError(f"the backup names an unexpected target dtype {y_dtype!r}")
        y = None if y_shape is None else torch.zeros(y_shape, dtype=dtypes[y_dtype])
        step.prepare(x, y)
    if not step.ready:
        raise RuntimeError("cannot restore into a model whose shapes are unknown")
    model.module.load_state_dict(state["model"])
    if state.get("optimizer") is not None and step.optimizer is not None:
        step.optimizer.load_state_dict(state["optimizer"])
    step.micro_step = int(state.get("micro_step", 0))
    grads = state.get("pending_grads")
    if grads is not None:
        for p, g in zip(model.module.parameters(), grads):
            p.grad = None if g is None else g.to(p.device)
    if state.get("scaler") is not None and step.scaler is not None:
        step.scaler.load_state_dict(state["scaler"])


def restore(
    model: Model,
    step: Step,
    source: Source,
    callbacks: list[Callback],
    history: History,
    state: dict[str, Any],
) -> None:
    """Everything but the metric sums (the loop loads those after its epoch reset)."""
    restore_model(model, step, state)
    source.load_state_dict(state["source"])
    saved = state.get("callbacks", [])
    for i, cb in enumerate(callbacks):
        if i < len(saved) and saved[i][0] == type(cb).__name__:
            cb.load_state_dict(saved[i][1])
    history.load_state_dict(state["history"])
    _set_rng_state(state["rng"])


def load_metric_states(step: Step, states: list[torch.Tensor]) -> None:
    own = step.metric_states()
    if len(own) != len(states):
        raise ValueError(f"the backup holds {len(states)} metric states, the model has {len(own)}")
    for mine, saved in zip(own, states):
        mine.copy_(saved)


# -- files ------------------------------------------------------------------------------------
def write_state(
    state: dict[str, Any], path: str | os.PathLike[str], keep_previous: bool = True
) -> None:
    """Write atomically: temp file, fsync, keep the old file as `.prev`, rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    meta = json.dumps(_flatten(state, tensors, "s"))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"batchfit_state": meta})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if keep_previous and target.exists():
            os.replace(target, target.with_name(target.name + ".prev"))
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
