"""Keras' weight constraints: `MaxNorm`, `MinMaxNorm`, `NonNeg`, `UnitNorm` (`keras.constraints`).

A constraint is a callable `constraint(w) -> projected w`. A layer given
`kernel_constraint=...` attaches it to its weight, and the optimizer writes
`constraint(w)` back into the weight after each update, as Keras 3's
`BaseOptimizer.apply` does; see NOTE [ Constraints after the update ] in
`optimizers/_base.py`. `w` is given in Keras' layout (a Dense kernel is
`(in, out)`, a Conv2D kernel `(kh, kw, in, out)`), so `axis` means what it means
in Keras.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "deserialize",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]

EPSILON = 1e-7  # keras.config.epsilon()
Axis = int | Sequence[int]


class Constraint:
    """Base class: `__call__(w)` returns the projected weight (here: `w` unchanged)."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        return cls(**config)


def _dims(axis: Axis) -> int | tuple[int, ...]:
    return int(axis) if isinstance(axis, int) else tuple(int(a) for a in axis)


def _norms(w: torch.Tensor, axis: Axis) -> torch.Tensor:
    return w.square().sum(dim=_dims(axis), keepdim=True).sqrt()


class MaxNorm(Constraint):
    """Scales each slice along `axis` down to norm at most `max_value`.

    `w * clip(norm, 0, max_value) / (epsilon + norm)`, Keras' formula (so a
    slice already inside the bound is multiplied by `norm / (norm + 1e-7)`).

    Args:
        max_value: the largest norm allowed.
        axis: the axis (or axes) summed for the norm; 0 for a Dense kernel `(in, out)`
            bounds the weights into each unit, `[0, 1, 2]` for a Conv2D kernel each filter.
    """

    def __init__(self, max_value: float = 2, axis: Axis = 0) -> None:
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = _norms(w, self.axis)
        return w * (norms.clamp(0, self.max_value) / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w.clamp_min(0)


class UnitNorm(Constraint):
    """Scales each slice along `axis` to norm 1: `w / (epsilon + norm)`."""

    def __init__(self, axis: Axis = 0) -> None:
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves each slice's norm towards `[min_value, max_value]` by `rate` (1: all the way).

    `w * (rate * clip(norm, min, max) + (1 - rate) * norm) / (epsilon + norm)`.
    """

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = 0
    ) -> None:
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = _norms(w, self.axis)
        desired = self.rate * norms.clamp(self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

_CLASSES: dict[str, type[Constraint]] = {
    cls.__name__: cls for cls in (Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm)
}
_NAMES = {
    **_CLASSES,
    "constraint": Constraint,
    "max_norm": MaxNorm,
    "min_max_norm": MinMaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
}


def serialize(constraint: Any) -> dict[str, Any] | None:
    """Keras' serialized form `{"module", "class_name", "config", "registered_name"}`.

    Raises:
        ValueError: `constraint` is a plain function (code cannot be saved).
    """
    if constraint is None:
        return None
    get_config = getattr(constraint, "get_config", None)
    if get_config is None:
        raise ValueError(
            f"a constraint given as a function ({constraint!r}) cannot be saved (it is code); "
            "use keras.constraints.MaxNorm/NonNeg/UnitNorm/MinMaxNorm or a Constraint class"
        )
    return {
        "module": "keras.constraints",
        "class_name": type(constraint).__name__,
        "config": get_config(),
        "registered_name": None,
    }


def deserialize(config: dict[str, Any], custom_objects: dict[str, Any] | None = None) -> Any:
    """A constraint from `serialize`'s dict (classes of this module or `custom_objects`)."""
    name = str(config.get("class_name", ""))
    cls: Any = (custom_objects or {}).get(name) or _NAMES.get(name)
    if cls is None:
        raise ValueError(
            f"unknown constraint class {name!r}; known: {', '.join(sorted(_CLASSES))} "
            "(pass others in custom_objects)"
        )
    settings = dict(config.get("config") or {})
    from_config = getattr(cls, "from_config", None)
    return from_config(settings) if from_config is not None else cls(**settings)


def get(identifier: Any) -> Any:
    """A constraint from None, a name ('max_norm', 'NonNeg'), a config dict, a class or an
    instance/callable."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier)
        if cls is None:
            raise ValueError(
                f"could not interpret constraint identifier {identifier!r}; known names: "
                f"{', '.join(sorted(_NAMES))}"
            )
        return cls()
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"could not interpret constraint identifier {identifier!r}")
