"""`Sequential`: a stack of layers, built from declared or first-batch shapes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from batchfit.layers import InputLayer, KerasTensor, Layer
from batchfit.models._model import Model

__all__ = ["Sequential", "SequentialModule"]


class SequentialModule(nn.Module):
    """The torch module behind `Sequential`: layers applied in order.

    A layer that fails on its input is named in the error, with the shape it
    received and the one it was built for.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.input_shape: tuple[int | None, ...] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            try:
                x = layer(x)
            except (RuntimeError, ValueError) as e:
                better = _layer_error(layer, x, e)
                if better is e:
                    raise
                raise better from e
        return x


def _layer_error(layer: nn.Module, x: torch.Tensor, error: Exception) -> Exception:
    name = getattr(layer, "name", type(layer).__name__)
    built_for = getattr(layer, "input_shape_", None)
    got = (None, *tuple(x.shape)[1:])
    if built_for is not None and tuple(built_for[1:]) != got[1:]:
        return ValueError(
            f"layer {name!r} ({type(layer).__name__}) expects inputs of shape "
            f"{tuple(built_for)}, got {got}"
        )
    if isinstance(error, ValueError):
        return error
    return RuntimeError(f"layer {name!r} ({type(layer).__name__}) failed on input {got}: {error}")


class Sequential(Model):
    """A linear stack of layers, as in Keras.

    Integer inputs (e.g. uint8 images) are cast to float32, as Keras does.

    Args:
        layers: layers (batchfit layers or any `torch.nn.Module`), or add them later.
        name: model name.
        device: where weights and batches live (default CUDA when available).

    Example:
        >>> model = Sequential([Dense(64, activation="relu", input_dim=32), Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
    """

    _cast_integer_inputs = True

    def __init__(
        self,
        layers: Iterable[nn.Module | KerasTensor | Model] | None = None,
        name: str | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__(SequentialModule(), name=name or "sequential", device=device)
        for layer in layers or []:
            self.add(layer)

    @property
    def _seq(self) -> SequentialModule:
        module = self._module
        assert isinstance(module, SequentialModule)
        return module

    @property
    def layers(self) -> list[nn.Module]:
        return list(self._seq.layers)

    def add(self, layer: nn.Module | KerasTensor | Model) -> None:
        """Append a layer; an `Input` or a first layer's `input_shape` builds the stack."""
        history = getattr(layer, "_keras_history", None)
        if history is not None:  # keras.Input(...) is a symbolic tensor: take its InputLayer
            if not isinstance(history[0], InputLayer):
                raise TypeError(f"Sequential takes keras.Input(...) and layers, got {layer!r}")
            layer = history[0]
        if isinstance(layer, Model):  # a model as a layer: its module (weights shared)
            layer = layer.module
        if not isinstance(layer, nn.Module):
            raise TypeError(f"Sequential.add takes a layer (a torch.nn.Module), got {layer!r}")
        if self._step is not None:
            raise RuntimeError("add layers before compile(): the optimizer is bound to the weights")
        seq = self._seq
        if isinstance(layer, InputLayer):
            if len(seq.layers):
                raise ValueError("Input must come first in a Sequential")
            seq.input_shape = layer.declared_input_shape
            return
        if not len(seq.layers) and seq.input_shape is None:
            declared = getattr(layer, "declared_input_shape", None)
            if declared is not None:
                seq.input_shape = tuple(declared)
        seq.layers.append(layer)
        if seq.input_shape is not None:
            self._build_from_shape(seq.input_shape)

    def pop(self) -> nn.Module:
        """Remove and return the last layer."""
        seq = self._seq
        if not len(seq.layers):
            raise IndexError("pop from an empty Sequential")
        layer = seq.layers[-1]
        del seq.layers[-1]
        return layer

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Create every layer's weights for inputs of `input_shape` (batch dimension first)."""
        shape = tuple(input_shape)[1:]
        self._seq.input_shape = shape
        self._build_from_shape(shape)

    def _build_from_shape(self, shape: tuple[int | None, ...]) -> None:
        if any(d is None for d in shape):
            return
        unbuilt = [m for m in self._seq.layers if not getattr(m, "built", True)]
        if not unbuilt:
            return
        dummy = torch.zeros((2, *(int(d) for d in shape if d is not None)))
        was_training = self._seq.training
        self._seq.eval()
        with torch.no_grad():
            self._seq(dummy)
        self._seq.train(was_training)

    def get_config(self) -> dict[str, Any]:
        layers = []
        for layer in self._seq.layers:
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"cannot describe layer {layer!r} in a config: only batchfit layers can be "
                    "saved with their architecture; save_weights() saves the weights of any module"
                )
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config()})
        shape = self._seq.input_shape
        return {
            "class_name": "Sequential",
            "name": self.name,
            "input_shape": None if shape is None else list(shape),
            "layers": layers,
        }
