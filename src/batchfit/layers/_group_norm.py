"""`GroupNormalization` (Wu & He 2018) with Keras 3's arguments and defaults."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit import constraints, initializers, regularizers
from batchfit.layers._base import (
    Layer,
    Shape,
    _serialize_regularizer,
    attach_constraint,
    losses_used,
    register_layer,
)

__all__ = ["GroupNormalization"]


@register_layer
class GroupNormalization(Layer):
    """Normalises each sample within groups of channels:
    `gamma * (x - mean) / sqrt(var + epsilon) + beta`, the mean and (biased) variance
    over a group's channels and every other non-batch axis.

    Computed by torch's `group_norm` with the channel axis moved to position 1 (a
    view for the usual channels-last input). Weights in Keras order: gamma, beta,
    each `(channels,)`.

    Args:
        groups: number of groups (Keras' default 32); -1 makes one group per channel
            (instance normalisation). Must divide the channels.
        axis: the channel axis (default -1, channels-last).
        epsilon: added to the variance; Keras' default 1e-3.
        center: learn beta; scale: learn gamma.
        beta_initializer, gamma_initializer: Keras initializer names.
        beta_regularizer, gamma_regularizer, beta_constraint, gamma_constraint: as Keras.
    """

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(groups, int) or (groups < 1 and groups != -1):
            raise ValueError(
                f"{self.name}: groups must be a positive integer or -1, got {groups!r}"
            )
        if not isinstance(axis, int):
            raise ValueError(f"{self.name}: axis must be an integer, got {axis!r}")
        self.groups = groups
        self.axis = axis
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma: nn.Parameter | None = None
        self.beta: nn.Parameter | None = None
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def build(self, input_shape: Shape) -> None:
        rank = len(input_shape)
        if not -rank < self.axis < rank or self.axis % rank == 0:
            raise ValueError(
                f"{self.name}: axis {self.axis} is not a non-batch axis of input shape "
                f"{tuple(input_shape)}"
            )
        channels = input_shape[self.axis]
        if channels is None:
            raise ValueError(
                f"{self.name}: axis {self.axis} of input shape {tuple(input_shape)} must be known"
            )
        if self.groups == -1:
            self.groups = int(channels)
        if channels < self.groups or channels % self.groups:
            raise ValueError(
                f"{self.name}: groups ({self.groups}) must divide the number of channels "
                f"({channels}) on axis {self.axis}"
            )
        penalties = self.__dict__.setdefault("_weight_regularizers", [])
        penalties.clear()
        for name, init, penalty, constraint in (
            ("gamma", self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint),
            ("beta", self.beta_initializer, self.beta_regularizer, self.beta_constraint),
        ):
            if not (self.scale if name == "gamma" else self.center):
                continue
            value = torch.empty(int(channels))
            initializers.get(init)(value, int(channels), int(channels))
            weight = nn.Parameter(value)
            setattr(self, name, weight)
            if penalty is not None:
                penalties.append((weight, penalty))
                losses_used[0] = True
            attach_constraint(weight, constraint)
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis % x.dim()
        moved = x.movedim(axis, 1) if axis != 1 else x
        gamma: torch.Tensor | None = self.gamma
        if gamma is None and self.beta is not None:
            gamma = torch.ones_like(self.beta)  # torch's backward fails on a bias without weight
        y = F.group_norm(moved, self.groups, gamma, self.beta, self.epsilon)
        return y.movedim(1, axis) if axis != 1 else y

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.beta_initializer,
            "gamma_initializer": self.gamma_initializer,
            "beta_regularizer": _serialize_regularizer(self.beta_regularizer, self.name),
            "gamma_regularizer": _serialize_regularizer(self.gamma_regularizer, self.name),
            "beta_constraint": constraints.serialize(self.beta_constraint),
            "gamma_constraint": constraints.serialize(self.gamma_constraint),
        }
