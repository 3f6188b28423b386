"""`summary()` of a functional model: shapes from the graph and "Connected to"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchfit.layers._symbolic import inbound_nodes
from batchfit.models._summary import param_text, render_table

if TYPE_CHECKING:
    from batchfit.models._functional import Functional

__all__ = ["functional_summary_text"]


def _shape_text(outputs: list[Any]) -> str:
    shapes = [str(t.shape) for t in outputs]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def functional_summary_text(model: Functional) -> str:
    """Keras' table: layer (type), output shape, parameters, and the tensors each layer takes."""
    from batchfit.models._functional import graph_nodes

    in_graph = {id(n) for n in graph_nodes(model.inputs, model.outputs)}
    rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
    for layer in model.layers:
        nodes = [n for n in inbound_nodes(layer) if id(n) in in_graph or not n.input_tensors]
        links = []
        for node in nodes:
            for t in node.input_tensors:
                if t._keras_history is None:
                    continue
                parent, node_index, tensor_index = t._keras_history
                links.append(f"{parent.name}[{node_index}][{tensor_index}]")
        rows.append(
            (
                f"{layer.name} ({type(layer).__name__})",
                _shape_text(nodes[0].output_tensors) if nodes else "?",
                param_text(layer),
                ", ".join(links) or "-",
            )
        )
    return render_table(model, rows, strip=True)
