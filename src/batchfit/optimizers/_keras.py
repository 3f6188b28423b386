"""The Keras optimizers: each maps Keras' arguments and defaults onto a torch class."""

from __future__ import annotations

from typing import Any

import torch

from batchfit.optimizers._base import Optimizer
from batchfit.optimizers.schedules import LearningRateSchedule

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop"]


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
