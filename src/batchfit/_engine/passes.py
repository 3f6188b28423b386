"""One pass without training: `evaluate` (also `fit`'s validation) and `predict`.

Neither reads a value back from the device per batch unless a callback asks;
under torchrun, `evaluate` adds the ranks' metric sums and `predict` shares
the batches of a replayable source between ranks (see `predict_loop`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from batchfit import distributed
from batchfit._engine.adapters import shard_for_ranks
from batchfit._engine.step import Step
from batchfit.data import Source

if TYPE_CHECKING:
    from batchfit.callbacks import CallbackList

__all__ = ["evaluate_loop", "predict_loop"]


def evaluate_loop(
    step: Step,
    source: Source,
    *,
    steps: int | None,
    callbacks: CallbackList | None,
) -> dict[str, float]:
    """One pass computing loss and metrics; returns floats by name."""
    step.reset_metrics()
    source = shard_for_ranks(source)
    source.set_epoch(0)
    source.rewind()  # a pass cut short by `steps` must not move the next one
    want = callbacks is not None and callbacks.wants_test_batch
    seen = 0
    for i, raw in enumerate(itertools.islice(source, steps)):
        if want and callbacks is not None:
            callbacks.batch("on_test_batch_begin", i, None)
        if step.test_batch(raw) is None:
            continue  # e.g. every image of the batch was unreadable and skipped
        seen += 1
        if want and callbacks is not None:
            callbacks.batch("on_test_batch_end", i, step.logs())
    if distributed.is_distributed():
        step.compiled_metrics.sync()
        seen = int(distributed.any_true(seen > 0))
    if seen == 0:
        raise ValueError("the evaluation data yielded no batches")
    return dict(step.logs())


def predict_loop(
    step: Step,
    source: Source,
    *,
    steps: int | None,
    callbacks: CallbackList | None,
    sink: Any = None,
) -> Any:
    """Predictions for every batch, concatenated (or streamed to `sink`).

    Under torchrun, with a source every rank reads alike (`Source.replayable`),
    rank r predicts batches r, r + N, ... and the outputs are gathered in batch
    order: every rank returns all predictions, and rank 0 alone writes `sink`.
    """
    source.set_epoch(0)
    source.rewind()
    want = callbacks is not None and callbacks.wants_predict_batch
    outputs: list[Any] = []

    def emit(i: int, y_pred: Any) -> None:
        if want and callbacks is not None:
            callbacks.batch("on_predict_batch_begin", i, None)
            callbacks.batch("on_predict_batch_end", i, {"outputs": y_pred})
        if sink is not None:
            sink.write(y_pred)
        else:
            outputs.append(y_pred)

    batches = itertools.islice(source, steps)
    if distributed.is_distributed() and getattr(source, "replayable", False):
        _predict_split(step, batches, emit, gather_to_all=sink is None)
    else:
        for i, batch in enumerate(batches):
            emit(i, step.predict_batch(batch))
    if sink is not None:
        return None
    if not outputs:
        raise ValueError("the prediction data yielded no batches")
    return _concat(outputs)


def _predict_split(step: Step, batches: Iterator[Any], emit: Any, *, gather_to_all: bool) -> None:
    """Each rank predicts every N-th batch; one gather per N batches restores the order."""
    import torch.distributed as dist

    rank, world = distributed.rank(), distributed.world_size()
    mine: Any = None
    first = 0  # index of the round's first batch
    done = False
    while not done:
        count = 0
        for offset, batch in enumerate(itertools.islice(batches, world)):
            count = offset + 1
            if offset == rank:
                mine = step.predict_batch(batch)
        done = count < world
        if count == 0:
            break
        if gather_to_all:
            round_outputs = distributed.gather_objects(mine)
        else:
            gathered: list[Any] | None = [None] * world if rank == 0 else None
            dist.gather_object(mine, gathered, dst=0)
            round_outputs = gathered or []
        for offset, y_pred in enumerate(round_outputs[:count]):
            emit(first + offset, y_pred)
        first += count
        mine = None


def _concat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, Mapping):
        return {k: np.concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(np.concatenate([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate(parts)
