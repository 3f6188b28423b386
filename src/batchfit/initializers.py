"""Keras weight initialisers, drawing from torch's global generator."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["get", "names"]

Initializer = Callable[[torch.Tensor, int, int], None]


def _uniform(scale: float) -> Callable[[torch.Tensor, float], None]:
    def init(w: torch.Tensor, fan: float) -> None:
        limit = math.sqrt(scale / max(1.0, fan))
        torch.nn.init.uniform_(w, -limit, limit)

    return init


def _truncated(w: torch.Tensor, std: float) -> None:
    # Keras' variance-scaling normal is truncated at two standard deviations;
    # 0.8796 is the std of a unit normal truncated there.
    s = std / 0.87962566103423978
    torch.nn.init.trunc_normal_(w, std=s, a=-2 * s, b=2 * s)


def _variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    def init(w: torch.Tensor, fan_in: int, fan_out: int) -> None:
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        with torch.no_grad():
            if distribution == "uniform":
                _uniform(3.0 * scale)(w, fan)
            else:
                _truncated(w, math.sqrt(scale / max(1.0, fan)))

    return init


def _constant(value: float) -> Initializer:
    def init(w: torch.Tensor, fan_in: int, fan_out: int) -> None:
        with torch.no_grad():
            w.fill_(value)

    return init


def _random_normal(w: torch.Tensor, fan_in: int, fan_out: int) -> None:
    with torch.no_grad():
        torch.nn.init.normal_(w, 0.0, 0.05)


def _random_uniform(w: torch.Tensor, fan_in: int, fan_out: int) -> None:
    with torch.no_grad():
        torch.nn.init.uniform_(w, -0.05, 0.05)


def _orthogonal(w: torch.Tensor, fan_in: int, fan_out: int) -> None:
    with torch.no_grad():
        torch.nn.init.orthogonal_(w)


_INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "zeros": _constant(0.0),
    "ones": _constant(1.0),
    "random_normal": _random_normal,
    "random_uniform": _random_uniform,
    "orthogonal": _orthogonal,
}


def names() -> list[str]:
    return sorted(_INITIALIZERS)


def get(identifier: str | Initializer) -> Initializer:
    """The initialiser for a Keras name, or a callable `(tensor, fan_in, fan_out)`."""
    if callable(identifier):
        return identifier
    fn = _INITIALIZERS.get(str(identifier).lower())
    if fn is None:
        raise ValueError(f"unknown initializer {identifier!r}; valid names: {', '.join(names())}")
    return fn
