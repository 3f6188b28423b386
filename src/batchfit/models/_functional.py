"""The Keras functional API: `Model(inputs, outputs)` over a recorded graph.

NOTE [ Running a functional graph ]
Layers called on `keras.Input` tensors record nodes (NOTE [ Recording a
functional graph ] in `layers/_symbolic.py`). `Model(inputs, outputs)` walks
back from the outputs through `_keras_history` to the inputs, keeps the nodes
on the way in topological order, and compiles them into a `GraphModule`: a
plain `torch.nn.Module` whose `forward` fills numbered slots, one per symbolic
tensor, node by node. The module holds the layers themselves (a shared layer
once), so a feature-extraction model built from another model's tensors
shares its weights, and the engine (`Step`, DDP, saving) sees an ordinary
module. Nothing symbolic is kept inside the module: only slot numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from batchfit.layers._base import unique_name
from batchfit.layers._core import InputLayer
from batchfit.layers._symbolic import (
    KerasTensor,
    Node,
    call_symbolic,
    flatten,
    flatten_values,
    inbound_nodes,
    map_structure,
)
from batchfit.models._model import Model

__all__ = ["Functional", "GraphModule", "graph_of", "graph_nodes"]


class _Slot:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _check_tensors(structure: Any, what: str) -> list[KerasTensor]:
    leaves = flatten_values(structure)
    for leaf in leaves:
        if not isinstance(leaf, KerasTensor):
            raise TypeError(
                f"Model {what} must be symbolic tensors (from keras.Input and layers called on "
                f"it), got {type(leaf).__name__}"
            )
    if not leaves:
        raise ValueError(f"Model needs at least one tensor in {what}")
    return leaves


def graph_nodes(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list[Node]:
    """The nodes between `inputs` and `outputs`, in an order that runs (parents first)."""
    known = {id(t) for t in inputs}
    order: list[Node] = []
    seen: set[int] = set()

    def visit(node: Node, consumer: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for t in node.input_tensors:
            if id(t) in known:
                continue
            history = t._keras_history
            if history is None:
                raise ValueError(f"{t!r} (input of {consumer}) was not made by a layer")
            visit(inbound_nodes(history[0])[history[1]], node.operation.name)
        if not node.input_tensors and not all(id(t) in known for t in node.output_tensors):
            names = [t.name for t in inputs]
            raise ValueError(
                f"graph disconnected: {consumer} depends on the input "
                f"{node.output_tensors[0].name!r}, which is not among the model's inputs {names}"
            )
        order.append(node)

    for t in outputs:
        if id(t) in known:
            continue
        history = t._keras_history
        if history is None:
            raise ValueError(f"output {t!r} was not made by a layer")
        visit(inbound_nodes(history[0])[history[1]], "the model's outputs")
    return order


class GraphModule(nn.Module):
    """The torch module behind a functional model: runs recorded nodes in order.

    See NOTE [ Running a functional graph ]. `forward` takes the inputs as one
    tensor, a list/tuple (positional), a dict by input name, or several arguments.
    """

    def __init__(self, inputs: Any, outputs: Any, input_names: list[str]) -> None:
        super().__init__()
        input_tensors = flatten(inputs)
        output_tensors = flatten(outputs)
        nodes = graph_nodes(input_tensors, output_tensors)
        slots: dict[int, int] = {}

        def slot(t: KerasTensor) -> int:
            return slots.setdefault(id(t), len(slots))

        def to_slots(v: Any) -> Any:
            return _Slot(slot(v)) if isinstance(v, KerasTensor) else v

        self.input_slots = [slot(t) for t in input_tensors]
        self.input_names = list(input_names)
        self.input_dtypes = [t.dtype for t in input_tensors]
        self.input_ranks = [len(t.shape) for t in input_tensors]
        self.input_last = [t.shape[-1] for t in input_tensors]
        self.operations: list[Any] = []  # layers and models, each once, in running order
        modules: list[nn.Module] = []
        self.plan: list[tuple[int, Any, dict[str, Any], bool | None, list[int]]] = []
        for node in nodes:
            op = node.operation
            if isinstance(op, InputLayer):
                continue
            if not any(op is known for known in self.operations):
                self.operations.append(op)
                modules.append(op if isinstance(op, nn.Module) else op.module)
            index = next(i for i, known in enumerate(self.operations) if known is op)
            kwargs = dict(node.call_kwargs)
            training = kwargs.pop("training", None)
            self.plan.append(
                (
                    index,
                    map_structure(to_slots, node.call_args),
                    map_structure(to_slots, kwargs),
                    training,
                    [slot(t) for t in node.output_tensors],
                )
            )
        self.output_template = map_structure(lambda t: _Slot(slot(t)), outputs)
        self.slot_count = len(slots)
        self.ops = nn.ModuleList(modules)
        self.input_shape: tuple[int | None, ...] | None = None  # several inputs: see summary
        #: set when a list of outputs is compiled with losses by output name: outputs as a dict
        self.output_names: list[str] | None = None

    def _assign_inputs(self, args: tuple[Any, ...], values: list[Any]) -> None:
        given: Any = args[0] if len(args) == 1 else list(args)
        count = len(self.input_slots)
        if isinstance(given, Mapping):
            missing = [n for n in self.input_names if n not in given]
            if missing:
                raise ValueError(
                    f"the model's inputs are {self.input_names}; the dict of inputs has no "
                    f"{missing} (got keys {sorted(map(str, given))})"
                )
            items = [given[n] for n in self.input_names]
        elif isinstance(given, (list, tuple)):
            if len(given) != count:
                raise ValueError(
                    f"the model has {count} inputs {self.input_names}, got {len(given)}"
                )
            items = list(given)
        else:
            if count != 1:
                raise ValueError(
                    f"the model has {count} inputs {self.input_names}: give a list, or a dict "
                    "by input name"
                )
            items = [given]
        for i, (slot, dtype, value) in enumerate(zip(self.input_slots, self.input_dtypes, items)):
            if not isinstance(value, torch.Tensor):
                value = torch.as_tensor(value)
            # as Keras: x of shape (N,) for an input (None, 1) gains the axis, (N, ..., 1) for
            # an input without it loses it
            rank = self.input_ranks[i]
            if value.dim() == rank - 1 and self.input_last[i] == 1:
                value = value.unsqueeze(-1)
            elif value.dim() == rank + 1 and value.shape[-1] == 1:
                value = value.squeeze(-1)
            values[slot] = value if value.dtype == dtype else value.to(dtype)

    def forward(self, *args: Any) -> Any:
        values: list[Any] = [None] * self.slot_count
        self._assign_inputs(args, values)

        def fill(v: Any) -> Any:
            return values[v.index] if isinstance(v, _Slot) else v

        for index, call_args, call_kwargs, training, out_slots in self.plan:
            module = self.ops[index]
            arguments = map_structure(fill, call_args)
            keywords = map_structure(fill, call_kwargs)
            if training is None or training == module.training:
                result = module(*arguments, **keywords)
            else:  # a call made with training=True/False keeps that mode (as Keras)
                was = module.training
                module.train(training)
                try:
                    result = module(*arguments, **keywords)
                finally:
                    module.train(was)
            for slot, value in zip(out_slots, flatten_values(result)):
                values[slot] = value
        if self.output_names is not None:  # see Functional.compile
            return dict(zip(self.output_names, map(fill, flatten_values(self.output_template))))
        return map_structure(fill, self.output_template)


class Functional(Model):
    """A model defined by its inputs and outputs (what `Model(inputs, outputs)` gives).

    Args:
        inputs: a `keras.Input` tensor, or a list or dict of them.
        outputs: a symbolic tensor computed from `inputs`, or a list or dict of them.
        name: the model's name.
        device: where weights and batches live.

    Example:
        >>> inputs = Input(shape=(32,))
        >>> outputs = Dense(1)(Dense(16, activation="relu")(inputs))
        >>> model = Model(inputs, outputs)
    """

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        name: str | None = None,
        device: str | torch.device | None = None,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(f"Model(inputs, outputs): unexpected arguments {sorted(kwargs)}")
        input_list = _check_tensors(inputs, "inputs")
        _check_tensors(outputs, "outputs")
        for t in input_list:
            history = t._keras_history
            if history is None or not isinstance(history[0], InputLayer):
                raise ValueError(
                    f"Model inputs must come from keras.Input; {t!r} was made by "
                    f"{'nothing' if history is None else repr(history[0].name)}"
                )
        if isinstance(inputs, Mapping):
            input_names = [str(k) for k in inputs]
        else:
            input_names = [t.name for t in input_list]
        module = GraphModule(inputs, outputs, input_names)
        if len(input_list) == 1:
            module.input_shape = input_list[0].shape[1:]
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self._input_layers = [t._keras_history[0] for t in input_list]  # type: ignore[index]
        super().__init__(module, name=name or unique_name("functional"), device=device)
        if not trainable:
            self.trainable = False

    # -- the Keras surface of a graph ------------------------------------------------
    @property
    def output_names(self) -> list[str]:
        """Names of the outputs: the dict keys, or the names of the layers that make them."""
        if isinstance(self._outputs_struct, Mapping):
            return [str(k) for k in self._outputs_struct]
        return [t._keras_history[0].name for t in flatten(self._outputs_struct)]

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        **kwargs: Any,
    ) -> None:
        """As `Model.compile`; with a list of outputs, losses may be a dict by output name.

        Keras names a functional model's outputs after the layers that make them,
        so `loss={"priority": ..., "department": ...}` and targets
        `{"priority": y1, "department": y2}` work for `outputs=[priority, department]`.
        The graph then returns its outputs as a dict by name while training and
        evaluating; `predict` still returns a list, as Keras.
        """
        graph = self._module
        assert isinstance(graph, GraphModule)
        structured = isinstance(self._outputs_struct, (list, tuple))
        by_name = any(
            isinstance(spec, Mapping) and "class_name" not in spec
            for spec in (loss, metrics, loss_weights, weighted_metrics)
        )
        graph.output_names = self.output_names if structured and by_name else None
        super().compile(optimizer, loss, metrics, loss_weights, weighted_metrics, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        return self._as_built(super().predict(*args, **kwargs))

    def predict_on_batch(self, x: Any) -> Any:
        return self._as_built(super().predict_on_batch(x))

    def _as_built(self, predictions: Any) -> Any:
        names = getattr(self._module, "output_names", None)
        if names is None or not isinstance(predictions, Mapping):
            return predictions
        return [predictions[n] for n in names]  # a list of outputs predicts a list, as Keras

    @property
    def layers(self) -> list[Any]:
        """Input layers, then layers and nested models in running order (each once)."""
        graph = self._module
        assert isinstance(graph, GraphModule)
        inputs: list[Any] = []
        for layer in self._input_layers:
            if not any(layer is known for known in inputs):
                inputs.append(layer)
        return [*inputs, *graph.operations]

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> str:
        """Print (and return) the graph: layers, output shapes, parameters, inputs."""
        from batchfit.models._functional_summary import functional_summary_text

        text = functional_summary_text(self)
        (print_fn or print)(text)
        return text

    def get_config(self) -> dict[str, Any]:
        from batchfit.models._functional_config import functional_config

        return functional_config(self)


def graph_of(model: Any) -> tuple[Any, Any]:
    """`(inputs, outputs)` of a model: its own for a functional one, traced for a `Sequential`.

    A `Sequential` is traced once per layer list: an `Input` of its input shape
    goes through every layer symbolically, which also gives its layers
    `.input`/`.output` (for feature extraction, as in Keras).
    """
    if isinstance(model, Functional):
        return model._inputs_struct, model._outputs_struct
    layers = getattr(model, "layers", None)
    if layers is None:
        raise AttributeError(
            f"{type(model).__name__} {model.name!r} wraps a torch module and has no symbolic "
            "inputs/outputs; build it with keras.Input and keras.Model(inputs, outputs)"
        )
    key = tuple(id(layer) for layer in layers)
    cached = model.__dict__.get("_traced_graph")
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    shape = getattr(model.module, "input_shape", None)
    if shape is None and layers:
        built = getattr(layers[0], "input_shape_", None)
        shape = None if built is None else tuple(built[1:])
    if shape is None:
        raise ValueError(
            f"Sequential model {model.name!r} has no defined inputs yet: start it with "
            "keras.Input(shape=...), give the first layer input_shape, or call build()"
        )
    from batchfit.layers._input import Input

    inputs = Input(shape=tuple(shape))
    x: Any = inputs
    for layer in layers:
        if not hasattr(layer, "name") or not isinstance(layer, nn.Module):
            raise TypeError(f"cannot trace the torch module {layer!r} symbolically")
        x = call_symbolic(layer, (x,), {})
    model.__dict__["_traced_graph"] = (key, inputs, x)
    return inputs, x


def get_layer(model: Any, name: str | None = None, index: int | None = None) -> Any:
    """`model.get_layer(name)` or `(index=i)`, as Keras."""
    layers: Sequence[Any] = model.layers
    if (name is None) == (index is None):
        raise ValueError("get_layer: give a name or an index (one of them)")
    if index is not None:
        if not -len(layers) <= index < len(layers):
            raise ValueError(f"get_layer: index {index} is out of range ({len(layers)} layers)")
        return layers[index]
    for layer in layers:
        if getattr(layer, "name", None) == name:
            return layer
    raise ValueError(
        f"no such layer: {name}. Existing layers are: {[getattr(la, 'name', '?') for la in layers]}"
    )
