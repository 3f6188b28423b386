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

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "get",
    "names",
    "schedules",
]


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
        self._params = [p for p in params if p.requires_grad]
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

    def step(self) -> None:
        """Clip, decay, apply the update, advance `iterations` and the schedule."""
        opt = self.torch_optimizer
        if opt is None:
            raise RuntimeError("the optimizer is not built: call build(params) first")
        self.prepare_step()
        opt.step()
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
        return {
            "torch": None if self.torch_optimizer is None else self.torch_optimizer.state_dict(),
            "iterations": self.iterations,
            "learning_rate": self._lr,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("torch") is not None:
            if self.torch_optimizer is None:
                raise RuntimeError("build the optimizer before loading its state")
            self.torch_optimizer.load_state_dict(state["torch"])
        self.iterations = int(state.get("iterations", 0))
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


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum; Keras defaults."""

    torch_class = torch.optim.SGD

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.momentum, self.nesterov = momentum, nesterov

    def _keras_config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}


class _AdamLike(Optimizer):
    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, betas=(beta_1, beta_2), eps=epsilon, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _keras_config(self) -> dict[str, Any]:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adam(_AdamLike):
    """Adam with Keras defaults (`epsilon=1e-7`)."""

    torch_class: Any = torch.optim.Adam

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad=amsgrad, **kwargs)
        self.amsgrad = amsgrad

    def _keras_config(self) -> dict[str, Any]:
        return {**super()._keras_config(), "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay; Keras default `weight_decay=0.004`."""

    torch_class = torch.optim.AdamW
    _torch_decay = True

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs
        )


class Adamax(_AdamLike):
    """Adamax with Keras defaults."""

    torch_class = torch.optim.Adamax


class Nadam(_AdamLike):
    """Nesterov Adam with Keras defaults."""

    torch_class = torch.optim.NAdam


class RMSprop(Optimizer):
    """RMSprop with Keras defaults (`rho=0.9`, `epsilon=1e-7`)."""

    torch_class = torch.optim.RMSprop

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate, alpha=rho, momentum=momentum, eps=epsilon, centered=centered, **kwargs
        )
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _keras_config(self) -> dict[str, Any]:
        return {
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad with Keras defaults (`initial_accumulator_value=0.1`)."""

    torch_class = torch.optim.Adagrad

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate,
            initial_accumulator_value=initial_accumulator_value,
            eps=epsilon,
            **kwargs,
        )
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _keras_config(self) -> dict[str, Any]:
        return {
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """Adadelta with Keras defaults (`rho=0.95`, `epsilon=1e-7`)."""

    torch_class = torch.optim.Adadelta

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, rho=rho, eps=epsilon, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _keras_config(self) -> dict[str, Any]:
        return {"rho": self.rho, "epsilon": self.epsilon}


_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
}


def names() -> list[str]:
    return sorted(_BY_NAME)


def get(identifier: str | Optimizer | torch.optim.Optimizer | dict[str, Any]) -> Optimizer:
    """An `Optimizer` from a Keras name, a config dict, an instance, or a torch optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, torch.optim.Optimizer):
        return Optimizer.wrap(identifier)
    if isinstance(identifier, dict):
        config = dict(identifier)
        class_name = str(config.pop("class_name", ""))
        cls = _BY_NAME.get(class_name.lower())
        if cls is None:
            raise ValueError(
                f"unknown optimizer class {class_name!r} in config; "
                f"valid names: {', '.join(names())}"
            )
        config = {k: v for k, v in config.items() if v is not None}
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; valid names: {', '.join(names())}")
        return cls()
    raise TypeError(
        f"optimizer must be a name, a batchfit or torch optimizer, got {type(identifier).__name__}"
    )
