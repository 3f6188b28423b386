"""Saving and loading models as safetensors: tensors plus a JSON config, never pickle.

A file holds the module's `state_dict` tensors and, in the safetensors
metadata, `{"batchfit": {"format": 1, "model": config, "compile": ...}}`.
Loading rebuilds layers only from batchfit's own layer registry, so nothing
named in a file is ever imported or executed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from batchfit._io import atomic_write

if TYPE_CHECKING:
    from batchfit.models._model import Model

__all__ = ["load_model", "load_weights", "save_model", "save_weights"]

FORMAT_VERSION = 1


def _atomic_save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: str) -> None:
    atomic_write(path, save(tensors, metadata=metadata))  # NOTE [ Safe writes ] in _io.py


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone to own memory
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_weights(model: Model, path: str) -> None:
    meta = {"batchfit": json.dumps({"format": FORMAT_VERSION, "kind": "weights"})}
    _atomic_save(_tensors(model.module), meta, path)


def save_model(model: Model, path: str) -> None:
    info = {
        "format": FORMAT_VERSION,
        "kind": "model",
        "model": model.get_config(),
        "compile": model._compile_config or None,
    }
    _atomic_save(_tensors(model.module), {"batchfit": json.dumps(info)}, path)


def _read(path: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{path} is not a readable batchfit/safetensors file (truncated, corrupt or of "
            f"another format): {e}"
        ) from None
    try:
        info = json.loads(metadata.get("batchfit", "{}"))
    except json.JSONDecodeError:
        raise ValueError(f"{path}: the batchfit metadata is not valid JSON") from None
    return tensors, info


def load_weights(model: Model, path: str) -> None:
    tensors, _ = _read(path)
    own = model.module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not match this model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for key, mine in own.items():
        value = tensors[key]
        if tuple(value.shape) != tuple(mine.shape):
            raise ValueError(
                f"{path}: weight {key!r} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(mine.shape)}"
            )
    model.module.load_state_dict(tensors)


def load_model(
    path: str,
    module: nn.Module | None = None,
    compile: bool = True,
    device: str | torch.device | None = None,
    custom_objects: dict[str, type] | None = None,
) -> Model:
    """Load a model saved with `model.save(path)`.

    A `Sequential` of batchfit layers is rebuilt from its config. A model that
    wraps your own torch module needs that module again: `load_model(path,
    module=MyNet())`, because rebuilding it would mean running code named in
    the file, which loading never does.

    Args:
        path: the saved file.
        module: the torch module to load weights into (wrapped models only).
        compile: re-compile with the saved optimizer, loss and metric names.
        device: where the model lives.
        custom_objects: your own layer classes by name, for a model that uses them
            (loading builds no other class than batchfit's and these).
    """
    from batchfit.layers import layer_registry
    from batchfit.models._model import Model
    from batchfit.models._sequential import Sequential

    _, info = _read(path)
    if info.get("kind") not in ("model", "weights"):
        raise ValueError(f"{path} was not written by batchfit (no batchfit metadata)")
    if info.get("format", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format {info['format']}; this batchfit reads up to {FORMAT_VERSION}"
        )
    config = info.get("model") or {}
    model: Model
    if module is not None:
        model = Model(module, name=config.get("name"), device=device)
    elif config.get("class_name") == "Functional":
        from batchfit.models._functional_config import functional_from_config

        registry = {**layer_registry(), **(custom_objects or {})}
        model = functional_from_config(config, registry, path, device)
    elif config.get("class_name") == "Sequential":
        registry = layer_registry()
        model = Sequential(name=config.get("name"), device=device)
        if config.get("input_shape") is not None:
            from batchfit.layers import Input

            model.add(Input(shape=tuple(config["input_shape"])))
        for entry in config.get("layers", []):
            cls = registry.get(entry.get("class_name", ""))
            if cls is None:
                raise ValueError(
                    f"{path}: unknown layer class {entry.get('class_name')!r}; "
                    f"known layers: {', '.join(sorted(registry))}"
                )
            layer_config = dict(entry.get("config", {}))
            shape = layer_config.pop("input_shape", None)
            layer = cls.from_config(layer_config)
            if shape is not None and not len(model.layers) and config.get("input_shape") is None:
                layer = cls.from_config({**layer_config, "input_shape": shape})
            model.add(layer)
    else:
        raise ValueError(
            f"{path} holds a model wrapping a custom torch module "
            f"({config.get('module', 'unknown')}); pass it: load_model(path, module=MyModule())"
        )
    load_weights(model, path)
    compile_config = info.get("compile")
    if compile and compile_config:
        from batchfit import optimizers

        loss = compile_config.get("loss")
        model.compile(
            optimizer=optimizers.get(compile_config["optimizer"]),
            loss=loss,
            metrics=compile_config.get("metrics") or None,
            accumulate_steps=compile_config.get("accumulate_steps", 1),
            precision=compile_config.get("precision"),
        )
    return model
