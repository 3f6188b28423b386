"""Keras' `get_weights`/`set_weights` for any module: NumPy arrays in Keras order.

When every parameter belongs to a batchfit layer, weights come layer by layer
in each layer's Keras layout (Dense kernels `(in, out)`, Conv2D kernels
`(kh, kw, in, out)`); otherwise they are the floating tensors of the module's
`state_dict`, in its order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from batchfit.layers import Layer

__all__ = ["get_weights", "set_weights"]


def _layers_owning_everything(module: nn.Module) -> list[Layer] | None:
    layers = [m for m in module.modules() if isinstance(m, Layer)]
    owned = {id(p) for layer in layers for p in layer.parameters()}
    if not layers or any(id(p) not in owned for p in module.parameters()):
        return None
    # a layer inside another layer is covered by its parent
    inner = {id(sub) for layer in layers for sub in layer.modules() if sub is not layer}
    return [layer for layer in layers if id(layer) not in inner]


def get_weights(module: nn.Module) -> list[np.ndarray]:
    layers = _layers_owning_everything(module)
    if layers is not None:
        return [w for layer in layers for w in layer.get_weights()]
    return [
        t.detach().cpu().numpy().copy()
        for t in module.state_dict().values()
        if t.is_floating_point()
    ]


def set_weights(module: nn.Module, weights: Sequence[Any]) -> None:
    weights = list(weights)
    layers = _layers_owning_everything(module)
    if layers is not None:
        counts = [len(layer.weights) for layer in layers]
        if sum(counts) != len(weights):
            raise ValueError(f"the model has {sum(counts)} weight arrays, got {len(weights)}")
        start = 0
        for layer, count in zip(layers, counts):
            layer.set_weights(weights[start : start + count])
            start += count
        return
    targets = [(k, t) for k, t in module.state_dict().items() if t.is_floating_point()]
    if len(targets) != len(weights):
        raise ValueError(f"the model has {len(targets)} weight arrays, got {len(weights)}")
    with torch.no_grad():
        for (name, t), w in zip(targets, weights):
            arr = np.asarray(w)
            if tuple(arr.shape) != tuple(t.shape):
                raise ValueError(
                    f"weight {name!r}: expected shape {tuple(t.shape)}, got {tuple(arr.shape)}"
                )
            t.copy_(torch.as_tensor(arr, dtype=t.dtype))
