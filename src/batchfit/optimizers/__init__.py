"""Keras-named optimizers on `torch.optim`, with Keras argument names and defaults.

An optimizer is made before the model's weights may exist (shapes are inferred
at the first batch), so it keeps its settings until `build(params)` binds it
to a `torch.optim.Optimizer` that computes Keras' update rule (`_rules.py`).
Clipping (`clipnorm`, `clipvalue`, `global_clipnorm`) and decoupled
`weight_decay` follow Keras 3.
"""

from __future__ import annotations

from typing import Any

import torch

from batchfit.optimizers import schedules
from batchfit.optimizers._base import Optimizer
from batchfit.optimizers._keras import (
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lamb,
    Lion,
    Nadam,
    RMSprop,
)

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
    "Optimizer",
    "RMSprop",
    "get",
    "names",
    "schedules",
]


_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adafactor": Adafactor,
    "ftrl": Ftrl,
    "lion": Lion,
    "lamb": Lamb,
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
