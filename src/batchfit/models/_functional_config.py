"""A functional model as JSON data, and back: layers by registered class name, nodes by index.

The config lists each layer once (class name + `get_config()`), the inputs
(shape, dtype, name), and the nodes in running order, each naming its layer
by position and its arguments as references to earlier tensors:
`{"__tensor__": ["input", i, 0]}` or `{"__tensor__": ["node", k, j]}` (output
`j` of node `k`). Rebuilding calls the same layers on new `Input`s in the same
order, so the module's weight names (`ops.<i>....`) come out as saved. Only
classes in batchfit's registry (or passed as `custom_objects`) are built:
nothing named in a file is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from batchfit.layers._base import Layer
from batchfit.layers._symbolic import KerasTensor, call_symbolic, flatten, map_structure

if TYPE_CHECKING:
    from batchfit.models._functional import Functional
    from batchfit.models._model import Model

__all__ = ["functional_config", "functional_from_config", "model_from_config", "model_from_json"]


def _layer_entry(op: Any) -> dict[str, Any]:
    if isinstance(op, Layer):
        return {"class_name": type(op).__name__, "config": op.get_config()}
    config = op.get_config()  # a nested Sequential or functional model
    if config.get("class_name") not in ("Sequential", "Functional"):
        raise TypeError(
            f"cannot describe {op!r} in a config: only batchfit layers and models of them can "
            "be saved with their architecture; save_weights() saves the weights of any module"
        )
    return {"class_name": config["class_name"], "config": config}


def _ref(value: Any, refs: dict[int, list[Any]], layer_name: str) -> Any:
    if isinstance(value, KerasTensor):
        return {"__tensor__": refs[id(value)]}
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise TypeError(f"cannot save the argument {value!r} of a call of {layer_name!r}")
    return value


def functional_config(model: Functional) -> dict[str, Any]:
    """The JSON-ready description of a functional model's graph."""
    from batchfit.models._functional import GraphModule, graph_nodes

    graph = model.module
    assert isinstance(graph, GraphModule)
    inputs = flatten(model._inputs_struct)
    refs: dict[int, list[Any]] = {id(t): ["input", i, 0] for i, t in enumerate(inputs)}
    nodes = []
    for node in graph_nodes(inputs, flatten(model._outputs_struct)):
        op = node.operation
        if not node.input_tensors:
            continue  # an Input
        position = next(i for i, known in enumerate(graph.operations) if known is op)
        ref = partial(_ref, refs=refs, layer_name=op.name)

        nodes.append(
            {
                "layer": position,
                "args": map_structure(ref, list(node.call_args)),
                "kwargs": map_structure(ref, dict(node.call_kwargs)),
            }
        )
        for j, t in enumerate(node.output_tensors):
            refs[id(t)] = ["node", len(nodes) - 1, j]
    return {
        "class_name": "Functional",
        "name": model.name,
        "inputs": [
            {
                "name": t.name,
                "shape": list(t.shape[1:]),
                "batch_size": t.shape[0],
                "dtype": str(t.dtype).removeprefix("torch."),
            }
            for t in inputs
        ],
        "input_keys": (
            [str(k) for k in model._inputs_struct]
            if isinstance(model._inputs_struct, Mapping)
            else None
        ),
        "input_is_list": isinstance(model._inputs_struct, (list, tuple)),
        "layers": [_layer_entry(op) for op in graph.operations],
        "nodes": nodes,
        "outputs": map_structure(lambda t: {"__tensor__": refs[id(t)]}, model._outputs_struct),
    }


def _is_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"__tensor__"}


def _resolve(structure: Any, inputs: list[Any], outputs: list[list[Any]]) -> Any:
    if _is_ref(structure):
        kind, i, j = structure["__tensor__"]
        return inputs[i] if kind == "input" else outputs[i][j]
    if isinstance(structure, Mapping):
        return {k: _resolve(v, inputs, outputs) for k, v in structure.items()}
    if isinstance(structure, list):
        return [_resolve(v, inputs, outputs) for v in structure]
    return structure


def _build(entry: Mapping[str, Any], registry: Mapping[str, type], where: str) -> Any:
    class_name = entry.get("class_name", "")
    if class_name in ("Sequential", "Functional"):
        return model_from_config(entry["config"], registry, where, device="cpu")
    cls = registry.get(class_name)
    if cls is None:
        raise ValueError(
            f"{where}: unknown layer class {class_name!r}; a custom layer loads with "
            f"load_model(path, custom_objects={{{class_name!r}: {class_name}}}); known layers: "
            f"{', '.join(sorted(registry))}"
        )
    return cls.from_config(dict(entry.get("config", {})))  # type: ignore[attr-defined]


def model_from_config(
    config: Mapping[str, Any],
    registry: Mapping[str, type],
    where: str,
    device: str | torch.device | None = None,
) -> Model:
    """A functional model or `Sequential` rebuilt from its config (weights are new)."""
    from batchfit.layers._input import Input
    from batchfit.models._sequential import Sequential

    if config.get("class_name") == "Sequential":
        seq = Sequential(name=config.get("name"), device=device)
        if config.get("input_shape") is not None:
            seq.add(Input(shape=tuple(config["input_shape"])))
        for entry in config.get("layers", []):
            seq.add(_build(entry, registry, where))
        return seq
    return functional_from_config(config, registry, where, device)


def functional_from_config(
    config: Mapping[str, Any],
    registry: Mapping[str, type],
    where: str,
    device: str | torch.device | None = None,
) -> Model:
    """Rebuild a functional model: the same layers called in the same order on new inputs."""
    from batchfit.layers._input import Input
    from batchfit.models._functional import Functional

    inputs = [
        Input(
            shape=tuple(spec["shape"]),
            batch_size=spec.get("batch_size"),
            dtype=spec.get("dtype"),
            name=spec["name"],
        )
        for spec in config["inputs"]
    ]
    ops = [_build(entry, registry, where) for entry in config["layers"]]
    outputs: list[list[Any]] = []
    for node in config["nodes"]:
        args = _resolve(node["args"], inputs, outputs)
        kwargs = _resolve(node["kwargs"], inputs, outputs)
        result = call_symbolic(ops[node["layer"]], tuple(args), kwargs)
        outputs.append(flatten(result))
    keys = config.get("input_keys")
    structure: Any
    if keys is not None:
        structure = dict(zip(keys, inputs))
    elif config.get("input_is_list") or len(inputs) > 1:
        structure = inputs
    else:
        structure = inputs[0]
    return Functional(
        structure,
        _resolve(config["outputs"], inputs, outputs),
        name=config.get("name"),
        device=device,
    )


def model_from_json(json_string: str, custom_objects: dict[str, type] | None = None) -> Model:
    """A new model (fresh weights) of the architecture `model.to_json()` describes.

    Only batchfit's registered layers and the classes in `custom_objects` are built.
    """
    import json

    from batchfit.layers import layer_registry

    try:
        data = json.loads(json_string)
    except json.JSONDecodeError as err:
        raise ValueError(f"model_from_json: not valid JSON ({err})") from None
    config = data.get("config", data) if isinstance(data, Mapping) else None
    if not isinstance(config, Mapping) or config.get("class_name") not in (
        "Sequential",
        "Functional",
    ):
        raise ValueError(
            "model_from_json takes the JSON of model.to_json() for a Sequential or functional "
            "model of batchfit layers"
        )
    registry = {**layer_registry(), **(custom_objects or {})}
    return model_from_config(config, registry, "model_from_json")
