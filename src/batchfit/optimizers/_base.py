"""Keras-named optimizers on `torch.optim`, with Keras argument names and defaults.

An optimizer is made before the model's weights may exist (shapes are inferred
at the first batch), so it keeps its settings until `build(params)` binds it
to a `torch.optim.Optimizer` (Keras' update rule, `_rules.py`). What Keras
does around the rule lives here, in Keras' order: loss scaling, gradient
accumulation, clipping (`clipnorm`, `clipvalue`, `global_clipnorm`), decoupled
`weight_decay`, the update, then the moving average (`use_ema`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch

from batchfit.optimizers import schedules
from batchfit.optimizers._apply import ApplyGradients
from batchfit.optimizers.schedules import LearningRateSchedule

__all__ = ["Optimizer"]


class Optimizer(ApplyGradients):
    """A Keras-style optimizer backed by a `torch.optim.Optimizer`.

    Args:
        learning_rate: a float, or a schedule called with the step number.
        weight_decay: decoupled weight decay (Keras 3 semantics), or None.
        clipnorm: clip each gradient to this norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients together to this norm.
        use_ema: keep a moving average of the weights (`ema_momentum`), copy it
            into them every `ema_overwrite_frequency` updates and at the end of `fit`.
        loss_scale_factor: multiply the loss by this before `backward()` and divide
            the gradients by it before the update.
        gradient_accumulation_steps: update once per this many batches, with the
            mean of their gradients.

    Keras 2's `lr=` and `decay=` still work, with a warning (`decay` is Keras 2's
    `lr / (1 + decay * iterations)`); any other unknown keyword is an error here,
    not at the first batch.
    """

    torch_class: Any = torch.optim.SGD

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_one_clip(clipnorm, clipvalue, global_clipnorm)
        learning_rate = _keras2_spellings(type(self).__name__, learning_rate, kwargs)
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        _check_extras(ema_momentum, ema_overwrite_frequency, gradient_accumulation_steps)
        self.use_ema = bool(use_ema)
        self.ema_momentum = float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._schedule: LearningRateSchedule | None = None
        if callable(learning_rate):
            self._schedule = learning_rate
            self._lr = float(learning_rate(0))
        else:
            self._lr = _positive(learning_rate, "learning_rate")
        #: the rule's own settings, set by each subclass (Keras names, see `_rules.py`)
        self._torch_kwargs: dict[str, Any] = {}
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self._iterations = 0  # Keras' `_iterations`: batches seen, counting accumulation
        self._params: list[torch.Tensor] = []
        self._accumulated: list[torch.Tensor] | None = None
        self._averages: list[torch.Tensor] | None = None
        #: the weights with a Keras constraint, found at the first step
        self._constrained: list[torch.Tensor] | None = None
        #: fp16 loss scaling on CUDA (`compile(precision="fp16")`), or None
        self.loss_scaler: torch.amp.GradScaler | None = None

    @classmethod
    def wrap(cls, optimizer: torch.optim.Optimizer) -> Optimizer:
        """Adopt a ready `torch.optim.Optimizer` (its params already bound)."""
        self = cls.__new__(cls)
        Optimizer.__init__(self, optimizer.param_groups[0]["lr"], name=type(optimizer).__name__)
        self.torch_optimizer = optimizer
        self._params = [p for g in optimizer.param_groups for p in g["params"]]
        return self

    # -- binding ------------------------------------------------------------------
    @property
    def built(self) -> bool:
        return self.torch_optimizer is not None

    def build(self, params: Iterable[torch.Tensor]) -> None:
        """Bind to the model's trainable parameters (once)."""
        if self.torch_optimizer is not None:
            return
        params = list(params)
        self._params = [p for p in params if p.requires_grad]
        if not self._params:
            # every weight frozen: the optimizer holds them all and, since none gets a
            # gradient, changes none (torch refuses an empty list; Keras allows it)
            self._params = params
        self.torch_optimizer = self.torch_class(self._params, lr=self._lr, **self._torch_kwargs)
        if self.use_ema:
            self._averages = [p.detach().clone() for p in self._params]

    # -- Keras surface ------------------------------------------------------------
    @property
    def iterations(self) -> int:
        """Updates made (Keras: batches seen, over `gradient_accumulation_steps`)."""
        steps = self.gradient_accumulation_steps
        return self._iterations // steps if steps else self._iterations

    @iterations.setter
    def iterations(self, value: int) -> None:
        steps = self.gradient_accumulation_steps
        self._iterations = int(value) * steps + self._iterations % steps if steps else int(value)

    @property
    def learning_rate(self) -> float:
        """The rate the next update uses (a schedule's value at `iterations`); settable."""
        if self._schedule is not None:
            return float(self._schedule(self._iterations))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float | LearningRateSchedule) -> None:
        if callable(value):
            self._schedule = value
            value = value(self.iterations)
        else:
            self._schedule = None
        self._set_lr(_positive(value, "learning_rate"))

    lr = learning_rate

    def _set_lr(self, value: float) -> None:
        self._lr = value
        if self.torch_optimizer is not None:
            for group in self.torch_optimizer.param_groups:
                group["lr"] = value

    def zero_grad(self) -> None:
        if self.torch_optimizer is not None:
            self.torch_optimizer.zero_grad(set_to_none=True)

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to call `backward()` on: scaled by `loss_scale_factor`, and under fp16
        by the loss scaler, so that gradients do not underflow."""
        if self.loss_scale_factor is not None:
            loss = loss * self.loss_scale_factor
        return loss if self.loss_scaler is None else self.loss_scaler.scale(loss)

    def step(self) -> None:
        """Unscale, accumulate, clip, decay, apply the update, average; advance `iterations`."""
        opt = self.torch_optimizer
        if opt is None:
            raise RuntimeError("the optimizer is not built: call build(params) first")
        scaler = self.loss_scaler
        if scaler is not None:
            # unscale first so clipping sees true gradients; the scaler skips
            # the update when it finds inf/NaN gradients
            scaler.unscale_(opt)
        if self.loss_scale_factor is not None:
            grads = [p.grad for p in self._params if p.grad is not None]
            if grads:
                torch._foreach_div_(grads, self.loss_scale_factor)
        if self.gradient_accumulation_steps and not self._accumulate():
            if scaler is not None:
                scaler.update()
        else:
            self.prepare_step()
            if scaler is None:
                opt.step()
            else:
                scaler.step(opt)
                scaler.update()
        if self._averages is not None:  # every batch, as Keras (also between accumulated updates)
            self._update_averages()
        self._apply_constraints()
        self._iterations += 1

    def _apply_constraints(self) -> None:
        """Project constrained weights that had a gradient, after the update (and the moving
        average), as Keras 3's `apply`; see NOTE [ Constraints after the update ] in
        `layers/_base.py`. Every batch, also between accumulated updates, as Keras."""
        if self._constrained is None:  # looked up once: layers attach them when built
            self._constrained = [p for p in self._params if hasattr(p, "keras_constraint")]
        for p in self._constrained:
            if p.grad is not None:
                p.keras_constraint(p)  # type: ignore[attr-defined]

    def _accumulate(self) -> bool:
        """Add this batch's gradients to the sums; on every n-th batch put their mean in
        `.grad` and answer True (update now)."""
        steps = int(self.gradient_accumulation_steps or 1)
        if self._accumulated is None:
            self._accumulated = [torch.zeros_like(p) for p in self._params]
        pairs = [
            (p.grad, acc) for p, acc in zip(self._params, self._accumulated) if p.grad is not None
        ]
        if (self._iterations + 1) % steps:
            if pairs:
                torch._foreach_add_([a for _, a in pairs], [g for g, _ in pairs])
            return False
        if pairs:
            grads = [g for g, _ in pairs]
            torch._foreach_add_(grads, [a for _, a in pairs])
            torch._foreach_div_(grads, float(steps))
        torch._foreach_zero_(self._accumulated)
        return True

    @torch.no_grad()
    def _update_averages(self) -> None:
        assert self._averages is not None
        momentum = self.ema_momentum if self.iterations != 0 else 0.0  # the first copies
        torch._foreach_lerp_(self._averages, self._params, 1.0 - momentum)
        every = self.ema_overwrite_frequency
        if every and (self.iterations + 1) % every == 0:
            torch._foreach_copy_(self._params, self._averages)

    @torch.no_grad()
    def finalize_variable_values(self) -> None:
        """With `use_ema`, put the moving averages into the weights (Keras does at the end of
        `fit`)."""
        if self._averages is not None:
            torch._foreach_copy_(self._params, self._averages)

    def prepare_step(self) -> None:
        """Schedule, clipping and decoupled decay: what comes before the torch update."""
        if self._schedule is not None:
            self._set_lr(float(self._schedule(self._iterations)))
        if (
            self.clipvalue is not None
            or self.clipnorm is not None
            or self.global_clipnorm is not None
        ):
            self._clip()
        if self.weight_decay:
            # Keras decays only variables that received a gradient
            decayed = [p for p in self._params if p.grad is not None]
            if decayed:
                with torch.no_grad():
                    torch._foreach_mul_(decayed, 1.0 - self._lr * self.weight_decay)

    def _clip(self) -> None:
        grads = [p for p in self._params if p.grad is not None]
        if self.clipvalue is not None:
            torch.nn.utils.clip_grad_value_(grads, self.clipvalue)
        if self.clipnorm is not None and grads:
            # each gradient to its own norm: one batched norm and one batched scale
            tensors = [p.grad for p in grads]
            norms = torch._foreach_norm(tensors)  # type: ignore[arg-type]
            scales = [(self.clipnorm / (n + 1e-6)).clamp(max=1.0) for n in norms]
            torch._foreach_mul_(tensors, scales)  # type: ignore[arg-type]
        if self.global_clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(grads, self.global_clipnorm)

    def state_tensors(self) -> list[torch.Tensor]:
        """Every state tensor, in a fixed order: the rule's slots, accumulated gradients,
        moving averages (what a rank copies from another after uneven shards)."""
        tensors = []
        if self.torch_optimizer is not None:
            for per_param in self.torch_optimizer.state.values():
                tensors += [v for v in per_param.values() if isinstance(v, torch.Tensor)]
        return [*tensors, *(self._accumulated or []), *(self._averages or [])]

    def state_dict(self) -> dict[str, Any]:
        """Everything to resume: torch state, step count, current rate."""
        state: dict[str, Any] = {
            "torch": None if self.torch_optimizer is None else self.torch_optimizer.state_dict(),
            "iterations": self._iterations,
            "learning_rate": self._lr,
        }
        if self._accumulated is not None:
            state["accumulated"] = [t.detach().clone() for t in self._accumulated]
        if self._averages is not None:
            state["averages"] = [t.detach().clone() for t in self._averages]
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("torch") is not None:
            if self.torch_optimizer is None:
                raise RuntimeError("build the optimizer before loading its state")
            self.torch_optimizer.load_state_dict(state["torch"])
        self._iterations = int(state.get("iterations", 0))
        for key in ("accumulated", "averages"):
            if state.get(key) is not None:
                saved = [torch.as_tensor(t).to(p.device) for t, p in zip(state[key], self._params)]
                setattr(self, f"_{key}", saved)
        if self.loss_scaler is not None and state.get("loss_scaler") is not None:
            self.loss_scaler.load_state_dict(state["loss_scaler"])
        if self.torch_optimizer is not None:
            # the torch state carries each group's own rate; do not flatten them
            self._lr = float(self.torch_optimizer.param_groups[0]["lr"])
        else:
            self._set_lr(float(state.get("learning_rate", self._lr)))

    def get_config(self) -> dict[str, Any]:
        lr: Any = self._lr
        if self._schedule is not None:
            try:
                lr = schedules.serialize(self._schedule)
            except TypeError:  # a custom callable: only its current value can be saved
                lr = self._lr
        config: dict[str, Any] = {
            "class_name": type(self).__name__,
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        config.update(self._keras_config())
        return config

    def _keras_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self._lr:g})"


def _check_one_clip(*values: float | None) -> None:
    if sum(v is not None for v in values) > 1:
        raise ValueError(
            "only one of clipnorm, clipvalue and global_clipnorm can be set (as in Keras)"
        )


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, DeprecationWarning, stacklevel=4)


def _keras2_spellings(
    cls_name: str, learning_rate: Any, kwargs: dict[str, Any]
) -> float | LearningRateSchedule:
    """Keras 2's `lr=` and `decay=` (with a one-time warning); any other unknown keyword fails."""
    if "lr" in kwargs:
        _warn_once("lr", f"{cls_name}(lr=...) is Keras 2's spelling; use learning_rate=")
        learning_rate = kwargs.pop("lr")
    decay = kwargs.pop("decay", None)
    if decay:
        _warn_once(
            "decay",
            f"{cls_name}(decay={decay}) is Keras 2's spelling; it is applied as Keras 2 did, "
            "learning_rate / (1 + decay * iterations): use "
            "keras.optimizers.schedules.InverseTimeDecay(learning_rate, 1, decay) instead",
        )
        if callable(learning_rate):
            raise ValueError(f"{cls_name}: decay= cannot be combined with a schedule")
        learning_rate = schedules.InverseTimeDecay(float(learning_rate), 1, float(decay))
    if kwargs:
        raise ValueError(
            f"{cls_name}: argument(s) not recognized: {', '.join(sorted(kwargs))} "
            "(Keras 3 names: learning_rate, weight_decay, clipnorm, clipvalue, "
            "global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency, "
            "loss_scale_factor, gradient_accumulation_steps, name, and the optimizer's own)"
        )
    return learning_rate


def _check_extras(ema_momentum: float, every: int | None, steps: int | None) -> None:
    if not 0.0 <= ema_momentum <= 1.0:
        raise ValueError(f"ema_momentum must be in [0, 1], got {ema_momentum}")
    if every is not None and (not isinstance(every, int) or every < 1):
        raise ValueError(f"ema_overwrite_frequency must be an integer >= 1 or None, got {every}")
    if steps is not None and (not isinstance(steps, int) or steps < 2):
        raise ValueError(f"gradient_accumulation_steps must be an integer >= 2, got {steps}")


def _positive(value: Any, what: str) -> float:
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"{what} must be a non-negative number, got {value}")
    return value
