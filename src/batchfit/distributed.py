"""Many processes with torchrun: detection, process group, and the few collectives used.

NOTE [ Distributed training ]
Under `torchrun` (WORLD_SIZE, RANK and LOCAL_RANK set), `fit` trains with
PyTorch's DistributedDataParallel: each rank reads its own shard of every
source (`source.shard(rank, world_size)`), so the global batch is
`batch_size * world_size`; DDP averages gradients; metric sums are added
across ranks at the end of each epoch and evaluation, so logs (and decisions
taken from them, like early stopping) are the same on every rank. Ranks whose
shard runs out first join DDP's `Join` context instead of hanging. Only rank 0
prints and writes files; each rank backs up its own data position.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")

__all__ = [
    "OtherRankFailed",
    "agree",
    "all_reduce_sum_",
    "average_gradients",
    "broadcast_",
    "barrier",
    "gather_objects",
    "init",
    "is_distributed",
    "is_main",
    "local_rank",
    "on_main",
    "rank",
    "say",
    "sum_over_ranks",
    "torchrun_env",
    "world_size",
]


def torchrun_env() -> bool:
    """Whether this process was started by torchrun (or an equivalent launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def is_distributed() -> bool:
    """Whether a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or a single process): the one that prints and writes files."""
    return rank() == 0


def init(backend: str | None = None, timeout_seconds: float = 1800) -> bool:
    """Start the process group from torchrun's environment unless one runs already.

    Args:
        backend: 'nccl' on CUDA, 'gloo' otherwise, by default.
        timeout_seconds: how long collectives wait before failing.

    Returns:
        True when training is distributed (more than one rank).
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return is_distributed()
    if not torchrun_env():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_seconds))
    return is_distributed()


def device() -> torch.device:
    """This rank's device: `cuda:LOCAL_RANK` when CUDA is there, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def all_reduce_sum_(tensors: Sequence[torch.Tensor]) -> None:
    """Add each tensor across ranks, in place (one collective per tensor)."""
    if not is_distributed():
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def average_gradients(
    grads: Sequence[torch.Tensor | None], variables: Sequence[torch.Tensor]
) -> list[torch.Tensor | None]:
    """Each gradient averaged over the ranks, as DDP averages them (divide, then add).

    For a subclassed model's own `train_step`, whose forward does not pass through
    DDP (NOTE [ A user's train_step under torchrun ] in `_engine/step.py`). One
    collective for the values and one for which gradients exist: a gradient that
    is None on some ranks counts as zeros there, and stays None only where it is
    None on every rank, so the ranks never disagree on what they send.
    """
    if not is_distributed():
        return list(grads)
    world = dist.get_world_size()
    where = collective_device()
    present = torch.tensor([g is not None for g in grads], dtype=torch.int64, device=where)
    dist.all_reduce(present, op=dist.ReduceOp.SUM)
    shares: list[torch.Tensor | None] = []
    for g, v, seen in zip(grads, variables, present.tolist(), strict=True):
        value = g if g is not None else torch.zeros_like(v)
        shares.append(value.detach().to(where).div(world) if seen else None)
    sent = [t for t in shares if t is not None]
    if not sent:
        return [None] * len(shares)
    flat = torch.cat([t.reshape(-1) for t in sent])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out: list[torch.Tensor | None] = []
    offset = 0
    for t, v in zip(shares, variables, strict=True):
        if t is None:
            out.append(None)
            continue
        n = t.numel()
        out.append(flat[offset : offset + n].view(t.shape).to(device=v.device, dtype=t.dtype))
        offset += n
    return out


def collective_device() -> torch.device:
    """Where small tensors for collectives live: NCCL reduces only CUDA tensors."""
    if is_distributed() and dist.get_backend() == "nccl":
        return device()
    return torch.device("cpu")


def all_true(flag: bool) -> bool:
    """True on every rank when `flag` is true on every rank."""
    if not is_distributed():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def any_true(flag: bool) -> bool:
    """True on every rank when `flag` is true on some rank."""
    return not all_true(not flag)


def broadcast_(tensors: Sequence[torch.Tensor], src: int) -> None:
    """Copy rank `src`'s tensors to every rank, in place (through the collective device)."""
    if not is_distributed():
        return
    where = collective_device()
    for t in tensors:
        moved = t.to(where)
        dist.broadcast(moved, src=src)
        if moved is not t:
            t.copy_(moved)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank (pickled between our own ranks)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


# -- printing once, failing together, adding counts --------------------------------------------
# For code that runs the same steps on every rank outside the training loop
# (the `batchfit` command's set-up, reading files, writing a run directory).


def say(message: str) -> None:
    """Print on rank 0 (the only process under torchrun that prints)."""
    if is_main():
        print(message, flush=True)


class OtherRankFailed(Exception):
    """This rank stops because another rank failed and reports why (exit code 1, no message)."""


def agree(fn: Callable[[], T]) -> T:
    """`fn()` on every rank; when it fails on any rank, it fails on all.

    The lowest failing rank raises its own error (printed once) and the others
    raise `OtherRankFailed`, so every rank leaves together and none waits in a
    collective for one that has gone. One process: just `fn()`.

    Example:
        files = agree(lambda: expand(patterns))  # a missing file stops every rank
    """
    error: Exception | None = None
    try:
        result = fn()
    except Exception as e:
        error = e
    if is_distributed():
        failed = gather_objects(error is not None)
        if any(failed):
            if error is not None and failed.index(True) == rank():
                raise error
            raise OtherRankFailed from error
    if error is not None:
        raise error
    return result


def on_main(fn: Callable[[], T]) -> T:
    """`fn()` on rank 0 only; every rank returns its result (or fails with it).

    The result travels to the other ranks pickled (`gather_objects`), so it
    should be small: a decision, a path, a few numbers.
    """
    if not is_distributed():
        return fn()
    outcome: tuple[bool, Any] | None = None
    error: Exception | None = None
    if is_main():
        try:
            outcome = (True, fn())
        except Exception as e:
            error, outcome = e, (False, None)
    ok, result = gather_objects(outcome)[0]
    if not ok:
        if error is not None:
            raise error
        raise OtherRankFailed
    return result


def sum_over_ranks(value: int | None) -> int | None:
    """`value` added over the ranks (None when any rank has none); one process: `value`."""
    if not is_distributed():
        return value
    values = gather_objects(value)
    return None if any(v is None for v in values) else sum(values)
