"""Keras-named optimizers on `torch.optim`, with Keras argument names and defaults.

An optimizer is made before the model's weights may exist (shapes are inferred
at the first batch), so it keeps its settings until `build(params)` binds it
to a `torch.optim.Optimizer`. Clipping (`clipnorm`, `clipvalue`,
`global_clipnorm`) and decoupled `weight_decay` follow Keras 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from batchfit.optimizers import schedules
from batchfit.optimizers.schedules import LearningRateSchedule

__all__ = ["Optimizer"]


class Optimizer:
    """A Keras-style optimizer backed by a `torch.optim.Optimizer`.

    Args:
        learning_rate: a float, or a schedule called with the step number.
        weight_decay: decoupled weight decay (Keras 3 semantics), or None.
        clipnorm: clip each gradient to this norm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients together to this norm.
    """

    torch_class: Any = torch.optim.SGD
    #: weight decay handled by the torch class itself (AdamW); others decay here
    _torch_decay = False

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        *,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        **torch_kwargs: Any,
    ) -> None:
        _check_one_clip(clipnorm, clipvalue, global_clipnorm)
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self._schedule: LearningRateSchedule | None = None
        if callable(learning_rate):
            self._schedule = learning_rate
            self._lr = float(learning_rate(0))
        else:
            self._lr = _positive(learning_rate, "learning_rate")
        self._torch_kwargs = torch_kwargs
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self.iterations = 0
        self._params: list[torch.Tensor] = []
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
        kwargs = dict(self._torch_kwargs)
        if self._torch_decay and self.weight_decay is not None:
            kwargs["weight_decay"] = self.weight_decay
        self.torch_optimizer = self.torch_class(self._params, lr=self._lr, **kwargs)

    # -- Keras surface ------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The rate the next update uses (a schedule's value at `iterations`); settable."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
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
        """The loss to call `backward()` on: scaled up under fp16 so gradients do not underflow."""
        return loss if self.loss_scaler is None else self.loss_scaler.scale(loss)

    def step(self) -> None:
        """Clip, decay, apply the update, advance `iterations` and the schedule."""
        opt = self.torch_optimizer
        if opt is None:
            raise RuntimeError("the optimizer is not built: call build(params) first")
        scaler = self.loss_scaler
        if scaler is None:
            self.prepare_step()
            opt.step()
        else:
            # unscale first so clipping sees true gradients; the scaler skips
            # the update when it finds inf/NaN gradients
            scaler.unscale_(opt)
            self.prepare_step()
            scaler.step(opt)
            scaler.update()
        self.iterations += 1

    def prepare_step(self) -> None:
        """Schedule, clipping and decoupled decay: what comes before the torch update."""
        if self._schedule is not None:
            self._set_lr(float(self._schedule(self.iterations)))
        if (
            self.clipvalue is not None
            or self.clipnorm is not None
            or self.global_clipnorm is not None
        ):
            self._clip()
        if self.weight_decay and not self._torch_decay:
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

    def state_dict(self) -> dict[str, Any]:
        """Everything to resume: torch state, step count, current rate."""
        state: dict[str, Any] = {
            "torch": None if self.torch_optimizer is None else self.torch_optimizer.state_dict(),
            "iterations": self.iterations,
            "learning_rate": self._lr,
        }
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("torch") is not None:
            if self.torch_optimizer is None:
                raise RuntimeError("build the optimizer before loading its state")
            self.torch_optimizer.load_state_dict(state["torch"])
        self.iterations = int(state.get("iterations", 0))
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


def _positive(value: Any, what: str) -> float:
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"{what} must be a non-negative number, got {value}")
    return value
