"""The Keras optimizers: Keras' arguments and defaults, bound to Keras' update rules."""

from __future__ import annotations

from typing import Any

from batchfit.optimizers import _rules
from batchfit.optimizers._base import Optimizer
from batchfit.optimizers.schedules import LearningRateSchedule

__all__ = [
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lamb",
    "Lion",
    "Nadam",
    "RMSprop",
]

Rate = float | LearningRateSchedule


class _Keras(Optimizer):
    """An optimizer whose settings (`_torch_kwargs`) are its Keras arguments."""

    def _keras_config(self) -> dict[str, Any]:
        return dict(self._torch_kwargs)


class SGD(_Keras):
    """Gradient descent with optional (Nesterov) momentum; Keras defaults."""

    torch_class = _rules.KerasSGD

    def __init__(
        self,
        learning_rate: Rate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self._torch_kwargs = {"momentum": float(momentum), "nesterov": bool(nesterov)}
        self.momentum, self.nesterov = momentum, nesterov


class Adam(_Keras):
    """Adam as Keras 3 computes it (`epsilon=1e-7`, added to `sqrt(v)` before the bias
    correction of the step size)."""

    torch_class: Any = _rules.KerasAdam

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self._torch_kwargs = {
            "beta_1": beta_1,
            "beta_2": beta_2,
            "epsilon": epsilon,
            "amsgrad": bool(amsgrad),
        }
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad


class AdamW(Adam):
    """Adam with decoupled weight decay; Keras default `weight_decay=0.004`."""

    def __init__(
        self,
        learning_rate: Rate = 0.001,
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


class _BetasEps(_Keras):
    def __init__(
        self,
        learning_rate: Rate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self._torch_kwargs = {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon


class Adamax(_BetasEps):
    """Adamax (Adam with the infinity norm) with Keras defaults."""

    torch_class = _rules.KerasAdamax


class Nadam(_BetasEps):
    """Nesterov Adam with Keras' momentum schedule and defaults."""

    torch_class = _rules.KerasNadam

    def _keras_config(self) -> dict[str, Any]:
        return dict(self._torch_kwargs)  # u_product is state, kept in the group


class Lamb(_BetasEps):
    """Layer-wise adaptive Adam (LAMB) with Keras defaults."""

    torch_class = _rules.KerasLamb


class Lion(_Keras):
    """Lion (sign of an interpolated momentum) with Keras defaults `beta_1=0.9, beta_2=0.99`."""

    torch_class = _rules.KerasLion

    def __init__(
        self, learning_rate: Rate = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0.0 < beta_1 <= 1.0:
            raise ValueError(f"beta_1 must be in (0, 1] (else Lion is SignSGD), got {beta_1}")
        self._torch_kwargs = {"beta_1": beta_1, "beta_2": beta_2}
        self.beta_1, self.beta_2 = beta_1, beta_2


class RMSprop(_Keras):
    """RMSprop as Keras computes it (`g / sqrt(v + epsilon)`; `rho=0.9`, `epsilon=1e-7`)."""

    torch_class = _rules.KerasRMSprop

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self._torch_kwargs = {
            "rho": rho,
            "momentum": momentum,
            "epsilon": epsilon,
            "centered": bool(centered),
        }
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered


class Adagrad(_Keras):
    """Adagrad with Keras defaults (`initial_accumulator_value=0.1`, `g / sqrt(a + eps)`)."""

    torch_class = _rules.KerasAdagrad

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self._torch_kwargs = {
            "initial_accumulator_value": initial_accumulator_value,
            "epsilon": epsilon,
        }
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon


class Adadelta(_Keras):
    """Adadelta with Keras defaults (`rho=0.95`, `epsilon=1e-7`)."""

    torch_class = _rules.KerasAdadelta

    def __init__(
        self, learning_rate: Rate = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self._torch_kwargs = {"rho": rho, "epsilon": epsilon}
        self.rho, self.epsilon = rho, epsilon


class Ftrl(_Keras):
    """FTRL-proximal with Keras' arguments and defaults (`learning_rate_power=-0.5`)."""

    torch_class = _rules.KerasFtrl

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        settings = {
            "learning_rate_power": learning_rate_power,
            "initial_accumulator_value": initial_accumulator_value,
            "l1_regularization_strength": l1_regularization_strength,
            "l2_regularization_strength": l2_regularization_strength,
            "l2_shrinkage_regularization_strength": l2_shrinkage_regularization_strength,
        }
        for key, value in settings.items():
            if key == "learning_rate_power" and value > 0:
                raise ValueError(f"learning_rate_power must be <= 0, got {value}")
            if key != "learning_rate_power" and value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
        self._torch_kwargs = {**settings, "beta": float(beta)}


class Adafactor(_Keras):
    """Adafactor with Keras' arguments and defaults (`relative_step=True`)."""

    torch_class = _rules.KerasAdafactor

    def __init__(
        self,
        learning_rate: Rate = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.relative_step = bool(relative_step)
        self._torch_kwargs = {
            "beta_2_decay": beta_2_decay,
            "epsilon_1": epsilon_1,
            "epsilon_2": epsilon_2,
            "clip_threshold": clip_threshold,
            # Keras caps a constant rate by 1/sqrt(step), never a schedule's
            "relative_step": self.relative_step and self._schedule is None,
        }

    def _keras_config(self) -> dict[str, Any]:
        return {**self._torch_kwargs, "relative_step": self.relative_step}
