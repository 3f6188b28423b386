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

        if cls is Model and (
            "inputs" in kwargs or "outputs" in kwargs or (args and is_symbolic(args[0]))
        ):
            from batchfit.models._functional import Functional

            return object.__new__(Functional)
        return object.__new__(cls)

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

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """The layer called `name` (or at position `index` of `model.layers`)."""
        from batchfit.models._functional import get_layer

        return get_layer(self, name, index)
