"""Keras activation names mapped onto torch functions, resolved once."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["get", "names"]

Activation = Callable[[torch.Tensor], torch.Tensor]


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


def _log_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(x, dim=-1)


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    # Keras 3 definition: relu6(x + 3) / 6
    return F.relu6(x + 3.0) / 6.0


_ACTIVATIONS: dict[str, Activation] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "tanh": torch.tanh,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,
    "mish": F.mish,
    "exponential": torch.exp,
    "hard_sigmoid": _hard_sigmoid,
}


def names() -> list[str]:
    return sorted([*_ACTIVATIONS, "linear"])


def get(identifier: str | Activation | None) -> Activation | None:
    """The activation function for a Keras name or callable; None means linear."""
    if identifier is None or identifier == "linear":
        return None
    if callable(identifier):
        return identifier
    if isinstance(identifier, str):
        fn = _ACTIVATIONS.get(identifier.lower())
        if fn is not None:
            return fn
        raise ValueError(f"unknown activation {identifier!r}; valid names: {', '.join(names())}")
    raise TypeError(f"activation must be a name or a callable, got {type(identifier).__name__}")


def name_of(fn: Activation | None) -> str:
    if fn is None:
        return "linear"
    for key, value in _ACTIVATIONS.items():
        if value is fn:
            return key
    return getattr(fn, "__name__", repr(fn))
