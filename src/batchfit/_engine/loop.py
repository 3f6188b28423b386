"""Epochs, validation, callbacks and stopping: the loop behind `fit`.

The batch loop reads top to bottom: convert, train step, metric sums, batch
callbacks (given lazy logs, see NOTE [ Lazy logs ]), stop check. Nothing in
it reads a value back from the device unless a callback asks.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.distributed.algorithms.join import Join

from batchfit import distributed
from batchfit._engine import state as state_module
from batchfit._engine.adapters import class_weights_for, shard_for_ranks, unpack
from batchfit._engine.logs import Logs
from batchfit._engine.passes import evaluate_loop
from batchfit._engine.step import NonFiniteLoss, Step, batch_size_of
from batchfit.callbacks import BackupAndRestore, CallbackList, History, ProgbarLogger
from batchfit.callbacks._backup import load_backup
from batchfit.data import Source, num_batches

if TYPE_CHECKING:
    from batchfit.models import Model

__all__ = ["fit_loop", "resolve_verbose"]


def resolve_verbose(verbose: int | str) -> int:
    """Keras' 'auto': a live bar on a terminal, one line per epoch otherwise."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _epoch_batches(
    source: Source, epoch: int, steps: int | None, carry: dict[str, Any], start: int
) -> Iterator[Any]:
    """The batches of one epoch; with `steps`, exactly that many, continuing the stream."""
    if steps is None:
        source.set_epoch(epoch)
        yield from source
        return
    taken = start
    while taken < steps:
        if carry.get("iterator") is None:
            carry.setdefault("source_epoch", epoch)
            source.set_epoch(carry["source_epoch"])
            carry["iterator"] = iter(source)
            carry["empty"] = True
        for batch in carry["iterator"]:
            carry["empty"] = False
            yield batch
            taken += 1
            if taken == steps:
                return
        if carry["empty"]:
            raise ValueError("the data source yielded no batches")
        carry["iterator"] = None
        carry["source_epoch"] += 1


class FitState:
    """Where `fit` is, for callbacks that save it (BackupAndRestore)."""

    def __init__(
        self,
        model: Model,
        step: Step,
        source: Source,
        callbacks: list[Any],
        history: History,
        carry: dict[str, Any],
    ) -> None:
        self.model, self.step, self.source = model, step, source
        self.callbacks, self.history, self.carry = callbacks, history, carry
        self.epoch = 0
        self.batches_done = 0

    def capture(self) -> dict[str, Any]:
        return state_module.capture(
            self.model,
            self.step,
            self.source,
            self.callbacks,
            self.history,
            epoch=self.epoch,
            batches_done=self.batches_done,
            source_epoch=self.carry.get("source_epoch"),
        )


def fit_loop(
    model: Model,
    step: Step,
    source: Source,
    *,
    epochs: int,
    verbose: int,
    callbacks: list[Any],
    validation: Source | None,
    validation_freq: int,
    validation_steps: int | None,
    class_weight: Mapping[int, float] | None,
    initial_epoch: int,
    steps_per_epoch: int | None,
    resume_from: Any = None,
) -> History:
    history = History()
    cbs_list = list(callbacks)
    ddp = distributed.is_distributed()
    if ddp:
        source = shard_for_ranks(source)
        validation = None if validation is None else shard_for_ranks(validation)
        verbose = verbose if distributed.is_main() else 0
        _prepare_for_ddp(step, source)
    if verbose:
        cbs_list.insert(0, ProgbarLogger(verbose))
    cbs_list.append(history)
    steps = steps_per_epoch if steps_per_epoch is not None else num_batches(source)
    params = {"epochs": epochs, "steps": steps, "verbose": verbose}
    cbs = CallbackList(cbs_list, model, params)
    model.stop_training = False
    model.history = history
    carry: dict[str, Any] = {}
    fit_state = FitState(model, step, source, cbs_list, history, carry)
    backups = [cb for cb in cbs_list if isinstance(cb, BackupAndRestore)]

    start_epoch, skip, pending_metrics = initial_epoch, 0, None
    saved = load_backup(resume_from) if resume_from is not None else None
    if saved is None and backups:
        saved = backups[0].load()
    if saved is not None:
        state_module.restore(model, step, source, cbs_list, history, saved)
        start_epoch, skip = int(saved["epoch"]), int(saved["batches_done"])
        pending_metrics = saved["metrics"] if skip else None
        if saved.get("source_epoch") is not None:
            carry["source_epoch"] = int(saved["source_epoch"])
    elif steps_per_epoch is None:
        # a fresh run reads whole epochs from the top, even after the user peeked
        # at a batch; with steps_per_epoch a stream continues where the last fit left it
        source.rewind()

    cbs.call("on_train_begin", None)
    logs: Mapping[str, float] = {}
    try:
        logs = _epochs(
            model,
            step,
            source,
            cbs,
            fit_state,
            backups,
            carry,
            start_epoch=start_epoch,
            skip=skip,
            pending_metrics=pending_metrics,
            epochs=epochs,
            validation=validation,
            validation_freq=validation_freq,
            validation_steps=validation_steps,
            class_weight=class_weight,
            steps_per_epoch=steps_per_epoch,
        )
    finally:
        # release prefetch threads now rather than at garbage collection
        iterator = carry.pop("iterator", None)
        if iterator is not None:
            iterator.close()
        source.close()
        if validation is not None:
            validation.close()
    cbs.call("on_train_end", logs)
    return history


def _epochs(
    model: Model,
    step: Step,
    source: Source,
    cbs: CallbackList,
    fit_state: FitState,
    backups: list[BackupAndRestore],
    carry: dict[str, Any],
    *,
    start_epoch: int,
    skip: int,
    pending_metrics: list[torch.Tensor] | None,
    epochs: int,
    validation: Source | None,
    validation_freq: int,
    validation_steps: int | None,
    class_weight: Mapping[int, float] | None,
    steps_per_epoch: int | None,
) -> Mapping[str, float]:
    """The epochs of `fit`; returns the last epoch's logs."""
    ddp = distributed.is_distributed()
    logs: Mapping[str, float] = {}
    for epoch in range(start_epoch, epochs):
        cbs.call("on_epoch_begin", epoch, None)
        step.reset_metrics()
        if pending_metrics is not None:
            state_module.load_metric_states(step, pending_metrics)
            pending_metrics = None
        fit_state.epoch = epoch
        # ranks whose shard ends first shadow DDP's collectives instead of hanging
        joined = Join([step.ddp]) if step.ddp is not None else contextlib.nullcontext()
        with joined:
            taken = _train_epoch(
                model,
                step,
                source,
                epoch,
                steps_per_epoch,
                carry,
                cbs,
                class_weight,
                start=skip,
                fit_state=fit_state,
                backups=backups,
            )
        skip = 0
        if ddp:
            step.sync_metrics()
            model.stop_training = distributed.any_true(model.stop_training)
            taken = int(distributed.any_true(taken > 0))
        if taken == 0:
            raise ValueError(f"the training data yielded no batches in epoch {epoch + 1}")
        logs = dict(Logs(step.results))
        logs.update(_skipped_rows(source))
        _check_epoch_loss(step, logs, epoch, cbs)
        if (
            validation is not None
            and (epoch + 1) % validation_freq == 0
            and not model.stop_training
        ):
            cbs.call("on_test_begin", None)
            val = evaluate_loop(model, step, validation, steps=validation_steps, callbacks=cbs)
            cbs.call("on_test_end", val)
            logs.update({f"val_{k}": v for k, v in val.items()})
        cbs.call("on_epoch_end", epoch, logs)
        if backups and not model.stop_training:
            fit_state.epoch, fit_state.batches_done = epoch + 1, 0
            for backup in backups:
                backup.after_epoch(fit_state)
        if model.stop_training:
            break
    return logs


_SKIP_COUNTERS = ("bad_rows_skipped", "nan_rows_skipped")


def _skipped_rows(source: Source) -> dict[str, float]:
    """Rows a source skipped this epoch (on_bad_rows/on_nan="skip"), summed over ranks."""
    stats = getattr(source, "stats", None) or {}
    # only the counters of skipping the user asked for, so the history stays quiet otherwise
    keys = [
        key
        for key, option in zip(_SKIP_COUNTERS, ("on_bad_rows", "on_nan"))
        if key in stats and getattr(source, option, None) == "skip"
    ]
    if not keys:
        return {}
    counts = [float(stats[k]) for k in keys]
    if distributed.is_distributed():
        t = torch.tensor(counts, dtype=torch.float64, device=distributed.collective_device())
        distributed.all_reduce_sum_([t])
        counts = t.tolist()
    return dict(zip(keys, counts))


def _prepare_for_ddp(step: Step, source: Source) -> None:
    """Build lazy shapes from a first batch, then wrap the module in DDP (all ranks)."""
    if not step.ready:
        first = next(iter(source), None)
        if distributed.any_true(first is None):  # every rank raises, none waits in DDP
            raise ValueError("a rank's shard of the training data is empty: use fewer processes")
        assert first is not None
        x, y, _ = unpack(first)
        xt, yt, _ = step.to_tensors(x, y)
        step.prepare(xt, yt)
        source.set_epoch(source.epoch)
        source.load_state_dict({**source.state_dict(), "batches_done": 0})
    step.wrap_ddp()


def _train_epoch(
    model: Model,
    step: Step,
    source: Source,
    epoch: int,
    steps_per_epoch: int | None,
    carry: dict[str, Any],
    cbs: CallbackList,
    class_weight: Mapping[int, float] | None,
    *,
    start: int,
    fit_state: FitState,
    backups: list[BackupAndRestore],
) -> int:
    """Train one epoch from batch `start`; returns the number of batches done."""
    want_begin, want_end = cbs.wants_train_batch_begin, cbs.wants_train_batch_end
    results = step.results
    taken = start
    batches = _epoch_batches(source, epoch, steps_per_epoch, carry, start)
    for batch_index, batch in enumerate(batches, start):
        x, y, sw = unpack(batch)
        if class_weight is not None and y is not None:
            cw = class_weights_for(y, class_weight)
            sw = cw if sw is None else np.asarray(sw, dtype=np.float32) * cw
        xt, yt, swt = step.to_tensors(x, y, sw)
        n = batch_size_of(xt)
        if n == 0:
            continue  # nothing to learn from (e.g. all its images were skipped as unreadable)
        if want_begin:
            cbs.batch("on_train_batch_begin", batch_index, None)
        try:
            loss, y_pred = step.train(xt, yt, swt)
        except NonFiniteLoss as e:
            if not cbs.handles_nonfinite_loss:
                where = f"at epoch {epoch + 1}, batch {batch_index + 1}"
                raise NonFiniteLoss(e.value, where) from None
            cbs.batch("on_train_batch_end", batch_index, {"loss": e.value})
            model.stop_training = True
            return batch_index + 1
        step.update_metrics(loss, yt, y_pred, swt, n)
        if want_end:
            cbs.batch("on_train_batch_end", batch_index, Logs(results))
        taken = batch_index + 1
        if backups:
            fit_state.batches_done = taken
            for backup in backups:
                backup.after_batch(fit_state)
        if model.stop_training:
            break
    return taken


def _check_epoch_loss(step: Step, logs: Mapping[str, float], epoch: int, cbs: CallbackList) -> None:
    """On devices where the step does not check each loss, check the epoch's."""
    loss = logs.get("loss")
    if loss is not None and not math.isfinite(loss) and not cbs.handles_nonfinite_loss:
        raise NonFiniteLoss(loss, f"in epoch {epoch + 1}", checked_per_batch=False)
