"""`OpLayer`: a `keras.ops` function (or `x + y`) applied to symbolic tensors.

Keras lets a functional graph use operations as well as layers:
`x = keras.ops.mean(x, axis=1)` or `x = a + b` on `keras.Input` tensors.
Each such call becomes an `OpLayer` node that names the operation (a
function of `batchfit.ops`) and keeps its constant arguments in the node, so
the graph runs it like any layer and saves it as data: loading accepts only
names in `batchfit.ops.__all__`.
"""

from __future__ import annotations

from typing import Any

from batchfit.layers._base import Layer, register_layer, unique_name

__all__ = ["OpLayer"]


@register_layer
class OpLayer(Layer):
    """Applies the `batchfit.ops` function `op` to its arguments.

    Args:
        op: the name of a function in `batchfit.ops` (e.g. 'add', 'mean').
    """

    def __init__(self, op: str, **kwargs: Any) -> None:
        from batchfit import ops

        if op not in ops.__all__:
            raise ValueError(f"unknown operation {op!r}; valid names: {', '.join(ops.__all__)}")
        kwargs["name"] = kwargs.get("name") or unique_name(op)
        super().__init__(**kwargs)
        self.op = op
        self._fn = getattr(ops, op).__wrapped__  # the eager function, not the recording wrapper
        self.built = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "op": self.op}
