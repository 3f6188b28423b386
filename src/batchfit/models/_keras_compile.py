"""Keras' `compile_config` (optimizer, loss, metrics) to batchfit's `compile`, and back.

Names and serialized objects map onto batchfit's by Keras class and name; a
setting batchfit cannot honour (an unknown metric, `weighted_metrics`, a loss
reduction other than the mean) leaves the model uncompiled, with a warning
saying why, rather than training it differently from Keras.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchfit.models._model import Model

__all__ = ["keras_compile_config", "restore_compile"]


_OPTIMIZER_DEFAULTS = {
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


def _keras_object(module: str, config: Mapping[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in config.items() if k != "class_name"}
    if isinstance(rest.get("learning_rate"), Mapping):
        rest["learning_rate"] = _keras_object(
            "keras.optimizers.schedules",
            {"class_name": rest["learning_rate"]["class_name"], **rest["learning_rate"]["config"]},
        )
    return {
        "module": module,
        "class_name": config["class_name"],
        "config": rest,
        "registered_name": None,
    }


def keras_compile_config(model: Model) -> dict[str, Any] | None:
    """Keras' `compile_config` for `model`; None when Keras' config cannot express it.

    That is an uncompiled model, a loss per output, or a callable loss or metric:
    Keras then loads the model uncompiled.
    """
    saved = model._compile_config
    if not saved or not isinstance(saved.get("loss"), Mapping):
        return None
    metrics = saved.get("metrics")
    if metrics and not all(isinstance(m, str) for m in metrics):
        return None
    return {
        "optimizer": _keras_object("keras.optimizers", saved["optimizer"]),
        "loss": _keras_object("keras.losses", saved["loss"]),
        "loss_weights": None,
        "metrics": list(metrics) if metrics else None,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def _flat(value: Any) -> Any:
    if isinstance(value, Mapping) and "class_name" in value and "config" in value:
        config = value["config"] if isinstance(value["config"], Mapping) else {}
        return {"class_name": value["class_name"], **{k: _flat(v) for k, v in config.items()}}
    return value


#: loss config keys batchfit's losses do not take, with the value that changes nothing
_LOSS_DEFAULTS = {
    "reduction": "sum_over_batch_size",
    "ignore_class": None,
    "axis": -1,
    "dtype": None,
}


def _loss(value: Any) -> Any:
    """A Keras loss (name, serialized object, or a list/dict of them per output) for batchfit."""
    from batchfit import losses

    if isinstance(value, list):
        return [_loss(v) for v in value]
    value = _flat(value)
    if isinstance(value, Mapping) and "class_name" in value:
        config = {
            k: v for k, v in value.items() if k not in _LOSS_DEFAULTS or v != _LOSS_DEFAULTS[k]
        }
        if "dtype" in config:
            config.pop("dtype")
        return losses.get(config)
    if isinstance(value, Mapping):
        return {k: _loss(v) for k, v in value.items()}
    return value


def _metric(value: Any) -> Any:
    """A Keras metric (name or serialized object; nested per output) as a batchfit name."""
    from batchfit import metrics
    from batchfit.models._keras_h5 import snake_case

    if isinstance(value, list):
        return [_metric(v) for v in value]
    if isinstance(value, Mapping) and "class_name" in value:
        config: Any = value.get("config") if isinstance(value.get("config"), Mapping) else {}
        for name in (config.get("name"), snake_case(str(value["class_name"]))):
            if isinstance(name, str) and name.lower() in metrics.names():
                return name
        raise ValueError(f"metric {value['class_name']!r} has no batchfit equivalent")
    if isinstance(value, Mapping):
        return {k: _metric(v) for k, v in value.items()}
    return value


def restore_compile(model: Model, config: Mapping[str, Any], path: str) -> None:
    """Compile `model` as Keras' `compile_config` says, or warn and leave it uncompiled."""
    from batchfit import optimizers

    try:
        unsupported = [k for k in ("weighted_metrics",) if config.get(k)]
        if unsupported:
            raise ValueError(f"{unsupported[0]} is not restored from .keras files")
        optimizer = _flat(config.get("optimizer"))
        if isinstance(optimizer, Mapping):
            optimizer = {k: v for k, v in optimizer.items() if _OPTIMIZER_DEFAULTS.get(k, 0) != v}
            optimizer = optimizers.get(dict(optimizer))
        loss = _loss(config.get("loss"))
        metrics = _metric(config.get("metrics"))
        model.compile(
            optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=config.get("loss_weights")
        )
    except (ValueError, TypeError, KeyError) as e:
        warnings.warn(
            f"{path}: the model's compile settings could not be restored ({e}); it is loaded "
            "uncompiled: call model.compile(...)",
            stacklevel=3,
        )
