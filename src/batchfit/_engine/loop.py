"""Epochs, validation, callbacks and stopping: the loop behind `fit`.

A `FitRun` is one call of `fit`. Its batch loop reads top to bottom: batch
callbacks, one `Step.train_batch` call (which prepares the batch, trains and
adds to the metric sums), lazy logs for the callbacks that look (NOTE [ Lazy
logs ]), the stop check and the backup. Nothing in it reads a value back from
the device unless a callback asks. Its state is the nesting of its owners'
states (NOTE [ Exact resume ] in `checkpoint.py`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from torch.distributed.algorithms.join import Join

from batchfit import distributed
from batchfit._engine.adapters import shard_for_ranks
from batchfit._engine.checkpoint import FORMAT, Checkpointer, rng_state, set_rng_state
from batchfit._engine.epoch_iterator import EpochIterator
from batchfit._engine.passes import evaluate_loop
from batchfit._engine.step import NonFiniteLoss, Step
from batchfit.data import Source

logger = logging.getLogger("batchfit")
_END = object()  # an iterator's end, for `next(iterator, _END)`

if TYPE_CHECKING:
    from batchfit.callbacks import CallbackList
    from batchfit.models import Model

__all__ = ["FitRun"]


# NOTE [ Uneven shards ]
# Under torchrun, shards may hold different numbers of batches. A rank that runs
# out first enters DDP's `Join`: for each step the others still take, it adds
# zeros to the gradient all-reduce (the sum is still divided by the initial
# world size), and when all have joined DDP copies the weights and buffers of
# the rank that trained longest to every rank. The joined rank's optimizer did
# not step meanwhile, so `Step.follow_longest_rank` copies that rank's optimizer
# state (moments, step counts) too: the next epoch starts identical everywhere,
# as in a one-process replay of the same global batches.
# A subclassed model's own train_step averages its gradients in
# `optimizer.apply` (NOTE [ A user's train_step under torchrun ] in step.py),
# collectives `Join` cannot stand in for, since only the user's code knows how
# many it makes. Such a fit runs in lockstep instead: before each batch the
# ranks agree (one small all-reduce) that every one of them has a batch and
# none was told to stop, and all stop at the first that has not; the batches
# left on longer shards are not trained on that epoch (a warning says so).


class FitRun:
    """One call of `fit`: the epochs, their validation, and the state a backup saves.

    Args:
        model: the model being trained (callbacks read `model.stop_training`).
        step: the model's step.
        source: the training batches; `steps_per_epoch` as in `fit`.
        callbacks: the whole list (progress bar and History included), already built.
        epochs, initial_epoch, validation_freq, validation_steps, class_weight: as in `fit`.
        validation: the validation batches, or None.
        verbose: the resolved verbosity, passed on to the callbacks' `params`.
    """

    def __init__(
        self,
        model: Model,
        step: Step,
        source: Source,
        callbacks: CallbackList,
        *,
        epochs: int,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation: Source | None = None,
        validation_freq: int = 1,
        validation_steps: int | None = None,
        class_weight: Mapping[int, float] | None = None,
        verbose: int = 0,
    ) -> None:
        if distributed.is_distributed():
            source = shard_for_ranks(source)
            validation = None if validation is None else shard_for_ranks(validation)
            _prepare_for_ddp(step, source)
        self.model, self.step, self.callbacks = model, step, callbacks
        self.data = EpochIterator(source, steps_per_epoch)
        self.epochs = epochs
        self.validation = validation
        self.validation_freq = validation_freq
        self.validation_steps = validation_steps
        self.class_weight = class_weight
        #: where the run is: batches of `epoch` fully applied so far
        self.epoch, self.batches_done = initial_epoch, 0
        callbacks.set_params({"epochs": epochs, "steps": self.data.steps, "verbose": verbose})

    def fit(self, resume_from: Any = None) -> None:
        """Resume if there is a backup, then run the epochs between the train-begin/end hooks."""
        self.model.stop_training = False
        if not self.resume(resume_from) and self.data.steps_per_epoch is None:
            # a fresh run reads whole epochs from the top, even after the user peeked
            # at a batch; with steps_per_epoch a stream continues where the last fit left it
            self.data.source.rewind()
        self.callbacks.call("on_train_begin", None)
        logs: Mapping[str, float] = {}
        try:
            logs = self.run()
            optimizer = self.step.optimizer
            if optimizer is not None and optimizer.built:
                optimizer.finalize_variable_values()  # `use_ema`: the averages become the weights
        finally:
            self.data.close()
            if self.validation is not None:
                self.validation.close()
        self.callbacks.call("on_train_end", logs)

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "step": self.step.state_dict(),
            "data": self.data.state_dict(),
            "callbacks": self.callbacks.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any], check_data: bool = True) -> None:
        self.data.load_state_dict(state["data"], check_data)  # first: it may refuse
        self.step.load_state_dict(state["step"])
        self.callbacks.load_state_dict(state["callbacks"])
        set_rng_state(state["rng"])
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])

    def resume(self, resume_from: Any) -> bool:
        """Load the backup of `resume_from` or of a BackupAndRestore callback; True if found."""
        saved = Checkpointer(resume_from).load() if resume_from is not None else None
        check_data = True
        for saver in self.callbacks.state_savers:
            if saved is not None:
                break
            saved = saver.restore_point()
            check_data = getattr(saver, "check_data", True)
        if saved is None:
            return False
        self.load_state_dict(saved, check_data)
        return True

    # -- the epochs ---------------------------------------------------------------------------
    def run(self) -> Mapping[str, float]:
        """Train from where the run is to `epochs`; returns the last epoch's logs."""
        model, step, cbs = self.model, self.step, self.callbacks
        logs: Mapping[str, float] = {}
        for epoch in range(self.epoch, self.epochs):
            self.epoch = epoch
            cbs.call("on_epoch_begin", epoch, None)
            if self.batches_done == 0:  # a resumed epoch keeps the sums it had so far
                step.reset_metrics()
            joined = (
                Join([step.ddp])
                if step.ddp is not None and not self._lockstep
                else contextlib.nullcontext()
            )
            with joined:  # NOTE [ Uneven shards ]
                taken = self._train_epoch(epoch, self.batches_done)
            if distributed.is_distributed():
                step.follow_longest_rank(taken)
                step.compiled_metrics.sync()
                model.stop_training = distributed.any_true(model.stop_training)
                taken = int(distributed.any_true(taken > 0))
            if taken == 0:
                raise ValueError(f"the training data yielded no batches in epoch {epoch + 1}")
            logs = dict(step.logs())
            logs.update(self.data.skipped_rows())
            self._check_epoch_loss(logs, epoch)
            if self.validation is not None and self._validates(epoch):
                cbs.call("on_test_begin", None)
                val = evaluate_loop(
                    step, self.validation, steps=self.validation_steps, callbacks=cbs
                )
                cbs.call("on_test_end", val)
                logs.update({f"val_{k}": v for k, v in val.items()})
            cbs.call("on_epoch_end", epoch, logs)
            self.epoch, self.batches_done = epoch + 1, 0
            if not model.stop_training:
                for saver in cbs.state_savers:
                    saver.after_epoch(self.state_dict)
            else:
                break
        return logs

    def _train_epoch(self, epoch: int, start: int) -> int:
        """Train one epoch from batch `start`; returns the number of batches done."""
        model, step, cbs = self.model, self.step, self.callbacks
        want_begin, want_end = cbs.wants_train_batch_begin, cbs.wants_train_batch_end
        savers, class_weight = cbs.state_savers, self.class_weight
        taken = start
        batches: Iterable[Any] = self.data.batches(epoch, start)
        if self._lockstep:
            batches = self._in_lockstep(batches, epoch)
        for batch_index, raw in enumerate(batches, start):
            if want_begin:
                cbs.batch("on_train_batch_begin", batch_index, None)
            try:
                out = step.train_batch(raw, class_weight)
            except ValueError as e:  # a bad batch (labels out of range, shapes): say which
                raise ValueError(f"{e} (epoch {epoch + 1}, batch {batch_index + 1})") from e
            except NonFiniteLoss as e:
                if not cbs.handles_nonfinite_loss:
                    where = f"{e.where} at epoch {epoch + 1}, batch {batch_index + 1}".lstrip()
                    raise NonFiniteLoss(e.value, where) from None
                cbs.batch("on_train_batch_end", batch_index, {"loss": e.value})
                model.stop_training = True
                return batch_index + 1
            if out is None:
                continue  # nothing to learn from (e.g. all its images were unreadable)
            if want_end:
                cbs.batch("on_train_batch_end", batch_index, step.logs())
            taken = self.batches_done = batch_index + 1
            for saver in savers:
                saver.after_batch(self.state_dict)
            if model.stop_training and not self._lockstep:  # in lockstep the ranks stop together
                break
        return taken

    @property
    def _lockstep(self) -> bool:
        """A subclassed model's own train_step under DDP (NOTE [ Uneven shards ])."""
        return self.step.ddp is not None and self.step.hooks.train_step is not None

    def _in_lockstep(self, batches: Iterable[Any], epoch: int) -> Iterator[Any]:
        """The batches while every rank has one and none was told to stop."""
        iterator = iter(batches)
        while True:
            raw = next(iterator, _END)
            go = raw is not _END and not self.model.stop_training
            if not distributed.all_true(go):
                if go:
                    logger.warning(
                        "epoch %d: rank %d stops with batches left because another rank's "
                        "shard ended (uneven shards, and the model's own train_step)",
                        epoch + 1,
                        distributed.rank(),
                    )
                return
            yield raw

    def _validates(self, epoch: int) -> bool:
        return (epoch + 1) % self.validation_freq == 0 and not self.model.stop_training

    def _check_epoch_loss(self, logs: Mapping[str, float], epoch: int) -> None:
        """On devices where the step does not check each loss, check the epoch's."""
        loss = logs.get("loss")
        handled = self.callbacks.handles_nonfinite_loss
        if loss is not None and not math.isfinite(loss) and not handled:
            raise NonFiniteLoss(loss, f"in epoch {epoch + 1}", checked_per_batch=False)


def _prepare_for_ddp(step: Step, source: Source) -> None:
    """Build lazy shapes from a first batch, then wrap the module in DDP (all ranks)."""
    if not step.ready:
        first = next(iter(source), None)
        if distributed.any_true(first is None):  # every rank raises, none waits in DDP
            raise ValueError("a rank's shard of the training data is empty: use fewer processes")
        step.build(step.converter.convert(first))
        source.set_epoch(source.epoch)
        source.load_state_dict({**source.state_dict(), "batches_done": 0})
    step.wrap_ddp()
