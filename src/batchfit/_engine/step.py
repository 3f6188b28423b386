"""The one training step that `fit`, `train_on_batch` and user loops share.

NOTE [ One step ]
The step owns the batch, as Keras' `train_step(data)` does: `train_batch`,
`test_batch` and `predict_batch` take what a source yields, prepare it in one
place (NOTE [ Preparing a batch ] in `batches.py`), run the math, and add the
batch to the metric sums (`CompileMetrics`). `fit`, `evaluate`, `predict` and
the `*_on_batch` trio call only these, so a `train_on_batch` loop over the
batches `fit` would take leaves bit-identical weights. The math itself is a
straight line (`train_step`): forward, loss, backward, and at the
accumulation boundary the optimizer's `step` (schedule, clipping, update, fp16
unscaling); metrics are updated in place on the device and never read here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

import torch
from torch import nn

from batchfit import losses as losses_module
from batchfit._engine.batches import (
    BatchConverter,
    TensorBatch,
    batch_size_of,
    detach,
    first_rows,
    move_optimizer_state,
    to_numpy,
    unpack,
)
from batchfit._engine.checkpoint import TARGET_DTYPES, checked_first_batch
from batchfit._engine.compile_metrics import CompileMetrics
from batchfit._engine.logs import Logs
from batchfit._engine.outputs import MultiOutputLoss
from batchfit.optimizers import Optimizer

__all__ = ["NonFiniteLoss", "Step", "StepOutput", "to_numpy"]


class NonFiniteLoss(FloatingPointError):
    """The loss of a batch was NaN or infinite; the weights were not updated by it."""

    def __init__(self, value: float, where: str = "", checked_per_batch: bool = True) -> None:
        self.value = value
        self.where = where
        guarantee = (
            "this batch did not update the weights"
            if checked_per_batch
            else "the loss is checked per epoch on this device, so weights may hold NaN"
        )
        super().__init__(
            f"loss is {value} {where}".rstrip()
            + f"; {guarantee}. Lower the learning rate, check the inputs for NaN/inf, or add "
            "callbacks.TerminateOnNaN() to stop quietly."
        )


class StepOutput(NamedTuple):
    """What one step computed: the batch, its (detached) loss and predictions."""

    batch: TensorBatch
    loss: torch.Tensor
    y_pred: Any


class Step:
    """Forward, loss, backward and optimizer update for one batch.

    Args:
        module: the torch module.
        loss: the resolved loss, or None for predict-only models.
        optimizer: the batchfit optimizer (built on the first batch if needed).
        metric_specs: what the user passed as `metrics`, resolved on the first batch.
        device: where batches go.
        accumulate_steps: optimizer update every k micro-batches, gradients averaged.
        precision: None, "bf16" or "fp16" autocast for the forward pass.
        forward_module: `torch.compile(module)` when compiling, else None.
        cast_integer_inputs: integer inputs become float32 (batchfit layers) or stay
            integers (a wrapped torch module may take token ids).
    """

    def __init__(
        self,
        module: nn.Module,
        loss: losses_module.Loss | None,
        optimizer: Optimizer | None,
        metric_specs: Sequence[Any],
        device: torch.device,
        accumulate_steps: int = 1,
        precision: str | None = None,
        forward_module: nn.Module | None = None,
        cast_integer_inputs: bool = False,
    ) -> None:
        self.module = module
        self.forward_module = forward_module if forward_module is not None else module
        #: what evaluate/predict run: never the DDP wrapper, whose forward is a collective
        self.eval_module = self.forward_module
        self.ddp: nn.parallel.DistributedDataParallel | None = None
        self._jit = forward_module is not None
        self.loss = loss
        self.optimizer = optimizer
        self.device = device
        self.accumulate_steps = int(accumulate_steps)
        self.micro_step = 0
        #: the last update's gradients are still there, to drop before the next forward
        self._zero_pending = False
        self.converter = BatchConverter(
            device,
            sparse_targets=loss is not None and loss.sparse_targets,
            structured_targets=isinstance(loss, MultiOutputLoss),
            cast_integer_inputs=cast_integer_inputs,
        )
        self.compiled_metrics = CompileMetrics(metric_specs, device)
        self.ready = False
        #: shapes and dtype of the first batch, enough to rebuild lazy shapes on resume
        self.first_batch_spec: tuple[Any, ...] | None = None
        #: the last training loss as a float when the step already read it (CPU)
        self.last_loss: float | None = None
        #: the module's buffers and their copies at the start of the accumulation window
        #: (see NOTE [ Rejecting a non-finite batch ]); None until first used
        self._buffers: list[torch.Tensor] | None = None
        self._buffer_copies: list[torch.Tensor] = []
        #: a non-finite loss seen in this window under DDP, reported at its end
        self._bad_loss: float | None = None
        self._check_finite_now = device.type == "cpu"
        self.precision = precision
        self._autocast = _autocast_factory(precision, device)
        if precision == "fp16" and device.type == "cuda" and optimizer is not None:
            optimizer.loss_scaler = torch.amp.GradScaler("cuda")
        #: a subclassed model's overrides and hooks (NOTE [ A user's train_step ])
        self.hooks = UserHooks()
        #: what the last user step returned, shown as the logs (None: the compiled metrics)
        self._user_logs: Mapping[str, Any] | None = None

    # -- batches in, results out: what fit/evaluate/predict and *_on_batch call -------------
    def train_batch(
        self,
        raw: Any,
        class_weight: Mapping[int, float] | None = None,
        *,
        strict: bool = False,
        update_metrics: bool = True,
    ) -> StepOutput | None:
        """Train on one batch as a source yields it; None when it has no rows.

        Adds the batch to the metric sums unless `update_metrics` is False (a
        `train_on_batch` that reports this batch alone). `strict` makes an empty
        or misaligned batch an error (a batch the user passed directly).

        Raises:
            NonFiniteLoss: the loss was NaN/inf; the weights were not changed.
        """
        batch = self.converter.convert(raw, class_weight, strict=strict)
        if batch.size == 0:
            return None  # e.g. every image of the batch was unreadable and skipped
        if self.hooks.train_step is not None:
            return self._user_step(self.hooks.train_step, batch)
        self._user_logs = None
        loss, y_pred = self.train_step(batch)
        if update_metrics:
            self.compiled_metrics.update(loss, batch, y_pred)
        return StepOutput(batch, loss, y_pred)

    def test_batch(self, raw: Any, *, strict: bool = False) -> StepOutput | None:
        """Loss and metrics of one batch (added to the sums) without updating weights."""
        batch = self.converter.convert(raw, strict=strict)
        if batch.size == 0:
            return None
        if self.hooks.test_step is not None:
            return self._user_step(self.hooks.test_step, batch)
        self._user_logs = None
        if batch.y is None:
            raise ValueError("evaluate needs targets: the data yielded batches without y")
        loss, y_pred = self.test_step(batch)
        self.compiled_metrics.update(loss, batch, y_pred)
        return StepOutput(batch, loss, y_pred)

    def predict_batch(self, raw: Any) -> Any:
        """Predictions for one batch's inputs, as NumPy (targets, if any, are ignored)."""
        x, _, _ = unpack(raw)
        x = self.converter.convert((x,)).x
        if self.hooks.predict_step is not None:
            if not self.ready:
                self.build(TensorBatch(x, None, None, batch_size_of(x)))
            if self.module.training:
                self.module.eval()
            with torch.no_grad():
                return to_numpy(self.hooks.predict_step(x))
        return to_numpy(self.predict_step(x))

    # NOTE [ A user's train_step ]
    # A subclassed model's `train_step(data)` replaces the math of the step, not
    # the step: the batch is prepared as for the built-in math (tensors on the
    # device, class weights folded into the sample weights) and handed over as
    # Keras does, `x`, `(x, y)` or `(x, y, sample_weight)`; what it returns (a
    # dict of tensors, or of dicts, which are flattened) is the logs, turned
    # into floats only when read. `fit` and `train_on_batch` both come here, so
    # they run the same override. The model is in training mode for
    # `train_step` and in inference mode for `test_step`. The update happens
    # inside the user's code, so a non-finite loss cannot be refused before it
    # (NOTE [ Rejecting a non-finite batch ]); a NaN "loss" in the returned logs
    # still stops `fit` at the end of the epoch (and at the batch with
    # `TerminateOnNaN`).
    #
    # NOTE [ A user's train_step under torchrun ]
    # The override calls the model itself, not the DDP wrapper, so DDP's backward
    # hooks never average its gradients. Instead, while it runs, every
    # `optimizer.apply`/`apply_gradients` averages the gradients it is given over
    # the ranks first (`distributed.average_gradients`: divide by the world size,
    # then add, as DDP does), so two optimizers (a GAN) work too, and the update
    # is the one DDP would make. Those collectives need every rank to take the
    # same number of steps, which DDP's `Join` cannot give them, so such a fit
    # runs its ranks in lockstep instead (NOTE [ Uneven shards ] in loop.py).
    def _user_step(self, fn: Any, batch: TensorBatch) -> StepOutput:
        if not self.ready:
            self.build(batch)
        training = fn is self.hooks.train_step  # layers called without `training` follow the
        if self.module.training != training:  # mode of the step, as in the built-in math
            self.module.train(training)
        data: Any = batch.x
        if batch.y is not None or batch.sample_weight is not None:
            data = (batch.x, batch.y)
            if batch.sample_weight is not None:
                data = (*data, batch.sample_weight)
        if training and self.ddp is not None:
            from batchfit.optimizers._apply import averaging_over_ranks

            with averaging_over_ranks():  # NOTE [ A user's train_step under torchrun ]
                logs = fn(data)
        else:
            logs = fn(data)
        if not isinstance(logs, Mapping):
            raise TypeError(
                "train_step/test_step must return a dict of metric values, "
                f"got {type(logs).__name__}"
            )
        self._user_logs = logs
        self.last_loss = None
        return StepOutput(batch, logs.get("loss", torch.zeros(())), None)

    def logs(self) -> Logs:
        """The running metric values, turned into floats only when read."""
        if self._user_logs is not None:
            user_logs = self._user_logs
            return Logs(lambda: flatten_logs(user_logs))
        return Logs(self.compiled_metrics.results)

    def batch_values(self, out: StepOutput) -> dict[str, float]:
        """One step's loss and metrics as floats, leaving the running sums alone."""
        loss = self.last_loss if self.last_loss is not None else out.loss
        return self.compiled_metrics.batch_results(loss, out.batch, out.y_pred)

    # -- first batch ------------------------------------------------------------------
    def build(self, batch: TensorBatch) -> None:
        """Build lazy weights, the optimizer and 'accuracy' from the first batch."""
        x, y = batch.x, batch.y
        module = self.module
        needs_build = any(
            isinstance(p, nn.parameter.UninitializedParameter) for p in module.parameters()
        ) or any(not getattr(m, "built", True) for m in module.modules())
        y_pred = None
        can_forward = self.hooks.can_forward
        if can_forward and (needs_build or self.compiled_metrics.needs_predictions(self.loss)):
            was_training = module.training
            module.eval()
            with torch.no_grad():
                y_pred = self._forward(first_rows(x), self.eval_module)
            module.train(was_training)
        if isinstance(x, torch.Tensor) and (y is None or isinstance(y, torch.Tensor)):
            self.first_batch_spec = (
                list(x.shape),
                None if y is None else list(y.shape),
                None if y is None else str(y.dtype).removeprefix("torch."),
            )
        if getattr(module, "input_shape", ()) is None and isinstance(x, torch.Tensor):
            # a Sequential built from data keeps its shape (for summary and saving)
            setattr(module, "input_shape", tuple(x.shape[1:]))  # noqa: B010
        params = list(module.parameters())
        optimizer = self.optimizer  # a user's own step builds it with `optimizer.apply`
        if optimizer is not None and not optimizer.built and params and not self.hooks.train_step:
            optimizer.build(params)
        self.compiled_metrics.build(self.loss, first_rows(y), y_pred)
        self.ready = True

    # -- the math ---------------------------------------------------------------------
    def train_step(self, batch: TensorBatch) -> tuple[torch.Tensor, Any]:
        """One micro-batch of training; returns the (detached) loss and predictions."""
        if not self.ready:
            self.build(batch)
        if self.optimizer is None:
            raise RuntimeError("the model must be compiled with a loss and an optimizer to train")
        x, y = batch.x, batch.y
        if y is None and self.loss is not None:
            raise ValueError("training needs targets: got x without y")
        module = self.module
        if not module.training:
            module.train()
        if self._zero_pending:
            # Gradients are dropped here, just before the forward pass re-allocates
            # them, not right after the update: freeing them early lets malloc hand
            # the pages back to the OS and page-fault them in again every step
            # (about 10% of a large CPU step, measured).
            self.optimizer.zero_grad()
            self._zero_pending = False
        check = self._check_finite_now
        if check and self.micro_step == 0:
            self._snapshot_buffers()
        if self._autocast is None:
            y_pred = self._forward(x)
            loss = self._loss(batch, y_pred)
        else:
            with self._autocast():
                y_pred = self._forward(x)
                loss = self._loss(batch, y_pred)
        if check:  # host read: cheap on CPU, where nothing runs ahead
            value = self.last_loss = loss.item()
            if not math.isfinite(value):
                if self.ddp is None:
                    self._reject(value)
                # under DDP the ranks decide together after the gradient all-reduce
                self._bad_loss = value
        k = self.accumulate_steps
        scaled = loss if k == 1 else loss / k
        if not scaled.requires_grad:
            pass  # every weight is frozen (`trainable = False`): nothing to learn, as in Keras
        elif self.ddp is not None and self.micro_step + 1 < k:
            # under DDP, gradients of all but the last micro-batch stay local (no all-reduce)
            with self.ddp.no_sync():
                self.optimizer.scale_loss(scaled).backward()
        else:
            self.optimizer.scale_loss(scaled).backward()
        self.micro_step += 1
        if self.micro_step == k:
            if check and self.ddp is not None and not self._gradients_finite():
                if self._bad_loss is None:  # this rank's losses were fine: another's was not
                    self._reject(math.nan, "on another rank")
                self._reject(self._bad_loss)
            self._bad_loss = None
            if self.optimizer.torch_optimizer is not None:  # None: a model without weights
                self.optimizer.step()
            self._zero_pending = True
            self.micro_step = 0
        return loss.detach(), detach(y_pred)

    # NOTE [ Rejecting a non-finite batch ]
    # On the CPU the step reads each loss (nothing runs ahead there), and a NaN/inf
    # loss leaves the model as it was before the accumulation window began: the
    # gradients are dropped and the buffers (BatchNormalization's moving statistics,
    # which the forward pass already moved) are copied back from a snapshot taken
    # at the window's first micro-batch (one foreach copy per window). Under DDP a
    # rank must not skip alone, or the others wait for it in the gradient
    # all-reduce; and an extra collective to agree would not be matched by a rank
    # that has run out of batches (DDP's `Join` shadows only DDP's own). So every
    # rank runs the backward, and all decide on the averaged gradients, which are
    # identical everywhere: one non-finite rank makes them non-finite on all.
    def _snapshot_buffers(self) -> None:
        if self._buffers is None:
            self._buffers = list(self.module.buffers())
            self._buffer_copies = [b.detach().clone() for b in self._buffers]
        elif self._buffers:
            torch._foreach_copy_(self._buffer_copies, self._buffers)

    def _reject(self, value: float, where: str = "") -> NoReturn:
        assert self.optimizer is not None
        self.optimizer.zero_grad()
        self.micro_step = 0
        self._bad_loss = None
        if self._buffers:
            with torch.no_grad():
                torch._foreach_copy_(self._buffers, self._buffer_copies)
        raise NonFiniteLoss(value, where)

    def _gradients_finite(self) -> bool:
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        if not grads:
            return True
        norms = torch._foreach_norm(grads)
        return bool(torch.stack(norms).isfinite().all().item())  # host read, CPU only

    def test_step(self, batch: TensorBatch) -> tuple[torch.Tensor, Any]:
        """Loss and predictions without updating anything."""
        if not self.ready:
            self.build(batch)
        if self.module.training:
            self.module.eval()
        with torch.no_grad(), self._autocast() if self._autocast else contextlib.nullcontext():
            y_pred = self._forward(batch.x, self.eval_module)
            loss = self._loss(batch, y_pred, training=False)
        return loss, y_pred

    def _loss(self, batch: TensorBatch, y_pred: Any, training: bool = True) -> torch.Tensor:
        """The compiled loss plus `add_loss` losses, or a subclass's `compute_loss`."""
        hooks = self.hooks
        if hooks.compute_loss is not None:
            return hooks.compute_loss(batch.x, batch.y, y_pred, batch.sample_weight, training)
        added = hooks.added_losses() if hooks.added_losses is not None else ()
        if self.loss is None:
            if not added:
                raise RuntimeError(
                    "the model has no loss: give compile(loss=...) or add losses with add_loss()"
                )
            return torch.stack([t.sum() for t in added]).sum()
        loss = self.loss(batch.y, y_pred, batch.sample_weight)
        if added:
            loss = loss + torch.stack([t.sum() for t in added]).sum()
        return loss

    def predict_step(self, x: Any) -> Any:
        if self.module.training:
            self.module.eval()
        with torch.no_grad(), self._autocast() if self._autocast else contextlib.nullcontext():
            return self._forward(x, self.eval_module)

    def _forward(self, x: Any, module: nn.Module | None = None) -> Any:
        module = module if module is not None else self.forward_module
        if self.hooks.clear_losses is not None:
            self.hooks.clear_losses()
        if isinstance(x, (list, tuple)):
            return module(*x)
        return module(x)

    # -- metrics ----------------------------------------------------------------------
    def reset_metrics(self) -> None:
        self.compiled_metrics.reset()
        if self.hooks.reset_metrics is not None:
            self.hooks.reset_metrics()

    def results(self) -> dict[str, torch.Tensor]:
        """Current metric values as 0-d tensors (no host sync)."""
        return self.compiled_metrics.results()

    # -- placement --------------------------------------------------------------------
    def wrap_ddp(self) -> None:
        """Wrap the module in DistributedDataParallel (once, after shapes are built)."""
        if self.ddp is not None:
            return
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids)
        self.forward_module = torch.compile(self.ddp) if self._jit else self.ddp  # type: ignore[assignment]

    def follow_longest_rank(self, batches_taken: int) -> None:
        """After an epoch of uneven shards, every rank takes the optimizer state of the
        rank that trained longest (see NOTE [ Uneven shards ] in loop.py)."""
        from batchfit import distributed

        counts = [int(c) for c in distributed.gather_objects(int(batches_taken))]
        opt = self.optimizer
        if len(set(counts)) == 1 or opt is None or opt.torch_optimizer is None:
            return
        source = max(range(len(counts)), key=lambda r: (counts[r], r))  # DDP's choice too
        distributed.broadcast_(opt.state_tensors(), source)
        opt.iterations = int(distributed.gather_objects(opt.iterations)[source])
        # Keras' rules keep their step count (and Nadam's momentum product) per group
        groups = opt.torch_optimizer.param_groups
        settings = [{k: v for k, v in g.items() if k != "params"} for g in groups]
        for group, saved in zip(groups, distributed.gather_objects(settings)[source]):
            group.update(saved)

    def to(self, device: torch.device) -> None:
        """Follow the module to `device`: metric sums, optimizer state, checks."""
        self.device = device
        self.converter.device = device
        self.compiled_metrics.to(device)
        move_optimizer_state(self.optimizer, device)
        self._buffers = None  # moved buffers are new tensors
        self._check_finite_now = device.type == "cpu"

    # -- state (see NOTE [ Exact resume ] in checkpoint.py) ---------------------------
    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer, pending accumulated gradients and the metric sums."""
        pending_grads = None
        if self.micro_step:
            pending_grads = [p.grad for p in self.module.parameters()]
        return {
            "first_batch": self.first_batch_spec,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "micro_step": self.micro_step,
            "pending_grads": pending_grads,
            "metrics": [t.clone() for t in self.compiled_metrics.states()],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()`, building lazy shapes from the saved first batch first."""
        spec = state.get("first_batch")
        if not self.ready and spec is not None:
            x_shape, y_shape, y_dtype = checked_first_batch(spec, state["model"])
            x = torch.zeros(x_shape, device=self.device)
            y = None if y_shape is None else torch.zeros(y_shape, dtype=TARGET_DTYPES[y_dtype])
            self.build(TensorBatch(x, y, None, 1))
        if not self.ready:
            raise RuntimeError("cannot restore into a model whose shapes are unknown")
        self.module.load_state_dict(state["model"])
        if state.get("optimizer") is not None and self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.micro_step = int(state.get("micro_step", 0))
        grads = state.get("pending_grads")
        if grads is not None:
            for p, g in zip(self.module.parameters(), grads):
                p.grad = None if g is None else g.to(p.device)
        self.compiled_metrics.load_states(state["metrics"])


class UserHooks:
    """What a subclassed model brings to the step (all None for other models).

    `train_step`/`test_step`/`predict_step` are its overrides (NOTE [ A user's
    train_step ]); `compute_loss(x, y, y_pred, sample_weight, training)` its own
    loss; `added_losses()` the `add_loss` losses of the last forward pass, and
    `clear_losses()` forgets them before the next (built-in layers, which do not
    count their calls, rely on it);
    `reset_metrics()` resets the metrics its `metrics` property lists;
    `can_forward` is False for a model without `call` (a GAN's outer model).
    """

    __slots__ = (
        "added_losses",
        "can_forward",
        "clear_losses",
        "compute_loss",
        "predict_step",
        "reset_metrics",
        "test_step",
        "train_step",
    )

    def __init__(self) -> None:
        self.train_step: Any = None
        self.test_step: Any = None
        self.predict_step: Any = None
        self.compute_loss: Any = None
        self.added_losses: Any = None
        self.clear_losses: Any = None
        self.reset_metrics: Any = None
        self.can_forward = True


def flatten_logs(logs: Mapping[str, Any]) -> dict[str, Any]:
    """A user step's returned dict with nested dicts (compiled metrics) flattened, as Keras."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if isinstance(value, Mapping):
            out.update(flatten_logs(value))
        else:
            out[key] = value
    return out


def _autocast_factory(precision: str | None, device: torch.device) -> Any:
    if precision in (None, "fp32", "float32"):
        return None
    dtypes = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision must be None, 'bf16' or 'fp16', got {precision!r}")
    dtype = dtypes[precision]
    return lambda: torch.autocast(device.type, dtype=dtype)
