"""Keras 3 model configs (`config.json` of a `.keras` archive) to batchfit models, and back.

NOTE [ Keras layer configs ]
A Keras layer entry is `{"class_name", "config", "inbound_nodes", ...}`. It
becomes the batchfit layer of the same class name (batchfit's registry, or
`custom_objects`; nothing named in the file is imported). Each config key
the batchfit class accepts is passed on (initializer objects become their
Keras names; the dtype policy must be float32); a key it does not accept is
ignored when its value is Keras' default (`kernel_regularizer: null`,
`groups: 1`, ...) and otherwise refused, naming the layer and the key, since
silently dropping it would change what the model computes. So a layer added
to batchfit later loads without a change here, as long as it takes Keras'
argument names and its `get_weights()` is in Keras order and shapes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from batchfit.layers._symbolic import KerasTensor, flatten, inbound_nodes, map_structure

__all__ = ["build_layer", "keras_layer_order", "model_to_keras_config"]

_ANY = object()
#: config keys batchfit layers do not take, with the Keras value that means "not used"
_KERAS_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(
        (
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
            "quantization_config",
            "lora_rank",
            "lora_alpha",
            "noise_shape",
            "seed",
            "renorm_clipping",
        ),
        None,
    ),
    "groups": 1,
    "data_format": "channels_last",
    "synchronized": False,
    "renorm": False,
    "renorm_momentum": 0.99,
    "keepdims": False,
    "autocast": True,
    # initial values do not matter for a model whose weights are loaded
    "kernel_initializer": _ANY,
    "bias_initializer": _ANY,
    "beta_initializer": _ANY,
    "gamma_initializer": _ANY,
    "moving_mean_initializer": _ANY,
    "moving_variance_initializer": _ANY,
}


def _accepted_keys(cls: type) -> set[str]:
    """Keyword arguments `cls(...)` takes, following `**kwargs` up the class chain."""
    keys: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        keys |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    keys.discard("self")
    return keys


def _object_name(value: Any) -> Any:
    """A serialized Keras object (`{"class_name": "GlorotUniform", ...}`) as its snake name."""
    if isinstance(value, Mapping) and "class_name" in value:
        from batchfit.models._keras_h5 import snake_case

        if value["class_name"] == "function":  # a function by name: {"config": "relu"}
            return value.get("config")
        return snake_case(str(value["class_name"]))
    return value


def _dtype_name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = (value.get("config") or {}).get("name")
    return None if value is None else str(value)


def _is_default(key: str, value: Any) -> bool:
    if key not in _KERAS_DEFAULTS:
        return False
    default = _KERAS_DEFAULTS[key]
    return default is _ANY or value == default or _object_name(value) == default


def build_layer(entry: Mapping[str, Any], registry: Mapping[str, type], where: str) -> Any:
    """The batchfit layer for one Keras layer entry (see NOTE [ Keras layer configs ])."""
    class_name = str(entry.get("class_name", ""))
    config = entry.get("config")
    if not isinstance(config, Mapping):
        raise ValueError(f"{where}: layer entry {class_name!r} has no config table")
    name = config.get("name", entry.get("name", "?"))
    if class_name == "Lambda":
        raise ValueError(
            f"{where}: layer {name!r} is a Lambda layer: its function is Python code stored in "
            "the file, which batchfit never runs; rewrite it as a custom layer class and pass "
            "custom_objects"
        )
    cls = registry.get(class_name)
    if cls is None:
        raise ValueError(
            f"{where}: layer {name!r} is a {class_name}, which batchfit does not have; a custom "
            f"layer loads with custom_objects={{{class_name!r}: YourClass}}"
        )
    accepted = _accepted_keys(cls)
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key == "dtype":
            dtype = _dtype_name(value)
            if dtype not in (None, "float32"):
                raise ValueError(
                    f"{where}: layer {name!r} ({class_name}) computes in {dtype}; batchfit "
                    "layers compute in float32"
                )
            continue
        if key in accepted:
            kwargs[key] = (
                _object_name(value) if key.endswith(("initializer", "activation")) else value
            )
        elif not _is_default(key, value):
            raise ValueError(
                f"{where}: layer {name!r} ({class_name}) sets {key}={value!r:.80}, which "
                f"batchfit's {class_name} does not support"
            )
    for key in [k for k, v in kwargs.items() if k.endswith("initializer") and v is not None]:
        from batchfit import initializers

        if kwargs[key] not in initializers.names():
            del kwargs[key]  # weights are loaded; the initializer never runs
    try:
        return cls.from_config(kwargs) if hasattr(cls, "from_config") else cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: cannot build layer {name!r} ({class_name}): {e}") from e


# -- writing ---------------------------------------------------------------------------


def keras_layer_order(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list[Any]:
    """The layers of a graph in the order Keras' `Functional.layers` lists them.

    Keras orders operations by depth (longest path to an output, deepest first)
    and, within a depth, by when a depth-first walk from the outputs first
    meets them; its weight paths follow this order (NOTE [ Keras' weight layout ]).
    """
    first_seen: dict[int, int] = {}
    post_order: list[Any] = []
    done: set[int] = set()

    def walk(tensor: KerasTensor) -> None:
        history = tensor._keras_history
        assert history is not None
        layer, node_index, _ = history
        node = inbound_nodes(layer)[node_index]
        if id(node) in done:
            return
        first_seen.setdefault(id(layer), len(first_seen))
        for parent in node.input_tensors:
            walk(parent)
        done.add(id(node))
        post_order.append(node)

    for t in outputs:
        walk(t)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    layers: dict[int, Any] = {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.operation), 0))
        layer_depth[id(node.operation)] = depth
        layers[id(node.operation)] = node.operation
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for t in inputs:  # an input no output depends on still counts, at depth 0
        layer = t._keras_history[0]  # type: ignore[index]
        if id(layer) not in layer_depth:
            layer_depth[id(layer)], layers[id(layer)] = 0, layer
            first_seen.setdefault(id(layer), len(first_seen))
    return sorted(layers.values(), key=lambda op: (-layer_depth[id(op)], first_seen[id(op)]))


def _layer_config(layer: Any) -> dict[str, Any]:
    config = dict(layer.get_config())
    config.pop("input_shape", None)  # batchfit's shorthand; Keras takes the shape from the graph
    return config


def _entry(layer: Any, build_shape: Any = None) -> dict[str, Any]:
    from batchfit.layers import Layer
    from batchfit.models._model import Model

    if isinstance(layer, Model):  # a model used as a layer: its own config, nested
        nested = dict(model_to_keras_config(layer)[0])
        if build_shape is not None:
            nested["build_config"] = {"input_shape": build_shape}
        nested["name"] = layer.name
        return nested
    if not isinstance(layer, Layer):
        raise ValueError(
            f"cannot write {getattr(layer, 'name', layer)!r} ({type(layer).__name__}) to a .keras "
            "file: only batchfit layers and models of them are (a Sequential holding a model "
            "keeps only its torch module: use the functional API)"
        )
    if type(layer).__name__ == "OpLayer":
        raise ValueError(
            f"cannot write {layer.name!r} to a .keras file: operations on symbolic tensors "
            f"(keras.ops.{layer.op}, x + y) have no Keras layer class; use a layer "
            "(e.g. layers.Add) instead"
        )
    entry: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": type(layer).__name__,
        "config": _layer_config(layer),
        "registered_name": None,
    }
    built: Any = getattr(layer, "input_shape_", None)
    if build_shape is None and built is not None:
        build_shape = list(built)
    if build_shape is not None:  # a merge layer's is the list of its inputs' shapes
        entry["build_config"] = {"input_shape": build_shape}
    entry["name"] = layer.name
    return entry


def _input_entry(shape: Any, dtype: Any, name: str) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": list(shape),
            "dtype": str(dtype).removeprefix("torch."),
            "sparse": False,
            "ragged": False,
            "name": name,
            "optional": False,
        },
        "registered_name": None,
        "name": name,
    }


def _history(tensor: KerasTensor, reindex: dict[int, int]) -> dict[str, Any]:
    layer, node_index, tensor_index = tensor._keras_history  # type: ignore[misc]
    node = inbound_nodes(layer)[node_index]
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": list(tensor.shape),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "keras_history": [layer.name, reindex[id(node)], tensor_index],
        },
    }


def _refs(structure: Any, layer_of: Any) -> Any:
    """Keras' `input_layers`/`output_layers`: one triple, a list of them, or a dict."""
    if isinstance(structure, KerasTensor):
        return layer_of(structure)
    if isinstance(structure, Mapping):
        return {str(k): layer_of(v) for k, v in structure.items()}
    return [layer_of(v) for v in structure]


def model_to_keras_config(model: Any) -> tuple[dict[str, Any], list[Any]]:
    """Keras' config of a `Sequential` or functional model, and its layers in Keras order."""
    from batchfit.models._functional import Functional, graph_nodes
    from batchfit.models._sequential import Sequential

    if isinstance(model, Sequential):
        shape: Any = model._seq.input_shape
        if shape is None:
            raise ValueError(
                f"Sequential model {model.name!r} has no input shape yet: start it with "
                "keras.Input(shape=...) or call build() before saving to .keras"
            )
        layers = model.layers
        batch_shape = [None, *shape]
        entries = [_input_entry(batch_shape, "float32", "input_layer")]
        entries += [_entry(layer) for layer in layers]
        config = {
            "name": model.name,
            "trainable": True,
            "layers": entries,
            "build_input_shape": batch_shape,
        }
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": config,
            "registered_name": None,
            "build_config": {"input_shape": batch_shape},
        }, list(layers)
    if not isinstance(model, Functional):
        raise ValueError(
            f"{type(model).__name__} {model.name!r} wraps a torch module; only Sequential and "
            "functional models of batchfit layers can be written as .keras files"
        )
    inputs, outputs = flatten(model._inputs_struct), flatten(model._outputs_struct)
    order = keras_layer_order(inputs, outputs)
    in_graph = {id(node) for node in graph_nodes(inputs, outputs)}
    in_graph |= {id(inbound_nodes(t._keras_history[0])[0]) for t in inputs}
    reindex: dict[int, int] = {}
    entries = []
    for layer in order:
        nodes = [n for n in inbound_nodes(layer) if id(n) in in_graph]
        reindex.update({id(n): i for i, n in enumerate(nodes)})
        if not nodes[0].input_tensors:  # an Input
            t = nodes[0].output_tensors[0]
            entry = _input_entry(t.shape, t.dtype, layer.name)
            entry["inbound_nodes"] = []
        else:
            first = nodes[0].call_args[0] if nodes[0].call_args else None
            entry = _entry(
                layer,
                map_structure(lambda t: list(t.shape) if isinstance(t, KerasTensor) else t, first),
            )
            entry["inbound_nodes"] = [
                {
                    "args": map_structure(
                        lambda v: _history(v, reindex) if isinstance(v, KerasTensor) else v,
                        list(n.call_args),
                    ),
                    "kwargs": dict(n.call_kwargs),
                }
                for n in nodes
            ]
        entries.append(entry)

    def layer_of(t: KerasTensor) -> list[Any]:
        layer, node_index, tensor_index = t._keras_history  # type: ignore[misc]
        return [layer.name, reindex[id(inbound_nodes(layer)[node_index])], tensor_index]

    config = {
        "name": model.name,
        "trainable": True,
        "layers": entries,
        "input_layers": _refs(model._inputs_struct, layer_of),
        "output_layers": _refs(model._outputs_struct, layer_of),
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": config,
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }, order
