"""Symbolic tensors and the nodes that record a functional graph.

NOTE [ Recording a functional graph ]
`keras.Input(shape)` gives a `KerasTensor`: a shape (batch dimension `None`),
a dtype, and a small concrete *example* (a zero batch of one sample). Calling
a batchfit layer (or a `Model`) on KerasTensors does not compute anything the
user sees: `call_symbolic` runs the layer once on the examples (eval mode, no
gradients) to learn the output shapes, builds the layer's weights on the way,
and records a `Node` (operation, the call's argument structure, input and
output tensors) in the operation's `_inbound_nodes`. Each output KerasTensor
keeps `_keras_history = (operation, node_index, tensor_index)`, which is how
`Model(inputs, outputs)` walks back from the outputs to the inputs.

Unknown sizes besides the batch (`Input(shape=(None, 8))`) get two examples
of different stand-in sizes; an output dimension that differs between them is
`None`. Cost: one forward pass of one sample per layer call (two with unknown
sizes), at graph-building time only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch import nn

__all__ = ["KerasTensor", "Node", "call_symbolic", "is_symbolic", "map_structure"]

#: stand-in sizes of unknown non-batch dimensions in the examples
STAND_IN_SIZES = (12, 13)
_ids = itertools.count()


class KerasTensor:
    """A symbolic tensor: what `keras.Input` returns and layers return on it.

    Attributes:
        shape: Keras shape, batch dimension first (`None`).
        dtype: the torch dtype of the values it stands for.
        name: a unique name (the input's name for an `Input`).
    """

    def __init__(
        self,
        shape: tuple[int | None, ...],
        dtype: torch.dtype,
        name: str,
        examples: tuple[torch.Tensor, ...],
    ) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name
        self._examples = examples
        self._keras_history: tuple[Any, int, int] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        dtype = str(self.dtype).removeprefix("torch.")
        return f"<KerasTensor shape={self.shape}, dtype={dtype}, name={self.name}>"

    # arithmetic records `batchfit.ops` nodes, as Keras' KerasTensor does
    def __add__(self, other: Any) -> Any:
        return _op("add", self, other)

    def __radd__(self, other: Any) -> Any:
        return _op("add", other, self)

    def __sub__(self, other: Any) -> Any:
        return _op("subtract", self, other)

    def __rsub__(self, other: Any) -> Any:
        return _op("subtract", other, self)

    def __mul__(self, other: Any) -> Any:
        return _op("multiply", self, other)

    def __rmul__(self, other: Any) -> Any:
        return _op("multiply", other, self)

    def __truediv__(self, other: Any) -> Any:
        return _op("divide", self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return _op("divide", other, self)

    def __pow__(self, other: Any) -> Any:
        return _op("power", self, other)

    def __matmul__(self, other: Any) -> Any:
        return _op("matmul", self, other)

    def __neg__(self) -> Any:
        return _op("negative", self)

    def __abs__(self) -> Any:
        return _op("abs", self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a symbolic KerasTensor has no value to test; it stands for the data a model "
            "will receive (use it as a layer input)"
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{self!r} is symbolic: it cannot become a NumPy array. Build a model with "
            "keras.Model(inputs, outputs) and call model.predict(x) on data"
        )


def _op(name: str, *args: Any) -> Any:
    from batchfit import ops

    return getattr(ops, name)(*args)


class Node:
    """One call of an operation (layer or model) on symbolic tensors."""

    def __init__(
        self,
        operation: Any,
        call_args: Any,
        call_kwargs: dict[str, Any],
        outputs: Any,
    ) -> None:
        self.operation = operation
        self.call_args = call_args  # the argument structure, KerasTensors inside
        self.call_kwargs = call_kwargs  # constant (non-tensor) keyword arguments
        self.outputs = outputs  # the output structure, KerasTensors inside
        self.input_tensors: list[KerasTensor] = flatten(call_args)
        self.output_tensors: list[KerasTensor] = flatten(outputs)

    @property
    def parent_nodes(self) -> list[Node]:
        parents = []
        for t in self.input_tensors:
            history = t._keras_history
            if history is not None:
                parents.append(inbound_nodes(history[0])[history[1]])
        return parents


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """Apply `fn` to every leaf of nested lists, tuples and dicts."""
    if isinstance(structure, Mapping):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, v) for v in structure)
    return fn(structure)


def flatten(structure: Any) -> list[Any]:
    """The KerasTensors of a nested structure, in order."""
    leaves: list[Any] = []
    map_structure(lambda v: leaves.append(v) if isinstance(v, KerasTensor) else None, structure)
    return leaves


def is_symbolic(x: Any) -> bool:
    """Whether `x` is a KerasTensor or a (flat) list/tuple/dict holding one."""
    if isinstance(x, KerasTensor):
        return True
    if isinstance(x, (list, tuple)):
        return any(isinstance(v, KerasTensor) for v in x)
    if isinstance(x, Mapping):
        return any(isinstance(v, KerasTensor) for v in x.values())
    return False


def inbound_nodes(operation: Any) -> list[Node]:
    """The nodes recorded for `operation` (created on first use)."""
    nodes = operation.__dict__.get("_inbound_nodes")
    if nodes is None:
        nodes = []
        operation.__dict__["_inbound_nodes"] = nodes
    return nodes


def node_attribute(operation: Any, attribute: str, what: str) -> Any:
    """`layer.input`/`layer.output`: from the first call, one tensor or a list (as Keras)."""
    nodes = inbound_nodes(operation)
    if not nodes:
        raise ValueError(
            f"the layer {operation.name} has never been called on a symbolic tensor (keras.Input) "
            f"and thus has no defined {what}"
        )
    values = getattr(nodes[0], attribute)
    return values[0] if len(values) == 1 else list(values)


def _example_count(tensors: list[KerasTensor]) -> int:
    return max(len(t._examples) for t in tensors)


def _example(t: KerasTensor, i: int, device: torch.device | None) -> torch.Tensor:
    value = t._examples[min(i, len(t._examples) - 1)]
    return value if device is None or value.device == device else value.to(device)


def _concrete(value: Any, index: int, device: torch.device | None) -> Any:
    return _example(value, index, device) if isinstance(value, KerasTensor) else value


def _device_of(module: nn.Module) -> torch.device | None:
    for p in itertools.chain(module.parameters(), module.buffers()):
        return p.device
    return None


def _merge_shapes(name: str, values: list[torch.Tensor]) -> tuple[int | None, ...]:
    shapes = [tuple(v.shape[1:]) for v in values]
    if any(len(s) != len(shapes[0]) for s in shapes):
        raise ValueError(f"{name}: the output rank depends on the unknown input sizes")
    return (None, *(a if all(s[i] == a for s in shapes) else None for i, a in enumerate(shapes[0])))


def call_symbolic(operation: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Record a call of a layer or model on KerasTensors; returns the output KerasTensors.

    See NOTE [ Recording a functional graph ].
    """
    from batchfit.layers._base import Layer

    name = getattr(operation, "name", type(operation).__name__)
    tensors = flatten((args, kwargs))
    module: nn.Module
    if isinstance(operation, Layer):
        module = operation
        first = args[0] if args else None
        if not operation.built and isinstance(first, KerasTensor):
            operation.build(first.shape)  # from the symbolic shape, not a stand-in size
    elif hasattr(operation, "module") and isinstance(operation.module, nn.Module):
        module = operation.module  # a Model used as a layer
    else:
        raise TypeError(f"cannot call {operation!r} on symbolic tensors")
    device = _device_of(module)
    results = []
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for i in range(_example_count(tensors)):
                # `training=` is kept in the node for running; shapes come from eval mode
                run_kwargs = {k: v for k, v in kwargs.items() if k != "training"}
                concrete = map_structure(
                    partial(_concrete, index=i, device=device), (args, run_kwargs)
                )
                results.append(module(*concrete[0], **concrete[1]))
    except (ValueError, RuntimeError, TypeError) as err:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise type(err)(
            f"layer {name!r} failed on symbolic inputs of shape {shapes}: {err}"
        ) from err
    finally:
        module.train(was_training)

    counter = itertools.count()

    def symbolic(value: Any) -> Any:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"layer {name!r} returned {type(value).__name__}, not tensors")
        index = next(counter)
        per_example = [flatten_values(r)[index] for r in results]
        # a model checked on the meta device before loading keeps meta examples (no data)
        examples = tuple(v.detach() if v.is_meta else v.detach().cpu() for v in per_example)
        out = KerasTensor(
            _merge_shapes(name, per_example), value.dtype, f"keras_tensor_{next(_ids)}", examples
        )
        out._keras_history = (operation, len(inbound_nodes(operation)), index)
        return out

    outputs = map_structure(symbolic, results[0])
    inbound_nodes(operation).append(Node(operation, args, kwargs, outputs))
    return outputs


def flatten_values(structure: Any) -> list[Any]:
    """Every leaf of a nested structure, in order."""
    leaves: list[Any] = []
    map_structure(leaves.append, structure)
    return leaves
