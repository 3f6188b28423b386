"""The Keras-named layer base on `torch.nn.Module`.

A layer is an `nn.Module` whose weights are made by `build(input_shape)`:
at construction when `input_shape`/`input_dim` is given, otherwise at the first
batch. Shapes follow Keras: they include the batch dimension (`None`), and
images are channels-last `(N, H, W, C)`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from batchfit.layers._symbolic import call_symbolic, is_symbolic, node_attribute

__all__ = ["Layer", "register_layer", "layer_registry"]

_name_counts: defaultdict[str, int] = defaultdict(int)
_module_call = nn.Module.__call__
_REGISTRY: dict[str, type[Layer]] = {}

Shape = tuple[int | None, ...]


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make `cls` loadable by name from a saved config (no other class ever is)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def layer_registry() -> dict[str, type[Layer]]:
    return dict(_REGISTRY)


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s).lower()


def unique_name(base: str) -> str:
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


class Layer(nn.Module):
    """Base of batchfit layers: lazy `build`, Keras config and weights.

    Subclasses implement `build(input_shape)` (make parameters, then call
    `super().build(input_shape)`), `call(x)`, and `get_config()`.

    Args:
        name: unique layer name; Keras-style default (`dense`, `dense_1`, ...).
        input_shape: shape of one sample (no batch dimension); builds the layer now.
        input_dim: shorthand for `input_shape=(input_dim,)`.
        trainable: whether the optimizer updates this layer's weights.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        batch_size: int | None = None,
        trainable: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.name = name or unique_name(_snake(type(self).__name__))
        if input_dim is not None:
            if input_shape is not None:
                raise ValueError(f"{self.name}: give input_shape or input_dim, not both")
            input_shape = (int(input_dim),)
        self.declared_input_shape: tuple[int | None, ...] | None = (
            tuple(input_shape) if input_shape is not None else None
        )
        self.built = False
        self.input_shape_: Shape | None = None
        self._trainable = bool(trainable)
        del batch_size, dtype  # accepted for Keras compatibility; float32 throughout

    # -- Keras surface ----------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create weights for inputs of `input_shape` (batch dimension included)."""
        self.input_shape_ = tuple(input_shape)
        self.built = True
        self.trainable = self._trainable

    def call(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # hot path (a tensor, no keywords): one type check on top of torch's call
        if not kwargs and args and type(args[0]) is torch.Tensor:
            return _module_call(self, *args)
        if args and is_symbolic(args[0]):  # NOTE [ Recording a functional graph ]
            return call_symbolic(self, args, kwargs)
        if args and isinstance(args[0], np.ndarray):  # Keras takes arrays: floats as float32
            first = torch.as_tensor(args[0])
            args = (first.float() if first.is_floating_point() else first, *args[1:])
        training = kwargs.pop("training", None) if kwargs else None
        if training is None or bool(training) == self.training:
            return _module_call(self, *args, **kwargs)
        was = self.training  # Keras' `layer(x, training=True)`: this call runs in that mode
        self.train(bool(training))
        try:
            return _module_call(self, *args, **kwargs)
        finally:
            self.train(was)

    @property
    def input(self) -> Any:
        """The symbolic input(s) of this layer's first call in a functional graph."""
        return node_attribute(self, "input_tensors", "input")

    @property
    def output(self) -> Any:
        """The symbolic output(s) of this layer's first call in a functional graph."""
        return node_attribute(self, "output_tensors", "output")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.built:
            self.build((None, *x.shape[1:]))
            self.to(x.device)
        return self.call(x)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "trainable": self._trainable}
        if self.declared_input_shape is not None:
            config["input_shape"] = list(self.declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in self.parameters():
            p.requires_grad_(self._trainable)

    @property
    def weights(self) -> list[torch.Tensor]:
        """Weights in Keras order: parameters, then non-trainable state."""
        return [*self.parameters(), *(b for b in self.buffers() if b.is_floating_point())]

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        """The weights training updates (none while the layer is frozen)."""
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        """Frozen parameters, then state such as moving statistics."""
        frozen = [p for p in self.parameters() if not p.requires_grad]
        return [*frozen, *(b for b in self.buffers() if b.is_floating_point())]

    def get_weights(self) -> list[np.ndarray]:
        """Weights as NumPy arrays in Keras order and layout."""
        return [w.detach().cpu().numpy().copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set weights from arrays in Keras order and layout (as `get_weights`)."""
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(
                f"layer {self.name!r} expects {len(own)} weight arrays, got {len(weights)}"
            )
        with torch.no_grad():
            for i, (w, value) in enumerate(zip(own, weights)):
                arr = np.asarray(value)
                if tuple(arr.shape) != tuple(w.shape):
                    raise ValueError(
                        f"layer {self.name!r} weight {i}: expected shape {tuple(w.shape)}, "
                        f"got {tuple(arr.shape)}"
                    )
                w.copy_(torch.as_tensor(arr, dtype=w.dtype))

    def extra_repr(self) -> str:
        return f"name={self.name!r}"
