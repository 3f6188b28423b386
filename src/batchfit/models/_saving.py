"""Saving and loading models as safetensors: tensors plus a JSON config, never pickle.

A file holds the module's `state_dict` tensors and, in the safetensors
metadata, `{"batchfit": {"format": 1, "model": config, "compile": ...}}`.
Loading rebuilds layers only from batchfit's own layer registry, so nothing
named in a file is ever imported or executed.
"""

from __future__ import annotations

import json
import math
import warnings
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


def _keras_suffix(path: str) -> str | None:
    """Which of Keras' own file kinds `path` names, by suffix as Keras dispatches."""
    name = str(path).lower()
    for suffix in (".weights.h5", ".keras", ".h5", ".hdf5"):
        if name.endswith(suffix):
            return suffix
    return None


def _legacy_h5(path: str) -> ValueError:
    return ValueError(
        f"{path}: Keras 2's legacy HDF5 model files (.h5) are not read by batchfit; open it in "
        "Keras and save it as .keras (model.save('model.keras')), or save weights as .weights.h5"
    )


def _is_hdf5(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _keras3_layout(path: str) -> bool:
    """Whether an .h5 file holds Keras 3's weights layout (a root `layers` group), as
    batchfit writes for `save_weights("x.h5")`, rather than Keras 2's legacy one."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return isinstance(f.get("layers", getlink=True), h5py.HardLink)
    except OSError:
        return False


def save_weights(model: Model, path: str) -> None:
    kind = _keras_suffix(path)
    if kind is not None:  # Keras 3's file (models/_keras_archive.py)
        from batchfit.models import _keras_archive

        if kind == ".keras":
            raise ValueError(f"{path}: Keras weights files end in .weights.h5, got {kind}")
        # a Keras 2 program's save_weights("x.h5") gets Keras 3's weights layout, which
        # load_weights reads back (Keras 3 itself asks for .weights.h5)
        _keras_archive.save_keras_weights(model, path)
        return
    meta = {"batchfit": json.dumps({"format": FORMAT_VERSION, "kind": "weights"})}
    _atomic_save(_tensors(model.module), meta, path)


def save_model(model: Model, path: str) -> None:
    kind = _keras_suffix(path)
    if kind is not None:
        from batchfit.models import _keras_archive

        if kind == ".weights.h5":
            raise ValueError(
                f"{path}: a .weights.h5 file holds weights only: use save_weights(), or .keras"
            )
        if kind == ".keras":
            _keras_archive.save_keras_model(model, path)
            return
        # Keras 3 still writes its legacy HDF5 for model.save("x.h5"), and Keras programs
        # reload it with load_model: batchfit keeps the round trip with its own format
        warnings.warn(
            f"{path}: batchfit saves its own safetensors format under this name (Keras "
            "cannot open it); save as .keras to exchange the model with Keras",
            stacklevel=3,
        )
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
    return tensors, _parse_info(metadata.get("batchfit", "{}"), path)


def load_weights(model: Model, path: str) -> None:
    kind = _keras_suffix(path)
    if kind is not None:
        from batchfit.models import _keras_archive

        if kind in (".weights.h5", ".keras") or _keras3_layout(path):
            _keras_archive.load_keras_weights(model, path)
            return
        if _is_hdf5(path):
            raise _legacy_h5(path)
        # else: batchfit's own file saved under an .h5 name (save_model), read below
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


#: the most elements per sample a config may declare for an input, beyond the number of
#: weights its file holds (the dummy batch that builds the layers is allocated from it)
_INPUT_FLOOR = 2**25


def _read_header(path: str) -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    """The batchfit metadata (checked) and each tensor's shape, reading no tensor data."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{path} is not a readable batchfit/safetensors file (truncated, corrupt or of "
            f"another format): {e}"
        ) from None
    info = _parse_info(metadata.get("batchfit", "{}"), path)
    if info.get("kind") not in ("model", "weights"):
        raise ValueError(f"{path} was not written by batchfit (no batchfit metadata)")
    return info, shapes


def _parse_info(text: str, path: str) -> dict[str, Any]:
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"{path}: the batchfit metadata is not valid JSON") from None
    except RecursionError:
        raise ValueError(f"{path}: the batchfit metadata is nested too deeply") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: the batchfit metadata must be a table, got {info!r:.60}")
    version = info.get("format", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: 'format' must be a whole number, got {version!r:.40}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} has format {version}; this batchfit reads up to {FORMAT_VERSION}")
    return info


def _check_input_shapes(config: dict[str, Any], budget: int, path: str) -> None:
    """Declared input shapes: whole positive sizes (or None), within `budget` per sample."""
    declared: list[tuple[str, Any]] = [("input_shape", config.get("input_shape"))]
    inputs = config.get("inputs")
    if isinstance(inputs, list):
        declared += [
            ("inputs.shape", spec.get("shape")) for spec in inputs if isinstance(spec, dict)
        ]
    layers = config.get("layers")
    if config.get("class_name") in ("Sequential", "Functional") and not isinstance(layers, list):
        raise ValueError(f"{path}: 'layers' must be a list of layer configs, got {layers!r:.60}")
    for entry in layers or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            raise ValueError(f"{path}: a layer entry must be a table, got {entry!r:.60}")
        declared.append(("layer input_shape", entry.get("config", {}).get("input_shape")))
    for key, shape in declared:
        if shape is None:
            continue
        if not (
            isinstance(shape, list)
            and len(shape) <= 8
            and all(
                d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
                for d in shape
            )
        ):
            raise ValueError(f"{path}: {key} must be a list of positive sizes, got {shape!r:.60}")
        elements = math.prod(d or 1 for d in shape)
        if elements > budget:
            raise ValueError(
                f"{path}: {key} {shape} asks for {elements:,} elements per sample, more than "
                f"the {budget:,} its weights justify; refusing to build it"
            )


def _compare_shapes(
    built: dict[str, torch.Tensor], stored: dict[str, tuple[int, ...]], path: str
) -> None:
    """The config's weights against the file's, by name and shape, before any allocation."""
    missing = sorted(set(built) - set(stored))
    unexpected = sorted(set(stored) - set(built))
    if missing or unexpected:
        raise ValueError(
            f"{path}: the config does not match the stored weights: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    for key, tensor in built.items():
        if tuple(tensor.shape) != stored[key]:
            raise ValueError(
                f"{path}: the config builds weight {key!r} of shape {tuple(tensor.shape)}, "
                f"the file holds {stored[key]}"
            )


def _from_config(
    config: dict[str, Any],
    custom_objects: dict[str, type] | None,
    path: str,
    device: str | torch.device | None,
) -> Model:
    """A model built from its config (registered layer classes only)."""
    from batchfit.layers import layer_registry
    from batchfit.models._sequential import Sequential

    registry: dict[str, Any] = {**layer_registry(), **(custom_objects or {})}
    try:
        if config.get("class_name") == "Functional":
            from batchfit.models._functional_config import functional_from_config

            return functional_from_config(config, registry, path, device)
        if config.get("class_name") != "Sequential":
            raise LookupError
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
        return model
    except LookupError:
        raise ValueError(
            f"{path} holds a model wrapping a custom torch module "
            f"({config.get('module', 'unknown')}); pass it: load_model(path, module=MyModule())"
        ) from None
    except ValueError as e:
        if str(e).startswith(path):
            raise
        raise ValueError(f"{path}: cannot rebuild the model from its config: {e}") from e
    except (TypeError, KeyError, AttributeError, RecursionError, RuntimeError) as e:
        raise ValueError(
            f"{path}: cannot rebuild the model from its config: {type(e).__name__}: {e}"
        ) from e


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
    kind = _keras_suffix(path)
    if kind is not None:
        from batchfit.models import _keras_archive

        if kind == ".keras":
            return _keras_archive.load_keras_model(path, custom_objects, compile, device)
        if kind == ".weights.h5" or _is_hdf5(path):
            raise _legacy_h5(path)  # a Keras-written .h5; batchfit's own (above) loads below
    info, shapes = _read_header(path)
    config = info.get("model") or {}
    if not isinstance(config, dict):
        raise ValueError(f"{path}: 'model' must be a table (a model config), got {config!r:.60}")
    if module is not None:
        from batchfit.models._model import Model

        model = Model(module, name=config.get("name"), device=device)
    else:
        # NOTE [ Loading a config safely ]: the layers are first built on the meta
        # device (shapes, no memory) and their weight shapes compared with the
        # file's, so a config asking for more than the file holds is refused before
        # anything is allocated; only then is the model built for real.
        budget = max(_INPUT_FLOOR, sum(math.prod(s) for s in shapes.values()))
        _check_input_shapes(config, budget, path)
        with torch.device("meta"):
            skeleton = _from_config(config, custom_objects, path, "meta")
        _compare_shapes(skeleton.module.state_dict(), shapes, path)
        del skeleton
        model = _from_config(config, custom_objects, path, device)
    load_weights(model, path)
    compile_config = info.get("compile")
    if compile and compile_config:
        from batchfit import optimizers

        loss = compile_config.get("loss")
        model.compile(
            optimizer=optimizers.get(compile_config["optimizer"]),
            loss=loss,
            metrics=compile_config.get("metrics") or None,
            weighted_metrics=compile_config.get("weighted_metrics") or None,
            accumulate_steps=compile_config.get("accumulate_steps", 1),
            precision=compile_config.get("precision"),
        )
    return model
