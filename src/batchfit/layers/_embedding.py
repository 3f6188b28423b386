"""`Embedding` (integer ids to vectors) and `Masking` (skip padded timesteps)."""

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
from batchfit.layers._recurrent import with_mask

__all__ = ["Embedding", "Masking"]

#: Keras' short initialiser names that batchfit.initializers spells in full
_ALIASES = {"uniform": "random_uniform", "normal": "random_normal"}


@register_layer
class Embedding(Layer):
    """Turns integer ids `(N, ...)` into vectors `(N, ..., output_dim)`.

    Args:
        input_dim: vocabulary size (ids are in `[0, input_dim)`).
        output_dim: size of each vector.
        embeddings_initializer: Keras' default 'uniform' is U(-0.05, 0.05).
        mask_zero: id 0 is padding: the output carries a mask (see NOTE [ Masks ]
            in `_recurrent.py`) that recurrent and attention layers honour.
        input_length: Keras 2's argument, accepted (the length comes from the data).
        embeddings_regularizer, activity_regularizer: Keras regularizers (added to the loss).
        embeddings_constraint: a Keras constraint applied after each optimizer update.

    The single weight `embeddings` has Keras' shape `(input_dim, output_dim)`.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str = "uniform",
        mask_zero: bool = False,
        input_length: int | None = None,
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        activity_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if input_length is not None and "input_shape" not in kwargs:
            kwargs["input_shape"] = (int(input_length),)
        super().__init__(**kwargs)
        for what, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.name}: {what} must be a positive integer, got {value!r}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = embeddings_initializer
        self.mask_zero = mask_zero
        self.input_length = input_length
        init = _ALIASES.get(str(embeddings_initializer), embeddings_initializer)
        weights = torch.empty(input_dim, output_dim)
        initializers.get(init)(weights, input_dim, output_dim)
        self.embeddings = nn.Parameter(weights)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        if self.embeddings_regularizer is not None:
            self.__dict__["_weight_regularizers"] = [(self.embeddings, self.embeddings_regularizer)]
        if self.embeddings_regularizer is not None or self.activity_regularizer is not None:
            losses_used[0] = True
        attach_constraint(self.embeddings, self.embeddings_constraint)
        super().build((None, *(self.declared_input_shape or (None,))))

    def build(self, input_shape: Shape) -> None:
        super().build(input_shape)  # the table does not depend on the input shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x if not x.is_floating_point() else x.long()
        try:
            y = F.embedding(ids.long(), self.embeddings)
        except IndexError as err:
            low, high = int(ids.min()), int(ids.max())
            raise IndexError(
                f"{self.name}: ids must be in [0, {self.input_dim}) (input_dim), got ids from "
                f"{low} to {high}"
            ) from err
        if self.activity_regularizer is not None:  # divided by the batch size, as Keras
            self.add_loss(self.activity_regularizer(y) / y.shape[0])
        return with_mask(y, ids != 0) if self.mask_zero else y

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": self.embeddings_initializer,
            "mask_zero": self.mask_zero,
            **{
                key: _serialize_regularizer(getattr(self, key), self.name)
                for key in ("embeddings_regularizer", "activity_regularizer")
            },
            "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
        }
        if self.input_length is not None:
            config["input_length"] = self.input_length
            config.pop("input_shape", None)
        return config


@register_layer
class Masking(Layer):
    """Masks timesteps whose features all equal `mask_value` (output zero there, as Keras).

    Args:
        mask_value: the padding value.
    """

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        keep = (x != self.mask_value).any(-1)
        return with_mask(x * keep.unsqueeze(-1).to(x.dtype), keep)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}
