"""`model.summary()`: layers, output shapes and parameter counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from batchfit.models._model import Model

__all__ = ["render_table", "summary_text"]


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
        params = sum(p.numel() for p in layer.parameters())
        shape = shapes.get(id(layer))
        rows.append(
            (f"{name} ({type(layer).__name__})", str(shape) if shape else "?", f"{params:,}")
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
    total = sum(p.numel() for p in model.module.parameters())
    trainable = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
    out += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(out)
