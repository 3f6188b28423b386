"""The Keras-named layer base on `torch.nn.Module`.

A layer is an `nn.Module` whose weights are made by `build(input_shape)`:
at construction when `input_shape`/`input_dim` is given, otherwise at the first
batch. Shapes follow Keras: they include the batch dimension (`None`), and
images are channels-last `(N, H, W, C)`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from batchfit.layers._symbolic import call_symbolic, is_symbolic, node_attribute

__all__ = ["Layer", "Variable", "layer_registry", "register_layer"]

_name_counts: defaultdict[str, int] = defaultdict(int)
_module_call = nn.Module.__call__
_REGISTRY: dict[str, type[Layer]] = {}

Shape = tuple[int | None, ...]


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make `cls` loadable by name from a saved config (no other class ever is)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def layer_registry() -> dict[str, type[Layer]]:
    return dict(_REGISTRY)


# NOTE [ Keras variables on torch ]
# Keras code reads a weight's tensor as `v.value` (Keras' torch guide does
# `[v.value.grad for v in self.trainable_weights]`) and changes state with
# `v.assign_add(...)`. Weights made by `add_weight` are `Variable`s, a
# `torch.nn.Parameter` subclass with Keras' methods; the parameters of the
# built-in layers are plain `nn.Parameter`s, so `value` (the tensor itself) is
# also added to `nn.Parameter` when torch does not define it. Nothing else of
# torch is changed.
if not hasattr(nn.Parameter, "value"):
    nn.Parameter.value = property(lambda self: self)  # type: ignore[attr-defined]


class Variable(nn.Parameter):
    """A layer weight made by `add_weight`: a torch parameter with Keras' variable methods.

    A non-trainable variable (`trainable=False`) is state: saved with the model,
    never given to the optimizer, and left frozen by `layer.trainable = True`.
    """

    keras_trainable = True
    keras_name = ""

    @property
    def trainable(self) -> bool:
        return self.keras_trainable

    @property
    def name(self) -> str:
        return self.keras_name

    def assign(self, value: Any) -> Variable:
        """Set the value in place (no gradient is recorded)."""
        with torch.no_grad():
            self.copy_(torch.as_tensor(value, dtype=self.dtype, device=self.device))
        return self

    def assign_add(self, delta: Any) -> Variable:
        with torch.no_grad():
            self.add_(torch.as_tensor(delta, dtype=self.dtype, device=self.device))
        return self

    def assign_sub(self, delta: Any) -> Variable:
        with torch.no_grad():
            self.sub_(torch.as_tensor(delta, dtype=self.dtype, device=self.device))
        return self

    def numpy(self) -> np.ndarray:  # type: ignore[override]
        return self.detach().cpu().numpy()

    def __deepcopy__(self, memo: dict[int, Any]) -> Variable:
        copied = super().__deepcopy__(memo)
        copied.keras_trainable, copied.keras_name = self.keras_trainable, self.keras_name
        return copied


def _keeps_trainable(p: torch.Tensor) -> bool:
    """Whether `trainable = True` may unfreeze `p` (not a `trainable=False` variable)."""
    return getattr(p, "keras_trainable", True)


# NOTE [ Added losses ]
# `add_loss(value)` during a call keeps `value` on the layer until the next
# outermost call clears it, as Keras does: the outermost user layer or model
# call (a counter of nested calls below) clears the losses of its whole
# subtree first. Only user layers and subclassed models count calls, so the
# built-in layers' fast path is unchanged. `losses` adds the penalties of
# `add_weight(regularizer=...)`, computed when read.
_call_depth = [0]
#: whether any layer ever added a loss or a weight regularizer (else steps skip the walk)
losses_used = [False]


def clear_losses(module: nn.Module) -> None:
    for m in module.modules():
        added = m.__dict__.get("_added_losses")
        if added:
            added.clear()


def collect_losses(module: nn.Module) -> list[torch.Tensor]:
    """Losses added by `add_loss` in the last call, then weight regularization penalties."""
    out: list[torch.Tensor] = []
    for m in module.modules():
        added = m.__dict__.get("_added_losses")
        if added:
            out.extend(added)
        for weight, regularizer in m.__dict__.get("_weight_regularizers", ()):
            out.append(regularizer(weight))
    return out


class Regularized:
    """Keras' `kernel_regularizer`, `bias_regularizer` and `activity_regularizer` (and
    `kernel_constraint`/`bias_constraint` where the layer takes them) for a built-in
    layer with `kernel`/`bias` weights (Dense, the convolutions, the recurrent layers).

    Weight penalties join `layer.losses` through `_weight_regularizers` (as
    `add_weight(regularizer=...)` does); the activity penalty is added per call,
    divided by the batch size as Keras 3's `Layer.__call__` does.
    """

    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    activity_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None
    #: how the stored kernel maps to Keras' layout (Dense stores it transposed)
    _keras_kernel: Any = None

    def _set_regularizers(self, kernel: Any, bias: Any, activity: Any) -> None:
        from batchfit import regularizers

        self.kernel_regularizer = regularizers.get(kernel)
        self.bias_regularizer = regularizers.get(bias)
        self.activity_regularizer = regularizers.get(activity)
        if self.kernel_regularizer or self.bias_regularizer or self.activity_regularizer:
            losses_used[0] = True

    def _register_weight_penalties(self) -> None:
        """At `build`: weight penalties into `layer.losses`, constraints onto the weights."""
        layer: Any = self
        penalties = layer.__dict__.setdefault("_weight_regularizers", [])
        penalties.clear()
        to_keras = self._keras_kernel or (lambda w: w)
        if self.kernel_regularizer is not None:
            penalty = self.kernel_regularizer
            penalties.append((layer.kernel, lambda w: penalty(to_keras(w))))
        if self.bias_regularizer is not None and getattr(layer, "bias", None) is not None:
            penalties.append((layer.bias, self.bias_regularizer))
        recurrent = getattr(self, "recurrent_regularizer", None)
        if recurrent is not None:
            penalties.append((layer.recurrent_kernel, lambda w: recurrent(to_keras(w))))
        attach_constraint(layer.kernel, self.kernel_constraint, self._keras_kernel)
        if getattr(layer, "bias", None) is not None:
            attach_constraint(layer.bias, self.bias_constraint)

    def _set_constraints(self, kernel: Any, bias: Any) -> None:
        from batchfit import constraints

        self.kernel_constraint = constraints.get(kernel)
        self.bias_constraint = constraints.get(bias)

    def _constraint_config(self) -> dict[str, Any]:
        from batchfit import constraints

        return {
            name: constraints.serialize(getattr(self, name))
            for name in ("kernel_constraint", "bias_constraint")
        }

    def _activity_penalty(self, y: torch.Tensor) -> None:
        penalty = self.activity_regularizer(y)
        layer: Any = self
        layer.add_loss(penalty / y.shape[0] if y.dim() > 0 else penalty)

    def _regularizer_config(self) -> dict[str, Any]:
        return {
            name: _serialize_regularizer(getattr(self, name), getattr(self, "name", ""))
            for name in ("kernel_regularizer", "bias_regularizer", "activity_regularizer")
        }


# NOTE [ Constraints after the update ]
# Keras 3's optimizer projects a variable with its `constraint` right after
# each update (`BaseOptimizer.apply`), only the variables that had a gradient.
# A constrained weight here carries `keras_constraint(w)`, which projects it in
# place, in Keras' layout (a Dense kernel is stored `(out, in)` but constrained
# as Keras' `(in, out)`); `Optimizer.step` calls it after the update, so `fit`,
# `train_on_batch` and `optimizer.apply` all do.
def attach_constraint(weight: torch.Tensor, constraint: Any, to_keras: Any = None) -> None:
    """Make the optimizer project `weight` with `constraint` after each update (None: stop)."""
    if constraint is None:
        weight.__dict__.pop("keras_constraint", None)
        return

    @torch.no_grad()
    def project(w: torch.Tensor) -> None:
        view = to_keras(w) if to_keras is not None else w
        view.copy_(constraint(view))

    weight.keras_constraint = project  # type: ignore[attr-defined]


def _serialize_regularizer(value: Any, layer: str) -> Any:
    if value is None:
        return None
    get_config = getattr(value, "get_config", None)
    if get_config is None:
        raise ValueError(
            f"layer {layer!r}: a regularizer given as a function cannot be saved (it is "
            "code); use keras.regularizers.L1/L2/L1L2, or a Regularizer class with get_config"
        )
    return {"class_name": type(value).__name__, "config": get_config()}


class outermost_call:
    """Count a user layer's or model's call; the outermost one clears old added losses."""

    __slots__ = ("module",)

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        if _call_depth[0] == 0:
            clear_losses(self.module)
        _call_depth[0] += 1

    def __exit__(self, *exc: object) -> None:
        _call_depth[0] -= 1


def _accepts(fn: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _shape_of(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return tuple(x.shape)
    if isinstance(x, (list, tuple)):
        return [_shape_of(v) for v in x]
    if isinstance(x, dict):
        return {k: _shape_of(v) for k, v in x.items()}
    return None


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    values = x.values() if isinstance(x, dict) else x if isinstance(x, (list, tuple)) else ()
    for v in values:
        found = _first_tensor(v)
        if found is not None:
            return found
    return None


def _user_forward(self: Layer, *args: Any, **kwargs: Any) -> Any:
    """`forward` of a user's Layer subclass: lazy `build` with Keras' shape, `training`."""
    with outermost_call(self):
        if not self.built:
            self._build_from(args[0] if args else next(iter(kwargs.values()), None))
        if "training" not in kwargs and type(self)._call_takes_training:
            kwargs["training"] = self.training
        return self.call(*args, **kwargs)


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", s).lower()


def unique_name(base: str) -> str:
    count = _name_counts[base]
    _name_counts[base] += 1
    return base if count == 0 else f"{base}_{count}"


class Layer(nn.Module):
    """Base of batchfit layers: lazy `build`, Keras config and weights.

    A user's subclass (Keras' subclassing API) makes weights with `add_weight` in
    `__init__` or `build(input_shape)`, may take `training` in `call`, and adds
    losses with `add_loss`.

    Subclasses implement `build(input_shape)` (make parameters, then call
    `super().build(input_shape)`), `call(x)`, and `get_config()`.

    Args:
        name: unique layer name; Keras-style default (`dense`, `dense_1`, ...).
        input_shape: shape of one sample (no batch dimension); builds the layer now.
        input_dim: shorthand for `input_shape=(input_dim,)`.
        trainable: whether the optimizer updates this layer's weights.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        batch_size: int | None = None,
        trainable: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.name = name or unique_name(_snake(type(self).__name__))
        if input_dim is not None:
            if input_shape is not None:
                raise ValueError(f"{self.name}: give input_shape or input_dim, not both")
            input_shape = (int(input_dim),)
        self.declared_input_shape: tuple[int | None, ...] | None = (
            tuple(input_shape) if input_shape is not None else None
        )
        self.built = False
        self.input_shape_: Shape | None = None
        self._trainable = bool(trainable)
        del batch_size, dtype  # accepted for Keras compatibility; float32 throughout

    #: whether `call` takes `training` (set per subclass)
    _call_takes_training = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A user's layer (Keras' subclassing API) builds with the real input shape, gets
        # `training` when its `call` takes it, and counts calls for `add_loss`; the
        # built-in layers keep the plain `forward` (their fast path).
        if not cls.__module__.startswith("batchfit.") and "forward" not in cls.__dict__:
            cls.forward = _user_forward  # type: ignore[method-assign]
        cls._call_takes_training = _accepts(cls.call, "training")

    # -- Keras surface ----------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        """Create weights for inputs of `input_shape` (batch dimension included)."""
        self.input_shape_ = tuple(input_shape)
        self.built = True
        self.trainable = self._trainable

    def call(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs)")

    def _build_from(self, inputs: Any) -> None:
        """Build a user layer at its first call, as Keras: `build(shape)` with the batch size."""
        shape = _shape_of(inputs)
        if type(self).build is Layer.build:
            Layer.build(self, shape)
        else:
            self.build(shape)
            Layer.build(self, shape)  # Keras marks the layer built after a user's build
        first = _first_tensor(inputs)
        if first is not None:
            self.to(first.device)

    def add_weight(
        self,
        shape: Sequence[int] | None = None,
        initializer: Any = "glorot_uniform",
        dtype: Any = None,
        trainable: bool = True,
        regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Variable:
        """Make a weight as Keras' `Layer.add_weight` (Keras initializer names).

        A non-trainable weight is state that is saved with the model and never
        trained. `regularizer` adds its penalty on the weight to `layer.losses`;
        `constraint` projects the weight after each optimizer update. Keyword
        arguments Keras accepts for other backends (`aggregation`, `autocast`,
        ...) are accepted and have no effect here.
        """
        from batchfit import initializers, regularizers
        from batchfit.layers._input import as_dtype

        shape = tuple(int(d) for d in (shape or ()))
        torch_dtype = torch.float32 if dtype is None else as_dtype(dtype)
        if name is None:
            name = f"variable_{len(self._parameters)}" if self._parameters else "variable"
        if not name.isidentifier() or hasattr(type(self), name) or name in self._modules:
            attr = f"weight_{len(self._parameters)}"
        else:
            attr = name
        if attr in self._parameters:
            attr = f"{attr}_{len(self._parameters)}"
        data = torch.empty(shape, dtype=torch_dtype)
        if isinstance(initializer, (int, float)) and not isinstance(initializer, bool):
            data.fill_(float(initializer))
        else:
            fan_in, fan_out = _fans(shape)
            initializers.get(initializer)(data, fan_in, fan_out)
        var = Variable(data, requires_grad=bool(trainable) and data.is_floating_point())
        var.keras_trainable = bool(trainable)
        var.keras_name = name
        self.register_parameter(attr, var)
        if regularizer is not None:
            penalty = regularizers.get(regularizer)
            self.__dict__.setdefault("_weight_regularizers", []).append((var, penalty))
            losses_used[0] = True
        if kwargs.get("constraint") is not None:
            from batchfit import constraints

            attach_constraint(var, constraints.get(kwargs["constraint"]))
        del kwargs
        return var

    def add_loss(self, loss: Any) -> None:
        """Add a scalar (or a tensor, summed) to this call's training loss.

        See NOTE [ Added losses ].
        """
        value = loss if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
        self.__dict__.setdefault("_added_losses", []).append(value)
        losses_used[0] = True

    @property
    def losses(self) -> list[torch.Tensor]:
        """Losses added in the last call by this layer and the layers inside it, and
        the penalties of its weight regularizers."""
        return collect_losses(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # hot path (a tensor, no keywords): one type check on top of torch's call
        if not kwargs and args and type(args[0]) is torch.Tensor:
            return _module_call(self, *args)
        if args and is_symbolic(args[0]):  # NOTE [ Recording a functional graph ]
            return call_symbolic(self, args, kwargs)
        if args and isinstance(args[0], np.ndarray):  # Keras takes arrays: floats as float32
            first = torch.as_tensor(args[0])
            args = (first.float() if first.is_floating_point() else first, *args[1:])
        training = kwargs.pop("training", None) if kwargs else None
        if training is None or bool(training) == self.training:
            return _module_call(self, *args, **kwargs)
        was = self.training  # Keras' `layer(x, training=True)`: this call runs in that mode
        self.train(bool(training))
        try:
            return _module_call(self, *args, **kwargs)
        finally:
            self.train(was)

    @property
    def input(self) -> Any:
        """The symbolic input(s) of this layer's first call in a functional graph."""
        return node_attribute(self, "input_tensors", "input")

    @property
    def output(self) -> Any:
        """The symbolic output(s) of this layer's first call in a functional graph."""
        return node_attribute(self, "output_tensors", "output")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.built:
            self.build((None, *x.shape[1:]))
            self.to(x.device)
        return self.call(x)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "trainable": self._trainable}
        if self.declared_input_shape is not None:
            config["input_shape"] = list(self.declared_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in self.parameters():
            p.requires_grad_(self._trainable and _keeps_trainable(p))

    @property
    def weights(self) -> list[torch.Tensor]:
        """Weights in Keras order: parameters, then non-trainable state."""
        return [*self.parameters(), *(b for b in self.buffers() if b.is_floating_point())]

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        """The weights training updates (none while the layer is frozen)."""
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        """Frozen parameters, then state such as moving statistics."""
        frozen = [p for p in self.parameters() if not p.requires_grad]
        return [*frozen, *(b for b in self.buffers() if b.is_floating_point())]

    def get_weights(self) -> list[np.ndarray]:
        """Weights as NumPy arrays in Keras order and layout."""
        return [w.detach().cpu().numpy().copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set weights from arrays in Keras order and layout (as `get_weights`)."""
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(
                f"layer {self.name!r} expects {len(own)} weight arrays, got {len(weights)}"
            )
        with torch.no_grad():
            for i, (w, value) in enumerate(zip(own, weights)):
                arr = np.asarray(value)
                if tuple(arr.shape) != tuple(w.shape):
                    raise ValueError(
                        f"layer {self.name!r} weight {i}: expected shape {tuple(w.shape)}, "
                        f"got {tuple(arr.shape)}"
                    )
                w.copy_(torch.as_tensor(arr, dtype=w.dtype))

    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) is Variable:  # `self.w = self.add_weight(...)`: keep one name, this one
            params = self.__dict__.get("_parameters", {})
            for key in [k for k, v in params.items() if v is value and k != name]:
                del params[key]
        modules = self.__dict__.get("_modules")
        if modules is not None and not isinstance(value, nn.Module):
            modules.pop(name, None)
            inner = _model_module(value)
            if inner is not None:
                # a batchfit model held by a layer (keras.io's TransformerBlock keeps its
                # feed-forward `keras.Sequential` so): the attribute stays the model, its
                # torch module becomes a submodule, so its weights count, train and move
                object.__setattr__(self, name, value)
                modules[name] = inner
                return
        super().__setattr__(name, value)

    def get_build_config(self) -> dict[str, Any]:
        return {"input_shape": self.input_shape_}

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def _model_module(value: Any) -> nn.Module | None:
    """The torch module of a batchfit `Model` (which wraps one rather than being one)."""
    module = getattr(value, "module", None) if callable(getattr(value, "fit", None)) else None
    return module if isinstance(module, nn.Module) else None


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fan-in and fan-out of a weight shape (kernels: receptive field times channels)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive
