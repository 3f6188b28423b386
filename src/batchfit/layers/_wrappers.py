"""Keras' layer wrappers `Bidirectional` and `TimeDistributed`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from batchfit.layers._base import Layer, Shape, layer_registry, register_layer
from batchfit.layers._recurrent import _RNN, input_mask, with_mask

__all__ = ["Bidirectional", "TimeDistributed"]


def _layer_config(layer: Layer) -> dict[str, Any]:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _layer_from_config(spec: Any, where: str) -> Layer:
    if isinstance(spec, Layer):
        return spec
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"{where}: expected a layer or {{'class_name', 'config'}}, got {spec!r}")
    cls = layer_registry().get(spec["class_name"])
    if cls is None:
        raise ValueError(f"{where}: unknown layer class {spec['class_name']!r}")
    return cls.from_config(dict(spec.get("config", {})))


class _Wrapper(Layer):
    """A layer whose weights are those of its inner layer(s), in Keras' order and layout."""

    def _inner(self) -> list[Layer]:
        raise NotImplementedError

    def get_weights(self) -> list[np.ndarray]:
        return [w for layer in self._inner() for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        weights = list(weights)
        counts = [len(layer.weights) for layer in self._inner()]
        if len(weights) != sum(counts):
            raise ValueError(
                f"layer {self.name!r} expects {sum(counts)} weight arrays, got {len(weights)}"
            )
        for layer, count in zip(self._inner(), counts):
            layer.set_weights(weights[:count])
            weights = weights[count:]


@register_layer
class Bidirectional(_Wrapper):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges the outputs.

    Args:
        layer: a `SimpleRNN`, `LSTM` or `GRU` (its config makes both directions).
        merge_mode: 'concat' (default), 'sum', 'mul', 'ave', or None (a list of both).
        backward_layer: an explicit backward layer (must have `go_backwards=True`).

    `get_weights()` gives the forward layer's weights, then the backward one's, as Keras.
    With `return_state=True` the result is `[output, *forward_states, *backward_states]`.
    """

    def __init__(
        self,
        layer: Any,
        merge_mode: str | None = "concat",
        weights: Sequence[Any] | None = None,
        backward_layer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        layer = _layer_from_config(layer, self.name)
        if not isinstance(layer, _RNN):
            raise ValueError(
                f"{self.name}: Bidirectional wraps SimpleRNN, LSTM or GRU, got "
                f"{type(layer).__name__}"
            )
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(
                f"{self.name}: merge_mode must be 'concat', 'sum', 'mul', 'ave' or None, "
                f"got {merge_mode!r}"
            )
        self.merge_mode = merge_mode
        config = {k: v for k, v in layer.get_config().items() if k != "input_shape"}
        self.forward_layer = type(layer).from_config({**config, "name": f"forward_{layer.name}"})
        if backward_layer is None:
            backward = {**config, "name": f"backward_{layer.name}"}
            backward["go_backwards"] = not config["go_backwards"]
            self.backward_layer = type(layer).from_config(backward)
        else:
            self.backward_layer = _layer_from_config(backward_layer, self.name)
        for inner in self._inner():  # as Keras: a masked step's output is zeros in both
            inner.zero_output_for_mask = inner.return_sequences
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))
        if weights is not None:
            self.set_weights(weights)

    def _inner(self) -> list[Layer]:
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape: Shape) -> None:
        for layer in self._inner():
            if not layer.built:
                layer.build(input_shape)
        super().build(input_shape)

    def forward(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        training: bool | None = None,
        initial_state: Sequence[torch.Tensor] | None = None,
    ) -> Any:
        del training
        if not self.built:
            self.build((None, *inputs.shape[1:]))
            self.to(inputs.device)
        mask = input_mask(inputs, mask)
        fw_init = bw_init = None
        if initial_state is not None:
            half = len(initial_state) // 2
            fw_init, bw_init = list(initial_state[:half]), list(initial_state[half:])
        fw = self.forward_layer(inputs, mask=mask, initial_state=fw_init)
        bw = self.backward_layer(inputs, mask=mask, initial_state=bw_init)
        states: list[torch.Tensor] = []
        if self.return_state:
            states = [*fw[1:], *bw[1:]]
            fw, bw = fw[0], bw[0]
        if self.return_sequences:
            bw = bw.flip(1)
        if self.merge_mode is None:
            return [fw, bw, *states]
        if self.merge_mode == "concat":
            y = torch.cat([fw, bw], -1)
        elif self.merge_mode == "sum":
            y = fw + bw
        elif self.merge_mode == "mul":
            y = fw * bw
        else:
            y = (fw + bw) / 2
        if self.return_sequences:
            with_mask(y, mask)
        return [y, *states] if self.return_state else y

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "layer": _layer_config(self.forward_layer),
            "merge_mode": self.merge_mode,
        }
        config["layer"]["config"]["name"] = self.forward_layer.name.removeprefix("forward_")
        config["backward_layer"] = _layer_config(self.backward_layer)
        return config


@register_layer
class TimeDistributed(_Wrapper):
    """Applies `layer` to every timestep: `(N, T, ...)` -> `layer` on `(N*T, ...)` -> `(N, T, ...)`.

    Args:
        layer: any batchfit layer; its weights are the wrapper's weights.
    """

    def __init__(self, layer: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer = _layer_from_config(layer, self.name)
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    def _inner(self) -> list[Layer]:
        return [self.layer]

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) < 3:
            raise ValueError(
                f"{self.name}: expected inputs (batch, timesteps, ...) of rank 3 or more, got "
                f"input shape {tuple(input_shape)}"
            )
        if not self.layer.built:
            self.layer.build((None, *input_shape[2:]))
        super().build(input_shape)

    def call(self, x: torch.Tensor) -> torch.Tensor:
        batch, steps = x.shape[0], x.shape[1]
        y = self.layer(x.reshape(batch * steps, *x.shape[2:]))
        return y.reshape(batch, steps, *y.shape[1:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layer": _layer_config(self.layer)}
