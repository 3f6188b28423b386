"""Keras' subclassing API for `Model`: `call`, tracked attributes, overridable steps.

NOTE [ Subclassed models ]
`class M(keras.Model)` that calls `super().__init__()` without a module gets a
`SubclassModule`: an `nn.Module` whose `forward` runs `M.call`. Layers, torch
modules and models assigned as attributes (also in lists, tuples and dicts)
are registered into it (`track_attribute`, from `Model.__setattr__`), so the
engine sees one ordinary module: weights, `.to(device)`, `state_dict`, saving,
`summary`, the lazy build at the first batch and `trainable` need nothing
else. A nested model registers its module, so the outer model owns (and moves,
saves and trains) the inner weights, which stay shared with the inner model.
Containers filled after assignment (`self.blocks.append(...)`) are registered
again at the first call. `Metric`s assigned as attributes are tracked for the
default `metrics` property.

The steps a subclass overrides (`train_step`, `test_step`, `predict_step`) are
handed to `Step` as callables at `compile` (NOTE [ One step ] in
`_engine/step.py`), so `fit` and `train_on_batch` run the same override.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from batchfit.layers._base import _accepts, _shape_of, outermost_call
from batchfit.metrics import Metric

if TYPE_CHECKING:
    from batchfit._engine.step import Step
    from batchfit.models._model import Model

__all__ = ["CompiledMetricsView", "SubclassModule", "functional_subclass", "track_attribute"]


class SubclassModule(nn.Module):
    """The module of a subclassed model: its children are the model's tracked attributes."""

    def __init__(self, owner: Model) -> None:
        super().__init__()
        self.__dict__["owner"] = owner  # not a submodule: the model is not an nn.Module
        self.built = False  # the first call registers late containers and runs `build`
        call = getattr(type(owner), "call", None)
        self._call_takes_training = call is not None and _accepts(call, "training")
        self._call_takes_mask = call is not None and _accepts(call, "mask")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        owner = self.__dict__["owner"]
        if args and isinstance(args[0], np.ndarray):  # Keras takes arrays: floats as float32
            first = torch.as_tensor(args[0], device=owner.device)
            args = (first.float() if first.is_floating_point() else first, *args[1:])
        if not hasattr(owner, "call"):
            raise NotImplementedError(
                f"{type(owner).__name__} has no call(inputs): define it to call the model"
            )
        with outermost_call(self):
            if not self.built:
                retrack_containers(owner)
                owner.build(_shape_of(args[0]))
                self.built = True
                self.to(owner.device)
            if "training" not in kwargs and self._call_takes_training:
                kwargs["training"] = self.training
            if not self._call_takes_mask:
                kwargs.pop("mask", None)  # Keras' masks are not propagated here
            return owner.call(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"owner={type(self.__dict__['owner']).__name__}"


def _as_module(value: Any) -> nn.Module | None:
    from batchfit.models._model import Model

    if isinstance(value, Model):
        return value.module
    if isinstance(value, nn.Module):
        return value
    return None


def _container_module(value: Any) -> nn.Module | None:
    """A ModuleList/ModuleDict of the modules in a list, tuple or dict (None if it has none)."""
    if isinstance(value, (list, tuple)):
        modules = [m for m in map(_as_module, value) if m is not None]
        return nn.ModuleList(modules) if modules else None
    if isinstance(value, Mapping):
        items = {str(k): m for k, m in ((k, _as_module(v)) for k, v in value.items()) if m}
        return nn.ModuleDict(items) if items else None
    return None


def track_attribute(model: Model, name: str, value: Any) -> None:
    """Register what `model.<name> = value` holds: modules, models, containers, metrics."""
    if isinstance(value, Metric):
        model.__dict__.setdefault("_tracked_metrics", {})[name] = value
        return
    tracked = model.__dict__.get("_tracked_metrics")
    if tracked and name in tracked:
        del tracked[name]
    module = model.__dict__.get("_module")
    if not isinstance(module, SubclassModule) or name == "_module":
        return
    found = _as_module(value)
    if found is None:
        found = _container_module(value)
    if found is not None:
        if found is module:
            raise ValueError(f"{type(model).__name__}.{name}: a model cannot contain itself")
        module.add_module(name, found)
    elif name in module._modules:
        del module._modules[name]


def _attribute_values(namespace: Mapping[str, Any]) -> list[Any]:
    """The values of a model's attributes, with lists, tuples and dicts opened one level."""
    out: list[Any] = []
    for value in namespace.values():
        if isinstance(value, (list, tuple)):
            out.extend(value)
        elif isinstance(value, Mapping):
            out.extend(value.values())
        else:
            out.append(value)
    return out


def retrack_containers(model: Model) -> None:
    """Register again the lists and dicts of layers filled after they were assigned."""
    for name, value in list(model.__dict__.items()):
        if isinstance(value, (list, tuple, Mapping)) and not name.startswith("__"):
            track_attribute(model, name, value)


class CompiledMetricsView(Metric):
    """The compiled metrics as one entry of `model.metrics` (Keras' "compile_metrics").

    `update_state(y, y_pred)` updates every metric given to `compile`; `result()`
    is a dict by name, which the logs flatten, as in Keras.
    """

    def __init__(self, step: Step) -> None:
        super().__init__("compile_metrics")
        self._step = step

    def update_state(
        self, y_true: Any, y_pred: Any, sample_weight: torch.Tensor | None = None
    ) -> None:
        for m in self._step.compiled_metrics.metrics:
            m.update_state(y_true, y_pred, sample_weight)

    def result(self) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {m.name: m.result() for m in self._step.compiled_metrics.metrics}

    def reset_state(self) -> None:
        for m in self._step.compiled_metrics.metrics:
            m.reset_state()


_functional_subclasses: dict[type, type] = {}


def functional_subclass(cls: type) -> type:
    """`CustomModel(inputs, outputs)`: the user's class on top of `Functional` (cached)."""
    made = _functional_subclasses.get(cls)
    if made is None:
        from batchfit.models._functional import Functional

        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        made = type(cls.__name__, (cls, Functional), namespace)
        _functional_subclasses[cls] = made
    return made


class SubclassAPI:
    """What Keras code calls on `self` in a subclassed model (a mixin of `Model`).

    The steps here are the defaults: `train_step(data)` is the engine's step, so
    an override may call `super().train_step(data)`.
    """

    if TYPE_CHECKING:
        _step: Step | None
        device: torch.device
        loss: Any

        @property
        def module(self) -> nn.Module: ...
        def _require_step(self, what: str) -> Step: ...
        def _predict_step(self) -> Step: ...

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if not name.startswith("__"):
            track_attribute(self, name, value)  # type: ignore[arg-type]

    def build(self, input_shape: Any) -> None:
        """Create weights for inputs of `input_shape` (a subclass may override it)."""

    # -- the steps a subclass may override ---------------------------------------------
    def train_step(self, data: Any) -> dict[str, Any]:
        """One training step on `data` (`x`, `(x, y)` or `(x, y, sample_weight)`): the
        compiled loss, backward and update; returns the metrics' running values."""
        step = self._require_step("train_step")
        batch = step.converter.convert(data, strict=True)
        loss, y_pred = step.train_step(batch)
        step.compiled_metrics.update(loss, batch, y_pred)
        return step.results()

    def test_step(self, data: Any) -> dict[str, Any]:
        """Loss and metrics of one batch (no update); returns the running values."""
        step = self._require_step("test_step")
        batch = step.converter.convert(data, strict=True)
        loss, y_pred = step.test_step(batch)
        step.compiled_metrics.update(loss, batch, y_pred)
        return step.results()

    def predict_step(self, data: Any) -> Any:
        """The predictions for one batch's inputs (`data` is `x` or `(x,)`)."""
        step = self._predict_step()
        x = data[0] if isinstance(data, tuple) and len(data) == 1 else data
        return step.predict_step(x)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> torch.Tensor:
        """The compiled loss of `(y, y_pred)` plus the losses added by `add_loss`."""
        total: list[torch.Tensor] = []
        if self.loss is not None:
            total.append(self.loss(y, y_pred, sample_weight))
        total.extend(t.sum() for t in self.losses)
        if not total:
            raise ValueError(
                f"{type(self).__name__}.compute_loss: no loss to compute; give "
                "compile(loss=...) or add losses with add_loss()"
            )
        return total[0] if len(total) == 1 else torch.stack(total).sum()

    @property
    def metrics(self) -> list[Metric]:
        """The loss tracker, the compiled metrics (one entry) and metrics held as attributes;
        `fit` resets all of them at each epoch, `evaluate` before its pass."""
        out: list[Metric] = []
        step = self._step
        if step is not None:
            out.append(step.compiled_metrics.loss_tracker)
            if step.compiled_metrics.specs:
                out.append(CompiledMetricsView(step))
        out.extend(self.__dict__.get("_tracked_metrics", {}).values())
        return out

    @property
    def layers(self) -> list[Any]:
        """The layers and models held as attributes (lists and dicts flattened), in order."""
        from batchfit.models._model import Model

        models = {id(v.module): v for v in _attribute_values(self.__dict__) if isinstance(v, Model)}
        out: list[Any] = []
        for child in self.module.children():
            inner: list[nn.Module]
            if isinstance(child, nn.ModuleDict):
                inner = list(child.values())
            elif isinstance(child, nn.ModuleList):
                inner = list(child)
            else:
                inner = [child]
            out.extend(models.get(id(module), module) for module in inner)
        return out

    @property
    def losses(self) -> list[torch.Tensor]:
        """Losses added by `add_loss` in the last call, and weight regularization penalties."""
        from batchfit.layers._base import collect_losses

        return collect_losses(self.module)

    def add_loss(self, loss: Any) -> None:
        """Add a loss from the model's own `call` (see NOTE [ Added losses ])."""
        from batchfit.layers._base import losses_used

        value = loss if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
        self.module.__dict__.setdefault("_added_losses", []).append(value)
        losses_used[0] = True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients of every weight (torch's `Module.zero_grad`)."""
        self.module.zero_grad(set_to_none=set_to_none)

    def parameters(self) -> Any:
        """The torch parameters (as `nn.Module.parameters`)."""
        return self.module.parameters()

    def _install_hooks(self, step: Step) -> None:
        """Hand the step this model's overrides, added losses and metrics (at compile)."""
        from batchfit.layers._base import clear_losses, collect_losses, losses_used

        hooks = step.hooks
        hooks.train_step = self._overridden("train_step")
        hooks.test_step = self._overridden("test_step")
        hooks.predict_step = self._overridden("predict_step")
        if self._overridden("compute_loss") is not None:
            hooks.compute_loss = lambda x, y, y_pred, sw, training: self.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sw, training=training
            )
        module = self.module
        hooks.added_losses = lambda: collect_losses(module) if losses_used[0] else ()
        hooks.clear_losses = lambda: clear_losses(module) if losses_used[0] else None
        hooks.can_forward = not isinstance(module, SubclassModule) or hasattr(type(self), "call")
        if type(self).metrics is not SubclassAPI.metrics or self.__dict__.get("_tracked_metrics"):
            hooks.reset_metrics = self._reset_own_metrics

    def _reset_own_metrics(self) -> None:
        for m in self.metrics:
            m.reset_state()

    def _overridden(self, name: str) -> Any:
        """The bound override of a step method, or None when the class keeps the default."""
        if getattr(type(self), name) is getattr(SubclassAPI, name):
            return None
        return getattr(self, name)
