"""The functional-API surface every `Model` has: `inputs`, `outputs`, `get_layer`, ...

A mixin of `Model`, so that `Model(inputs, outputs)` becomes a `Functional`
(as Keras' `Model.__new__` does) and a `Sequential` answers `model.inputs`
by tracing its layers. The graph code itself is in `models/_functional.py`,
loaded when first needed.
"""

from __future__ import annotations

from typing import Any

from batchfit.layers._symbolic import is_symbolic

__all__ = ["GraphSurface"]


class GraphSurface:
    """`Model(inputs, outputs)` dispatch and the symbolic inputs/outputs of a model."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from batchfit.models._model import Model

        functional = "inputs" in kwargs or "outputs" in kwargs or (args and is_symbolic(args[0]))
        if not functional:
            return object.__new__(cls)
        from batchfit.models._functional import Functional
        from batchfit.models._sequential import Sequential

        if cls is Model:
            return object.__new__(Functional)
        if issubclass(cls, (Functional, Sequential)):
            return object.__new__(cls)
        # `CustomModel(inputs, outputs)` (Keras' torch guide): the user's class over Functional
        from batchfit.models._subclass import functional_subclass

        return object.__new__(functional_subclass(cls))

    @property
    def inputs(self) -> list[Any]:
        """The symbolic input tensors, as a list."""
        from batchfit.layers._symbolic import flatten
        from batchfit.models._functional import graph_of

        return flatten(graph_of(self)[0])

    @property
    def outputs(self) -> list[Any]:
        """The symbolic output tensors, as a list."""
        from batchfit.layers._symbolic import flatten
        from batchfit.models._functional import graph_of

        return flatten(graph_of(self)[1])

    @property
    def input(self) -> Any:
        """The symbolic input(s), in the structure the model was built with."""
        from batchfit.models._functional import graph_of

        return graph_of(self)[0]

    @property
    def output(self) -> Any:
        """The symbolic output(s), in the structure the model was built with."""
        from batchfit.models._functional import graph_of

        return graph_of(self)[1]

    # -- weights and freezing --------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Whether training updates this model's weights (`model.trainable = False` freezes all).

        A model with weights is trainable while any of them is, so freezing an outer
        model shows on the models inside it, as Keras propagates the flag.
        """
        params = list(self.module.parameters())  # type: ignore[attr-defined]
        if params:
            return any(p.requires_grad for p in params)
        return bool(self.__dict__.get("_trainable_flag", True))

    @trainable.setter
    def trainable(self, value: bool) -> None:
        from batchfit.layers._base import Layer

        module = self.module  # type: ignore[attr-defined]
        for sub in module.modules():
            if isinstance(sub, Layer):
                sub.trainable = value  # BatchNormalization then also keeps its statistics
        for p in module.parameters():  # weights of plain torch modules too
            p.requires_grad_(bool(value) and getattr(p, "keras_trainable", True))
        self.__dict__["_trainable_flag"] = bool(value)

    @property
    def weights(self) -> list[Any]:
        """Every weight tensor: parameters, then floating-point state (moving statistics)."""
        module = self.module  # type: ignore[attr-defined]
        return [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]

    @property
    def trainable_weights(self) -> list[Any]:
        """The weights training updates."""
        return [p for p in self.module.parameters() if p.requires_grad]  # type: ignore[attr-defined]

    @property
    def non_trainable_weights(self) -> list[Any]:
        """Frozen parameters and state such as BatchNormalization's moving statistics."""
        module = self.module  # type: ignore[attr-defined]
        frozen = [p for p in module.parameters() if not p.requires_grad]
        return [*frozen, *(b for b in module.buffers() if b.is_floating_point())]

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as JSON (no weights); `models.model_from_json` rebuilds it."""
        import json

        config = self.get_config()  # type: ignore[attr-defined]
        return json.dumps({"class_name": config["class_name"], "config": config}, **kwargs)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """The layer called `name` (or at position `index` of `model.layers`)."""
        from batchfit.models._functional import get_layer

        return get_layer(self, name, index)
