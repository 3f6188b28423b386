"""The one training step that `fit`, `train_on_batch` and user loops share.

NOTE [ One step ]
`fit` and `train_on_batch` both call `Step.train`, with batches converted by
`Step.to_tensors`, so a `train_on_batch` loop over the batches `fit` would
take leaves bit-identical weights. The step is a straight line (forward, loss,
backward, and at the accumulation boundary clip + optimizer step + zero
grads); metrics are updated in place on the device and never read here.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from batchfit import losses as losses_module
from batchfit import metrics as metrics_module
from batchfit._engine.outputs import MultiOutputLoss, OutputSpec
from batchfit.optimizers import Optimizer

__all__ = ["NonFiniteLoss", "Step"]


class NonFiniteLoss(FloatingPointError):
    """The loss of a batch was NaN or infinite; the weights were not updated by it."""

    def __init__(self, value: float, where: str = "", checked_per_batch: bool = True) -> None:
        self.value = value
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


def _as_tensor(a: Any, device: torch.device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a
    elif isinstance(a, np.ndarray):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"batches must hold numbers, got an array of dtype {a.dtype}")
        # torch refuses to share read-only memory (memmaps); copying is the safe path
        t = torch.from_numpy(a if a.flags.writeable else a.copy())
    else:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"batches must hold numbers, got {type(a).__name__} of dtype {arr.dtype}"
            )
        t = torch.from_numpy(arr)
    if t.device != device:
        t = t.to(device, non_blocking=True)
    return t


def _inputs_to(x: Any, device: torch.device, cast_integers: bool) -> Any:
    """Inputs on `device`: floats as float32; integers kept (token ids) unless told."""
    if isinstance(x, Mapping):
        return {k: _inputs_to(v, device, cast_integers) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_inputs_to(v, device, cast_integers) for v in x)
    t = _as_tensor(x, device)
    if t.dtype == torch.float32 or (
        not cast_integers and not t.is_floating_point() and t.dtype != torch.bool
    ):
        return t
    return t.float()


def _batch_size(x: Any) -> int:
    if isinstance(x, Mapping):
        return _batch_size(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return _batch_size(x[0])
    return int(x.shape[0])


class Step:
    """Forward, loss, backward and optimizer update for one batch.

    Args:
        module: the torch module (maybe wrapped by `torch.compile` or DDP).
        loss: the resolved loss, or None for predict-only models.
        optimizer: the batchfit optimizer (built on the first batch if needed).
        metric_specs: what the user passed as `metrics`, resolved on the first batch.
        device: where batches go.
        accumulate_steps: optimizer update every k micro-batches, gradients averaged.
        precision: None, "bf16" or "fp16" autocast for the forward pass.
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
    ) -> None:
        self.module = module
        self.forward_module = forward_module if forward_module is not None else module
        #: what evaluate/predict run: never the DDP wrapper, whose forward is a collective
        self.eval_module = self.forward_module
        self.ddp: nn.parallel.DistributedDataParallel | None = None
        self._jit = forward_module is not None
        #: batchfit layers compute in float32, so integer images become floats; a
        #: wrapped torch module gets integers as they are (embeddings take token ids)
        self.cast_integer_inputs = False
        self.loss = loss
        self.optimizer = optimizer
        self.metric_specs = list(metric_specs)
        self.device = device
        self.accumulate_steps = int(accumulate_steps)
        self.micro_step = 0
        #: the last update's gradients are still there, to drop before the next forward
        self._zero_pending = False
        self.loss_tracker = metrics_module.Mean("loss")
        self.loss_tracker.to(device)
        self.metrics: list[metrics_module.Metric] = []
        self.ready = False
        #: shapes and dtype of the first batch, enough to rebuild lazy shapes on resume
        self.first_batch_spec: tuple[Any, ...] | None = None
        #: the last training loss as a float when the step already read it (CPU)
        self.last_loss: float | None = None
        self._check_finite_now = device.type == "cpu"
        self.precision = precision
        self._sparse = loss is not None and loss.sparse_targets
        self._structured = isinstance(loss, MultiOutputLoss)
        self._autocast = self._autocast_factory(precision)
        self.scaler: torch.amp.GradScaler | None = None
        if precision == "fp16" and device.type == "cuda":
            self.scaler = torch.amp.GradScaler("cuda")

    def _autocast_factory(self, precision: str | None) -> Any:
        if precision in (None, "fp32", "float32"):
            return None
        dtypes = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16}
        if precision not in dtypes:
            raise ValueError(f"precision must be None, 'bf16' or 'fp16', got {precision!r}")
        dtype = dtypes[precision]
        return lambda: torch.autocast(self.device.type, dtype=dtype)

    # -- conversion -------------------------------------------------------------
    def to_tensors(
        self, x: Any, y: Any = None, sample_weight: Any = None
    ) -> tuple[Any, torch.Tensor | None, torch.Tensor | None]:
        """Batch arrays as tensors on the device: x float32, y as the loss needs."""
        xt = _inputs_to(x, self.device, self.cast_integer_inputs)
        yt = None
        if self._structured and isinstance(y, (Mapping, list, tuple)):
            yt = _inputs_to(y, self.device, False)  # each output's loss sets its dtype
        elif y is not None:
            yt = _as_tensor(y, self.device)
            if self._sparse:
                if yt.dtype != torch.int64:
                    yt = yt.long()
            elif yt.dtype != torch.float32 and not isinstance(y, Mapping):
                yt = yt.float()
        sw = None
        if sample_weight is not None:
            sw = _as_tensor(sample_weight, self.device).float().reshape(-1)
        return xt, yt, sw

    def _forward(self, x: Any, module: nn.Module | None = None) -> Any:
        module = module if module is not None else self.forward_module
        if isinstance(x, (list, tuple)):
            return module(*x)
        return module(x)

    def wrap_ddp(self) -> None:
        """Wrap the module in DistributedDataParallel (once, after shapes are built)."""
        if self.ddp is not None:
            return
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = nn.parallel.DistributedDataParallel(self.module, device_ids=device_ids)
        self.forward_module = torch.compile(self.ddp) if self._jit else self.ddp  # type: ignore[assignment]

    # -- first batch ------------------------------------------------------------
    def prepare(self, x: Any, y: torch.Tensor | None) -> None:
        """Build lazy weights, the optimizer and 'accuracy' from the first batch."""
        module = self.module
        needs_build = any(
            isinstance(p, nn.parameter.UninitializedParameter) for p in module.parameters()
        ) or any(not getattr(m, "built", True) for m in module.modules())
        y_pred = None
        if needs_build or any(
            m.needs_batch(self.loss)
            if isinstance(m, OutputSpec)
            else metrics_module.needs_batch_to_resolve(m, self.loss)
            for m in self.metric_specs
        ):
            was_training = module.training
            module.eval()
            with torch.no_grad():
                y_pred = self._forward(_first_rows(x), self.eval_module)
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
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(module.parameters())
        self.metrics = [
            (
                spec.resolve(self.loss, _first_rows(y), y_pred)
                if isinstance(spec, OutputSpec)
                else metrics_module.get(spec, self.loss, _first_rows(y), y_pred)
            ).to(self.device)
            for spec in self.metric_specs
        ]
        self.ready = True

    # -- the steps --------------------------------------------------------------
    def train(
        self, x: Any, y: torch.Tensor | None, sample_weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, Any]:
        """One micro-batch of training; returns the (detached) loss and predictions."""
        if not self.ready:
            self.prepare(x, y)
        if self.loss is None or self.optimizer is None:
            raise RuntimeError("the model must be compiled with a loss and an optimizer to train")
        if y is None:
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
        if self._autocast is None:
            y_pred = self._forward(x)
            loss = self.loss(y, y_pred, sample_weight)
        else:
            with self._autocast():
                y_pred = self._forward(x)
                loss = self.loss(y, y_pred, sample_weight)
        if self._check_finite_now:  # host read: cheap on CPU, where nothing runs ahead
            value = self.last_loss = loss.item()
            bad = not math.isfinite(value)
            if self.ddp is not None:
                # every rank must skip this batch together, or the others wait in backward
                from batchfit import distributed

                bad = distributed.any_true(bad)
            if bad:
                self.optimizer.zero_grad()
                self.micro_step = 0
                raise NonFiniteLoss(value)
        k = self.accumulate_steps
        scaled = loss if k == 1 else loss / k
        # under DDP, gradients of all but the last micro-batch stay local (no all-reduce)
        sync = (
            self.ddp.no_sync()
            if self.ddp is not None and self.micro_step + 1 < k
            else contextlib.nullcontext()
        )
        with sync:
            if self.scaler is not None:
                self.scaler.scale(scaled).backward()
            else:
                scaled.backward()
        self.micro_step += 1
        if self.micro_step == k:
            self._apply_gradients()
        return loss.detach(), _detach(y_pred)

    def _apply_gradients(self) -> None:
        opt = self.optimizer
        assert opt is not None
        if self.scaler is not None and opt.torch_optimizer is not None:
            # unscale first so clipping sees true gradients; the scaler skips
            # the update when it finds inf/NaN gradients
            self.scaler.unscale_(opt.torch_optimizer)
            opt.prepare_step()
            self.scaler.step(opt.torch_optimizer)
            self.scaler.update()
            opt.iterations += 1
        else:
            opt.step()
        self._zero_pending = True
        self.micro_step = 0

    def test(
        self, x: Any, y: torch.Tensor | None, sample_weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, Any]:
        """Loss and predictions without updating anything."""
        if not self.ready:
            self.prepare(x, y)
        if self.loss is None:
            raise RuntimeError("the model must be compiled with a loss to evaluate")
        if y is None:
            raise ValueError("evaluating needs targets: got x without y")
        if self.module.training:
            self.module.eval()
        with torch.no_grad(), self._autocast() if self._autocast else contextlib.nullcontext():
            y_pred = self._forward(x, self.eval_module)
            loss = self.loss(y, y_pred, sample_weight)
        return loss, y_pred

    def predict(self, x: Any) -> Any:
        if self.module.training:
            self.module.eval()
        with torch.no_grad(), self._autocast() if self._autocast else contextlib.nullcontext():
            return self._forward(x, self.eval_module)

    # -- metrics ----------------------------------------------------------------
    def update_metrics(
        self,
        loss: torch.Tensor,
        y: torch.Tensor | None,
        y_pred: Any,
        sample_weight: torch.Tensor | None,
        batch_size: int,
    ) -> None:
        """Add one batch to the running sums (loss weighted by batch size, as Keras)."""
        self.loss_tracker.add_mean(loss, batch_size)
        if y is not None:
            for m in self.metrics:
                m.update_state(y, y_pred, sample_weight)

    def reset_metrics(self) -> None:
        self.loss_tracker.reset_state()
        for m in self.metrics:
            m.reset_state()

    def results(self) -> dict[str, torch.Tensor]:
        """Current metric values as 0-d tensors (no host sync)."""
        out = {"loss": self.loss_tracker.result()}
        for m in self.metrics:
            out[m.name] = m.result()
        return out

    def batch_results(
        self,
        loss: torch.Tensor,
        y: torch.Tensor | None,
        y_pred: Any,
        sample_weight: torch.Tensor | None,
    ) -> dict[str, float]:
        """This batch's loss and metrics as floats, leaving the running sums alone."""
        out = {"loss": self.last_loss if self.last_loss is not None else loss.item()}
        if y is not None:
            for m in self.metrics:
                out[m.name] = m.batch_result(y, y_pred, sample_weight).item()
        return out

    def to(self, device: torch.device) -> None:
        """Follow the module to `device`: metric sums, optimizer state, checks."""
        self.device = device
        self.loss_tracker.to(device)
        for m in self.metrics:
            m.to(device)
        move_optimizer_state(self.optimizer, device)
        self._check_finite_now = device.type == "cpu"

    def sync_metrics(self) -> None:
        """Add every rank's metric sums (see NOTE [ Distributed training ])."""
        from batchfit import distributed

        if distributed.is_distributed():
            distributed.all_reduce_sum_(self.metric_states())

    def metric_states(self) -> list[torch.Tensor]:
        states = list(self.loss_tracker.states().values())
        for m in self.metrics:
            states.extend(m.states().values())
        return states


def _detach(y: Any) -> Any:
    if isinstance(y, torch.Tensor):
        return y.detach()
    if isinstance(y, Mapping):
        return {k: _detach(v) for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        return type(y)(_detach(v) for v in y)
    return y


def _first_rows(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, Mapping):
        return {k: _first_rows(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_first_rows(v) for v in x)
    return x[:2]


batch_size_of = _batch_size


def move_optimizer_state(optimizer: Optimizer | None, device: torch.device) -> None:
    """Move an optimizer's state tensors (moments, steps) to `device`."""
    if optimizer is None or optimizer.torch_optimizer is None:
        return
    for state in optimizer.torch_optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and not (key == "step" and value.dim() == 0):
                state[key] = value.to(device)
