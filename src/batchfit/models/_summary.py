"""`model.summary()`: layers, output shapes and parameter counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from batchfit.models._model import Model

__all__ = ["count_weights", "param_text", "render_table", "summary_text"]


def count_weights(module: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable) numbers counted as Keras counts a layer's weights.

    Keras' weights include state such as BatchNormalization's moving statistics and
    Normalization's mean, variance and count; torch keeps those as buffers. So the
    count is the parameters plus the floating-point buffers, plus integer buffers a
    layer names in `_int_weights` (Normalization's `count`); torch's own bookkeeping
    (BatchNorm's `num_batches_tracked`) is not a Keras weight.
    """
    trainable = frozen = 0
    for p in module.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    for sub in module.modules():
        ints = getattr(sub, "_int_weights", ())
        for name, b in sub.named_buffers(recurse=False):
            if b.is_floating_point() or name in ints:
                frozen += b.numel()
    return trainable, frozen


def param_text(layer: Any) -> str:
    """The Param # cell: Keras writes "0 (unbuilt)" for a layer whose weights do not exist yet."""
    module = getattr(layer, "module", layer)  # a nested model counts its module's weights
    if getattr(module, "built", True) is False:
        return "0 (unbuilt)"
    return f"{sum(count_weights(module)):,}"


def _output_shapes(model: Model, layers: list[nn.Module]) -> dict[int, tuple[Any, ...]]:
    shape = getattr(model.module, "input_shape", None)
    if shape is None or any(d is None for d in shape):
        return {}
    shapes: dict[int, tuple[Any, ...]] = {}
    hooks = [
        layer.register_forward_hook(
            lambda mod, inp, out: shapes.__setitem__(id(mod), (None, *tuple(out.shape)[1:]))
        )
        for layer in layers
    ]
    was_training = model.module.training
    model.module.eval()
    try:
        with torch.no_grad():
            model.module(torch.zeros((1, *shape), device=model.device))
    finally:
        model.module.train(was_training)
        for h in hooks:
            h.remove()
    return shapes


def summary_text(model: Model) -> str:
    layers = list(getattr(model, "layers", None) or model.module.children())
    shapes = _output_shapes(model, layers)
    rows = [("Layer (type)", "Output Shape", "Param #")]
    for i, layer in enumerate(layers):
        name = getattr(layer, "name", None) or f"{i}"
        shape = shapes.get(id(layer))
        rows.append(
            (f"{name} ({type(layer).__name__})", str(shape) if shape else "?", param_text(layer))
        )
    return render_table(model, rows)


def render_table(model: Model, rows: Sequence[tuple[str, ...]], strip: bool = False) -> str:
    """Keras' summary layout: the header row, a row per layer, then the parameter counts.

    `strip` drops the padding at the end of each row (the functional summary's last
    column is free text).
    """
    widths = [max(len(r[c]) for r in rows) + 2 for c in range(len(rows[0]))]
    line = "-" * sum(widths)
    out = [f'Model: "{model.name}"', line]
    for j, row in enumerate(rows):
        text = "".join(cell.ljust(w) for cell, w in zip(row, widths))
        out.append(text.rstrip() if strip else text)
        out.append("=" * sum(widths) if j == 0 else line)
    trainable, frozen = count_weights(model.module)
    out += [
        f"Total params: {trainable + frozen:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {frozen:,}",
    ]
    return "\n".join(out)
