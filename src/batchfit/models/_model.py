"""`Model`: the Keras training surface over any `torch.nn.Module`.

The model delegates: `_engine.step.Step` does the math of a batch,
`_engine.loop` the epochs and callbacks. This class resolves Keras names once
(`compile`), checks user input at the door, and formats Keras returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from batchfit import losses as losses_module
from batchfit import optimizers as optimizers_module
from batchfit._engine import compile_metrics, outputs
from batchfit._engine.logs import format_return
from batchfit._engine.step import NonFiniteLoss, Step
from batchfit.callbacks import History
from batchfit.layers._symbolic import call_symbolic, is_symbolic
from batchfit.models import _weights
from batchfit.models._subclass import SubclassAPI, SubclassModule
from batchfit.models._surface import GraphSurface
from batchfit.models._trainer import Trainer
from batchfit.optimizers._base import _check_one_clip

__all__ = ["Model"]


def _snake_name(class_name: str) -> str:
    from batchfit.layers._base import _snake

    return _snake(class_name)


def _default_device() -> torch.device:
    from batchfit import distributed

    if distributed.init():  # under torchrun: join the process group, take LOCAL_RANK's device
        return distributed.device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Model(Trainer, SubclassAPI, GraphSurface):
    """Keras' `compile`/`fit`/`evaluate`/`predict` and `*_on_batch` for a torch module.

    Three ways to make one: `Model(module)` wraps a torch module;
    `Model(inputs, outputs)` is a functional model; a subclass that calls
    `super().__init__()` without a module and defines `call(inputs, training=None)`
    is a subclassed Keras model (NOTE [ Subclassed models ] in `_subclass.py`),
    which may override `train_step`, `test_step`, `predict_step`, `compute_loss`
    and the `metrics` property.

    Args:
        module: any `torch.nn.Module`; its `forward` takes the batch's x.
        name: model name (used in summaries and saved configs).
        device: where weights and batches live (default CUDA when available).

    Example:
        >>> model = Model(torch.nn.Sequential(torch.nn.Linear(8, 1)))
        >>> model.compile(optimizer="adam", loss="mse")
        >>> history = model.fit(x, y, epochs=3)
    """

    #: cast integer inputs to float32 (batchfit layers); wrapped modules get them as given
    _cast_integer_inputs = False

    def __init__(
        self,
        module: nn.Module | None = None,
        *,
        name: str | None = None,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> None:
        subclassed = module is None and type(self) is not Model
        trainable = kwargs.pop("trainable", True) if subclassed else True
        if subclassed:
            kwargs.pop("dtype", None)  # accepted as Keras does; float32 throughout
        if kwargs:
            if {"inputs", "outputs"} & set(kwargs):
                raise TypeError(
                    "Model(inputs=..., outputs=...) builds a functional model; a subclass of "
                    "Model passes a torch.nn.Module here"
                )
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        if subclassed:
            module = SubclassModule(self)
        if module is None or not isinstance(module, nn.Module):
            raise TypeError(f"Model wraps a torch.nn.Module, got {module!r}")
        self.name = name or (_snake_name(type(self).__name__) if subclassed else "model")
        self.device = torch.device(device) if device is not None else _default_device()
        self._module: nn.Module = module.to(self.device)
        if not trainable:
            self.trainable = False
        self._step: Step | None = None
        self._compile_config: dict[str, Any] = {}
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.stop_training = False
        self.history: History | None = None
        self._train_calls = 0

    # -- the torch side ------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The underlying torch module (weights, forward)."""
        return self._module

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Forward pass on tensors, as a torch module would do it (or a graph node on symbols)."""
        if is_symbolic(x):  # a model used as a layer of a functional model
            return call_symbolic(self, (x, *args), kwargs)
        training = kwargs.pop("training", None) if kwargs else None
        if training is None or bool(training) == self._module.training:
            return self._module(x, *args, **kwargs)
        # Keras' `model(x, training=False)`: this call runs every layer in that mode
        was = self._module.training
        self._module.train(bool(training))
        try:
            return self._module(x, *args, **kwargs)
        finally:
            self._module.train(was)

    def to(self, device: str | torch.device) -> Model:
        """Move weights (and optimizer state) to `device`."""
        self.device = torch.device(device)
        self._module.to(self.device)
        if self._step is not None:
            self._step.to(self.device)
        return self

    # -- compile ---------------------------------------------------------------------
    def compile(
        self,
        optimizer: str | optimizers_module.Optimizer | torch.optim.Optimizer = "rmsprop",
        loss: Any = None,
        metrics: Sequence[Any] | Mapping[str, Any] | None = None,
        loss_weights: Sequence[float] | Mapping[str, float] | None = None,
        weighted_metrics: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: bool | str = "auto",
        auto_scale_loss: bool = True,
        accumulate_steps: int = 1,
        precision: str | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
    ) -> None:
        """Choose optimizer, loss and metrics (Keras names, instances, or torch objects).

        Args:
            optimizer: a Keras name ('adam'), a batchfit optimizer, or a torch optimizer.
            loss: a Keras name or alias, a `batchfit.losses.Loss`, a torch loss
                module, or a callable `(y_true, y_pred)`; for a module with several
                outputs, a dict by output name or a list in output order (see
                NOTE [ Several outputs ] in `_engine/outputs.py`).
            metrics: Keras names ('accuracy', 'mae', 'auc', ...), Metric objects
                or callables `(y_true, y_pred)`; per output, a dict or a list of lists.
            loss_weights: with several outputs, each loss's weight in the total.
            weighted_metrics: metrics that receive `sample_weight` and `class_weight`
                (those in `metrics` do not, as in Keras 3); logged as
                `weighted_<name>` when `metrics` has the same name.
            run_eagerly: accepted for Keras code; torch always runs eagerly, and
                `run_eagerly=True` turns `jit_compile` off, as in Keras.
            steps_per_execution: accepted for Keras code (a positive integer); each
                batch is still one step, so the numbers do not depend on it.
            jit_compile: run the forward pass through `torch.compile` (True);
                'auto' is False, as on Keras' torch backend.
            auto_scale_loss: accepted for Keras code; fp16 loss scaling follows
                `precision="fp16"` on CUDA.
            accumulate_steps: apply the optimizer every k batches with the averaged
                gradient (simulates a k times larger batch).
            precision: None (float32), 'bf16' or 'fp16' autocast.
            clipnorm, clipvalue, global_clipnorm: gradient clipping, as the Keras
                optimizer arguments of the same names (set on the optimizer).
        """
        if not isinstance(accumulate_steps, int) or accumulate_steps < 1:
            raise ValueError(
                f"accumulate_steps must be a positive integer, got {accumulate_steps!r}"
            )
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(
                f"steps_per_execution must be a positive integer, got {steps_per_execution!r}"
            )
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile must be True, False or 'auto', got {jit_compile!r}")
        jit = jit_compile is True and not run_eagerly
        self.optimizer = optimizers_module.get(optimizer)
        for key, value in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        ):
            if value is not None:
                setattr(self.optimizer, key, float(value))
        _check_one_clip(
            self.optimizer.clipnorm, self.optimizer.clipvalue, self.optimizer.global_clipnorm
        )
        saved_metrics: Any
        if outputs.is_structured(loss):
            self.loss, metrics, saved_metrics = outputs.compile_outputs(loss, loss_weights, metrics)
        else:
            if loss_weights is not None:
                raise ValueError(
                    "loss_weights weighs the losses of several outputs: give loss as a dict "
                    "by output name or a list in output order"
                )
            if isinstance(metrics, Mapping):
                raise ValueError("metrics per output (a dict) need a loss per output too")
            metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
            saved_metrics = compile_metrics.saved_specs(metrics)
            self.loss = None if loss is None else losses_module.get(loss)
        for spec in metrics:  # fail now on unknown names rather than at the first batch
            if isinstance(spec, str):
                from batchfit import metrics as metrics_module

                if not metrics_module.is_known(spec):
                    raise ValueError(
                        f"unknown metric {spec!r}; valid names: {', '.join(metrics_module.names())}"
                    )
        weighted = compile_metrics.weighted_specs(weighted_metrics, loss, loss_weights)
        forward_module = torch.compile(self._module) if jit else None
        self._step = Step(
            self._module,
            self.loss,
            self.optimizer,
            [*metrics, *weighted],
            self.device,
            accumulate_steps=accumulate_steps,
            precision=precision,
            forward_module=forward_module,  # type: ignore[arg-type]
            cast_integer_inputs=self._cast_integer_inputs,
        )
        self._install_hooks(self._step)
        self._compile_config = {
            "optimizer": self.optimizer.get_config(),
            "loss": self.loss.get_config() if self.loss is not None else None,
            "metrics": saved_metrics,
            "weighted_metrics": compile_metrics.saved_specs(weighted),
            "accumulate_steps": accumulate_steps,
            "precision": precision,
        }
        if steps_per_execution != 1:
            self._compile_config["steps_per_execution"] = steps_per_execution

    @property
    def compiled(self) -> bool:
        return self._step is not None

    def _require_step(self, what: str) -> Step:
        if self._step is None:
            raise RuntimeError(f"call model.compile(optimizer, loss) before {what}()")
        return self._step

    @property
    def metrics_names(self) -> list[str]:
        """Names of the returned values, loss first (known after the first batch)."""
        step = self._step
        if step is None:
            return []
        if not step.ready:
            return [
                "loss",
                *[
                    m if isinstance(m, str) else getattr(m, "name", "metric")
                    for m in step.compiled_metrics.specs
                ],
            ]
        return step.compiled_metrics.names

    def reset_metrics(self) -> None:
        if self._step is not None:
            self._step.reset_metrics()

    # -- batch level ---------------------------------------------------------------------
    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Mapping[int, float] | None = None,
        return_dict: bool = False,
        reset_metrics: bool = True,
    ) -> float | list[float] | dict[str, float]:
        """One gradient step on one batch (the same step `fit` runs).

        Returns:
            The batch loss (a float) when there are no metrics, else
            `[loss, *metrics]`, or a dict with `return_dict=True`. Metrics cover
            this batch only unless `reset_metrics=False`, which adds the batch to
            the running sums and returns those.

        Raises:
            NonFiniteLoss: the loss was NaN/inf; the weights were not changed.
        """
        step = self._require_step("train_on_batch")
        self._train_calls += 1
        if step.hooks.train_step is not None:  # a subclass's own step: its logs, as fit sees them
            if reset_metrics:
                step.reset_metrics()
            step.train_batch((x, y, sample_weight), class_weight, strict=True)
            return format_return(dict(step.logs()), return_dict)
        try:
            out = step.train_batch(
                (x, y, sample_weight), class_weight, strict=True, update_metrics=not reset_metrics
            )
        except NonFiniteLoss as e:
            where = f"{e.where} in train_on_batch call {self._train_calls}".lstrip()
            raise NonFiniteLoss(e.value, where) from None
        assert out is not None  # strict: an empty batch is an error
        if reset_metrics:
            return format_return(step.batch_values(out), return_dict)
        return format_return(dict(step.logs()), return_dict)

    def test_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """Loss and metrics of one batch, without updating weights."""
        step = self._require_step("test_on_batch")
        step.reset_metrics()
        step.test_batch((x, y, sample_weight), strict=True)
        return format_return(dict(step.logs()), return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Predictions for one batch, as NumPy."""
        return self._predict_step().predict_batch((x,))

    def _predict_step(self) -> Step:
        if self._step is None:  # predicting needs no compile, as in Keras
            cast = self._cast_integer_inputs
            self._step = Step(self._module, None, None, [], self.device, cast_integer_inputs=cast)
            self._install_hooks(self._step)
            self._step.ready = self._step.hooks.predict_step is None
        return self._step

    # -- weights -------------------------------------------------------------------------
    def get_weights(self) -> list[np.ndarray]:
        """All weights as NumPy arrays, in Keras order and layout."""
        return _weights.get_weights(self._module)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights from arrays in `get_weights()` order."""
        _weights.set_weights(self._module, weights)

    def count_params(self) -> int:
        """Every weight's size, trainable or not (moving statistics too), as Keras counts."""
        from batchfit.models._summary import count_weights

        return sum(count_weights(self._module))

    def summary(self, print_fn: Callable[[str], Any] | None = None) -> str:
        """Print (and return) a table of layers, output shapes and parameter counts."""
        from batchfit.models._summary import summary_text

        text = summary_text(self)
        (print_fn or print)(text)
        return text

    # -- saving ------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {"class_name": "Model", "name": self.name, "module": type(self._module).__qualname__}

    def save(self, path: str) -> None:
        """Save architecture, weights and compile settings in one safetensors file.

        Under torchrun only rank 0 writes (the weights are the same on every rank).
        """
        from batchfit import distributed
        from batchfit.models._saving import save_model

        if not distributed.is_main():
            return
        save_model(self, path)

    def save_weights(self, path: str) -> None:
        """Save the weights only (safetensors); under torchrun only rank 0 writes."""
        from batchfit import distributed
        from batchfit.models._saving import save_weights

        if not distributed.is_main():
            return
        save_weights(self, path)

    def load_weights(self, path: str) -> None:
        """Load weights saved by `save_weights` or `save` (never runs code from the file)."""
        from batchfit.models._saving import load_weights

        load_weights(self, path)

    def __repr__(self) -> str:
        params = f"{self.count_params():,} params"
        return f"<{type(self).__name__} {self.name!r} on {self.device}, {params}>"
