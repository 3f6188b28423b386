"""`keras.utils.plot_model`: a picture of a model's layer graph.

With graphviz's `dot` on PATH the graph is laid out by graphviz, as in Keras;
otherwise batchfit lays it out itself (`plot_layout`: layers in ranks by their
longest distance from an input, one box per layer, one arrow per connection)
and draws it with matplotlib, so the picture needs no system package.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchfit._io import atomic_write

__all__ = ["Box", "Layout", "plot_layout", "plot_model"]

_CHAR_WIDTH = 0.11  # inches per character of label text at the default font size
_LINE_HEIGHT = 0.22  # inches per label line
_GAP = 0.45  # inches between boxes


@dataclass
class Box:
    """One layer's box: its label lines and its centre and size, in inches."""

    name: str
    lines: list[str]
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass
class Layout:
    """What `plot_model` draws: boxes (one per layer) and arrows (index pairs into `boxes`)."""

    boxes: list[Box] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)
    width: float = 0.0
    height: float = 0.0


def _shape(tensors: list[Any]) -> str:
    shapes = [str(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _graph(model: Any) -> tuple[list[Any], list[tuple[int, int]], dict[int, tuple[Any, Any]]]:
    """Layers (inputs first, running order), connections, and each layer's first node."""
    from batchfit.layers._symbolic import flatten, inbound_nodes
    from batchfit.models._functional import graph_nodes, graph_of

    inputs, outputs = graph_of(model)
    inputs, outputs = flatten(inputs), flatten(outputs)
    layers: list[Any] = []
    index: dict[int, int] = {}
    first_node: dict[int, tuple[Any, Any]] = {}

    def add(layer: Any, node: Any) -> int:
        if id(layer) not in index:
            index[id(layer)] = len(layers)
            layers.append(layer)
            first_node[id(layer)] = (node.input_tensors, node.output_tensors)
        return index[id(layer)]

    for t in inputs:
        layer = t._keras_history[0]
        add(layer, inbound_nodes(layer)[0])
    edges: list[tuple[int, int]] = []
    for node in graph_nodes(inputs, outputs):
        target = add(node.operation, node)
        for parent in node.parent_nodes:
            source = index[id(parent.operation)]
            if (source, target) not in edges:
                edges.append((source, target))
    return layers, edges, first_node


def plot_layout(
    model: Any,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> Layout:
    """Boxes and arrows of `model`'s graph, placed in ranks (`rankdir` 'TB' or 'LR')."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(
            f"rankdir must be 'TB' (top to bottom) or 'LR' (left to right), got {rankdir!r}"
        )
    layers, edges, first_node = _graph(model)
    layout = Layout(edges=edges)
    for layer in layers:
        class_name = type(layer).__name__
        title = f"{layer.name} ({class_name})" if show_layer_names else class_name
        lines = [title]
        activation = getattr(layer, "activation", None)
        if show_layer_activations and activation is not None:
            from batchfit import activations

            lines.append(f"Activation: {activations.name_of(activation)}")
        if show_trainable:
            lines.append(f"Trainable: {getattr(layer, 'trainable', True)}")
        ins, outs = first_node[id(layer)]
        if show_shapes:
            if ins:
                lines.append(f"Input shape: {_shape(ins)}")
            lines.append(f"Output shape: {_shape(outs)}")
        if show_dtype:
            lines.append(f"Output dtype: {str(outs[0].dtype).removeprefix('torch.')}")
        width = max(len(line) for line in lines) * _CHAR_WIDTH + 0.3
        layout.boxes.append(
            Box(layer.name, lines, width=width, height=len(lines) * _LINE_HEIGHT + 0.2)
        )
    rank = [0] * len(layers)
    for source, target in edges:  # edges come in running order: parents are ranked first
        rank[target] = max(rank[target], rank[source] + 1)
    ranks: dict[int, list[int]] = {}
    for i, r in enumerate(rank):
        ranks.setdefault(r, []).append(i)
    along = 0.0  # position along the flow, per rank
    for r in sorted(ranks):
        members = ranks[r]
        depth = max(
            layout.boxes[i].height if rankdir == "TB" else layout.boxes[i].width for i in members
        )
        spans = [
            layout.boxes[i].width if rankdir == "TB" else layout.boxes[i].height for i in members
        ]
        across = -(sum(spans) + _GAP * (len(spans) - 1)) / 2
        for i, span in zip(members, spans):
            box = layout.boxes[i]
            if rankdir == "TB":
                box.x, box.y = across + span / 2, -(along + depth / 2)
            else:
                box.x, box.y = along + depth / 2, -(across + span / 2)
            across += span + _GAP
        along += depth + _GAP * 1.5
    xs = [b.x - b.width / 2 for b in layout.boxes] + [b.x + b.width / 2 for b in layout.boxes]
    ys = [b.y - b.height / 2 for b in layout.boxes] + [b.y + b.height / 2 for b in layout.boxes]
    layout.width, layout.height = max(xs) - min(xs), max(ys) - min(ys)
    return layout


def _dot_source(layout: Layout, rankdir: str, dpi: int) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph G {{ rankdir={rankdir}; dpi={int(dpi)}; node [shape=box];"]
    for i, box in enumerate(layout.boxes):
        lines.append(f"  n{i} [label={quote(chr(10).join(box.lines))}];")
    lines += [f"  n{a} -> n{b};" for a, b in layout.edges]
    return "\n".join([*lines, "}"])


def _draw(layout: Layout, image_format: str, dpi: int) -> bytes:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    except ImportError:
        raise ImportError(
            "plot_model needs graphviz's `dot` on PATH or matplotlib: pip install matplotlib"
        ) from None
    margin = 0.3
    figure = Figure(figsize=(layout.width + 2 * margin, layout.height + 2 * margin), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    left = min(b.x - b.width / 2 for b in layout.boxes) - margin
    top = max(b.y + b.height / 2 for b in layout.boxes) + margin
    axes.set_xlim(left, left + layout.width + 2 * margin)
    axes.set_ylim(top - layout.height - 2 * margin, top)
    for box in layout.boxes:
        axes.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2, box.y - box.height / 2),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=0.05",
                facecolor="#eef3fb",
                edgecolor="#33415c",
            )
        )
        axes.text(box.x, box.y, "\n".join(box.lines), ha="center", va="center", fontsize=9)
    for a, b in layout.edges:
        start, end = layout.boxes[a], layout.boxes[b]
        axes.add_patch(
            FancyArrowPatch(
                (start.x, start.y),
                (end.x, end.y),
                arrowstyle="-|>",
                mutation_scale=12,
                color="#33415c",
                patchA=None,
                shrinkA=_clip(start, end),
                shrinkB=_clip(end, start),
            )
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=dpi)
    return buffer.getvalue()


def _clip(box: Box, other: Box) -> float:
    """Points to shorten an arrow by so it starts/ends on `box`'s border."""
    dx, dy = abs(other.x - box.x) or 1e-9, abs(other.y - box.y) or 1e-9
    scale = min(box.width / 2 / dx, box.height / 2 / dy)
    return 72 * scale * (dx * dx + dy * dy) ** 0.5


def plot_model(
    model: Any,
    to_file: str = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    **kwargs: Any,
) -> None:
    """Draw `model`'s layers and connections to `to_file` (Keras' `keras.utils.plot_model`).

    Uses graphviz's `dot` when it is on PATH, else matplotlib. Nested models are
    drawn as one box (`expand_nested` is accepted and ignored).

    Args:
        model: a `Sequential` (with a known input shape) or functional model.
        to_file: the image to write; its suffix picks the format ('.png', '.pdf', '.svg').
        show_shapes: add each layer's input and output shapes.
        show_dtype: add each layer's output dtype.
        show_layer_names: label boxes `name (Class)` instead of `Class`.
        rankdir: 'TB' (top to bottom) or 'LR' (left to right).
        dpi: resolution of the image.
        show_layer_activations: add the activation of layers that have one.
        show_trainable: add whether each layer is trainable.

    Example:
        >>> keras.utils.plot_model(model, "model.png", show_shapes=True)
    """
    del expand_nested, kwargs  # Keras' layer_range/subgraph options: the whole graph is drawn
    layout = plot_layout(
        model,
        show_shapes,
        show_dtype,
        show_layer_names,
        rankdir,
        show_layer_activations,
        show_trainable,
    )
    suffix = Path(to_file).suffix.lstrip(".").lower() or "png"
    dot = shutil.which("dot")
    if dot is not None:
        image = subprocess.run(
            [dot, f"-T{suffix}"],
            input=_dot_source(layout, rankdir, dpi).encode(),
            check=True,
            capture_output=True,
        ).stdout
    else:
        image = _draw(layout, suffix, dpi)
    atomic_write(to_file, image)  # NOTE [ Safe writes ] in batchfit/_io.py
