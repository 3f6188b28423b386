"""Keras 3 files: `.keras` archives and `.weights.h5`, read and written without running anything.

NOTE [ Reading a .keras archive safely ]
A `.keras` file is a zip of `metadata.json`, `config.json` (the model as
data: layer class names, configs, `inbound_nodes`) and `model.weights.h5`.
Before anything is parsed, every member name is checked (no absolute paths,
no `..`, no backslashes: nothing is ever extracted, but such an archive is not
one Keras wrote) and every member's declared size against a cap and against
its compressed size (a zip bomb declares gigabytes that a few kilobytes
inflate to); reading stops at the declared size. The model is then built
from batchfit's own layer classes (NOTE [ Keras layer configs ]), first on
the meta device (shapes only), and its weight sizes compared with the
datasets' before anything is allocated; datasets may not declare more bytes
than the weights file holds. Compile settings are restored when every name
maps onto batchfit's; otherwise the model loads uncompiled, with a warning.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from batchfit._io import atomic_write
from batchfit.models._keras_compile import keras_compile_config, restore_compile
from batchfit.models._keras_config import build_layer, model_to_keras_config
from batchfit.models._keras_h5 import (
    from_keras,
    keras_keys,
    keras_sizes,
    layer_datasets,
    read_arrays,
    to_keras,
    write_h5,
)

if TYPE_CHECKING:
    from batchfit.models._model import Model

__all__ = ["load_keras_model", "load_keras_weights", "save_keras_model", "save_keras_weights"]

_MAX_MEMBERS = 10_000
_JSON_LIMIT = 64 * 2**20  # config.json / metadata.json
_RATIO_LIMIT = 100  # uncompressed / compressed, for members over 1 MiB
_INPUT_FLOOR = 2**25  # elements per sample an input may declare beyond the weights' count
_KERAS_VERSION = "3.15.1"  # the Keras whose layout this writes (checked by the optional test)


# -- the zip -----------------------------------------------------------------------------


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, path: str) -> bytes:
    if info.file_size > limit:
        raise ValueError(
            f"{path}: member {info.filename!r} declares {info.file_size:,} bytes, more than the "
            f"{limit:,} allowed for it"
        )
    if info.file_size > 2**20 and info.file_size > _RATIO_LIMIT * max(info.compress_size, 1):
        raise ValueError(
            f"{path}: member {info.filename!r} inflates {info.compress_size:,} bytes to "
            f"{info.file_size:,} (a zip bomb?); refused"
        )
    try:
        with archive.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"{path}: member {info.filename!r} is corrupt: {e}") from None
    if len(data) > info.file_size:
        raise ValueError(f"{path}: member {info.filename!r} is larger than it declares")
    return data


def _check_name(name: str, path: str) -> None:
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or ".." in parts or ":" in parts[0] or "\0" in name:
        raise ValueError(f"{path}: archive member {name!r} has an unsafe path; refused")


def _open_archive(path: str, weights_limit: int) -> tuple[dict[str, Any], bytes]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{path} is not a .keras archive (a zip file): {e}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise ValueError(f"{path}: {len(infos):,} archive members; a .keras file has a few")
        for info in infos:
            _check_name(info.filename, path)
        members = {info.filename: info for info in infos}
        for needed in ("config.json", "model.weights.h5"):
            if needed not in members:
                raise ValueError(
                    f"{path}: the archive has no {needed} (members: {sorted(members)[:8]}); "
                    "not a Keras 3 .keras file"
                )
        text = _read_member(archive, members["config.json"], _JSON_LIMIT, path)
        weights = _read_member(archive, members["model.weights.h5"], weights_limit, path)
    return _parse_json(text, f"{path}: config.json"), weights


def _parse_json(text: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{where} is not valid JSON: {e}") from None
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table, got {type(value).__name__}")
    return value


# -- the model from its config --------------------------------------------------------------


def _input(config: Mapping[str, Any], where: str) -> Any:
    from batchfit.layers._input import Input

    shape = config.get("batch_shape")
    if shape is None and config.get("input_shape") is not None:
        shape = [None, *config["input_shape"]]
    if not isinstance(shape, list) or not shape:
        raise ValueError(f"{where}: InputLayer {config.get('name')!r} has no batch_shape")
    return Input(
        shape=tuple(shape[1:]), batch_size=shape[0], dtype=config.get("dtype"), name=config["name"]
    )


def _check_shapes(config: Mapping[str, Any], budget: int, where: str) -> None:
    """Declared input shapes: positive sizes, within `budget` elements per sample."""
    layers: list[Any] = list(config.get("layers") or [])
    built = config.get("build_input_shape")
    if built is not None:
        layers.append({"class_name": "InputLayer", "config": {"batch_shape": built}})
    for entry in layers:
        layer_config = entry.get("config") if isinstance(entry, Mapping) else None
        if not isinstance(layer_config, Mapping):
            raise ValueError(f"{where}: a layer entry must be a table with a config")
        if entry.get("class_name") != "InputLayer":
            continue
        name = layer_config.get("name")
        shape = layer_config.get("batch_shape") or [None, *(layer_config.get("input_shape") or [])]
        ok = isinstance(shape, list) and len(shape) <= 9
        ok = ok and all(d is None or (type(d) is int and d > 0) for d in shape)
        if not ok:
            raise ValueError(f"{where}: input {name!r} has shape {shape!r:.60}")
        if math.prod(d or 1 for d in shape[1:]) > budget:
            raise ValueError(
                f"{where}: input {name!r} of shape {shape} asks for more elements "
                f"per sample than the {budget:,} its weights justify; refusing to build it"
            )


class _Nested:
    """A model used as a layer, with its own layers in Keras order (for the weight paths)."""

    def __init__(self, model: Any, ordered: list[tuple[str, Any]]) -> None:
        self.model, self.ordered, self.name = model, ordered, model.name


def _layer(entry: Mapping[str, Any], registry: Any, where: str, device: Any) -> tuple[Any, Any]:
    """`(what the graph calls, what holds its weights)` for one Keras layer entry."""
    if entry.get("class_name") in ("Sequential", "Functional"):
        model, ordered = _build(entry, registry, where, device)
        return model, _Nested(model, ordered)
    layer = build_layer(entry, registry, where)
    return layer, layer


def _sequential(config: Mapping[str, Any], registry: Any, where: str, device: Any) -> Any:
    from batchfit.models._sequential import Sequential

    model = Sequential(name=config.get("name"), device=device)
    entries = list(config.get("layers") or [])
    ordered = []
    if entries and entries[0].get("class_name") == "InputLayer":
        model.add(_input(entries.pop(0)["config"], where))
    elif config.get("build_input_shape"):
        model.build(config["build_input_shape"])
    for entry in entries:
        layer, holder = _layer(entry, registry, where, device)
        model.add(layer)
        ordered.append((entry["class_name"], holder))
    return model, ordered


def _functional(config: Mapping[str, Any], registry: Any, where: str, device: Any) -> Any:
    from batchfit.models._functional import Functional

    tensors: dict[tuple[str, int, int], Any] = {}
    ordered: list[tuple[str, Any]] = []
    pending: list[tuple[Any, str, list[Any]]] = []
    for entry in config["layers"]:
        if entry.get("class_name") == "InputLayer":
            t = _input(entry["config"], where)
            tensors[(entry["config"]["name"], 0, 0)] = t
            ordered.append(("InputLayer", None))
            continue
        layer, holder = _layer(entry, registry, where, device)
        ordered.append((entry["class_name"], holder))
        pending.append((layer, layer.name, list(entry.get("inbound_nodes") or [])))

    class _NotYet(Exception):
        pass

    def resolve(value: Any) -> Any:
        if isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__":
            key = tuple(value["config"]["keras_history"])
            if key not in tensors:
                raise _NotYet
            return tensors[key]
        if isinstance(value, Mapping):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    done = {id(layer): 0 for layer, _, _ in pending}
    progress = True
    while progress:
        progress = False
        for layer, name, nodes in pending:
            while done[id(layer)] < len(nodes):
                node = nodes[done[id(layer)]]
                try:
                    args, kwargs = resolve(node.get("args", [])), resolve(node.get("kwargs", {}))
                except _NotYet:
                    break
                kwargs = {k: v for k, v in kwargs.items() if not (k == "mask" and v is None)}
                outputs = layer(*args, **kwargs)
                from batchfit.layers._symbolic import flatten

                for j, t in enumerate(flatten(outputs)):
                    tensors[(name, done[id(layer)], j)] = t
                done[id(layer)] += 1
                progress = True
    stuck = [name for layer, name, nodes in pending if done[id(layer)] < len(nodes)]
    if stuck:
        raise ValueError(f"{where}: the graph's nodes for {stuck[:5]} refer to missing tensors")

    def pick(refs: Any) -> Any:
        if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
            key = tuple(refs)
            if key not in tensors:
                raise ValueError(f"{where}: the model refers to a missing tensor {refs}")
            return tensors[key]
        if isinstance(refs, Mapping):
            return {k: pick(v) for k, v in refs.items()}
        return [pick(v) for v in refs]

    inputs, outputs = pick(config["input_layers"]), pick(config["output_layers"])
    return Functional(inputs, outputs, name=config.get("name"), device=device), ordered


def _build(model_config: Mapping[str, Any], custom_objects: Any, where: str, device: Any) -> Any:
    from batchfit.layers import layer_registry

    registry = {**layer_registry(), **(custom_objects or {})}
    class_name = model_config.get("class_name")
    config = model_config.get("config")
    if not isinstance(config, Mapping) or not isinstance(config.get("layers"), list):
        raise ValueError(f"{where}: the model config has no list of layers")
    try:
        if class_name == "Sequential":
            return _sequential(config, registry, where, device)
        if class_name in ("Functional", "Model"):
            return _functional(config, registry, where, device)
    except ValueError as e:
        if str(e).startswith(where):
            raise
        raise ValueError(f"{where}: cannot rebuild the model: {e}") from e
    except (TypeError, KeyError, AttributeError, RecursionError, RuntimeError) as e:
        raise ValueError(f"{where}: cannot rebuild the model: {type(e).__name__}: {e}") from e
    raise ValueError(
        f"{where}: the model is a {class_name!r}; only Sequential and functional models are read "
        "(a subclassed model's code is not in the file)"
    )


# -- weights, per layer ------------------------------------------------------------------------


def _h5(data: bytes, where: str) -> Any:
    import h5py

    try:
        return h5py.File(io.BytesIO(data), "r")
    except OSError as e:
        raise ValueError(f"{where} is not a readable HDF5 file: {e}") from None


def _declared_bytes(root: Any) -> int:
    import h5py

    total = 0

    def visit(_: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += obj.size * obj.dtype.itemsize

    root.visititems(visit)
    return total


def _assign(
    root: Any, ordered: Sequence[tuple[str, Any]], where: str, check_only: bool = False
) -> None:
    """Load each layer's arrays from `layers/<key>` (NOTE [ Keras' weight layout ])."""
    for key, (class_name, layer) in zip(keras_keys(c for c, _ in ordered), ordered):
        if isinstance(layer, _Nested):  # a model inside the model: its own layers/ group
            if "layers" not in root or key not in root["layers"]:
                raise ValueError(f"{where}: the weights file has no group layers/{key}")
            _assign(root["layers"][key], layer.ordered, where, check_only)
            continue
        datasets = layer_datasets(root, f"layers/{key}", where)
        name = layer.name if layer is not None else key
        if class_name == "InputLayer":
            if datasets:
                raise ValueError(f"{where}: input layer {key!r} holds weights")
            continue
        if check_only:
            sizes = keras_sizes(layer)
            found = [d.size for d in datasets]
            if sizes != found:
                raise ValueError(
                    f"{where}: layer {name!r} ({class_name}, group layers/{key}) needs weights of "
                    f"{sizes} elements, the file holds {found}"
                )
            continue
        shapes = [a.shape for a in to_keras(layer)]
        from_keras(layer, read_arrays(datasets, shapes, name, where))


# -- public entry points ------------------------------------------------------------------------


def load_keras_model(
    path: str,
    custom_objects: Mapping[str, type] | None = None,
    compile: bool = True,
    device: str | torch.device | None = None,
    weights_limit: int = 2**36,
) -> Model:
    """A batchfit model from a Keras 3 `.keras` file (NOTE [ Reading a .keras archive safely ])."""
    config, weights = _open_archive(path, weights_limit)
    where = f"{path}: config.json"
    root = _h5(weights, f"{path}: model.weights.h5")
    with root:
        declared = _declared_bytes(root)
        if declared > len(weights):
            raise ValueError(
                f"{path}: model.weights.h5 declares {declared:,} bytes of weights in a file of "
                f"{len(weights):,}; refused"
            )
        model_config = config.get("config")
        if isinstance(model_config, Mapping):
            _check_shapes(model_config, max(_INPUT_FLOOR, declared), where)
        with torch.device("meta"):
            skeleton, ordered = _build(config, custom_objects, where, "meta")
        _assign(root, ordered, where, check_only=True)
        del skeleton, ordered
        model, ordered = _build(config, custom_objects, where, device)
        _assign(root, ordered, f"{path}: model.weights.h5")
    compile_config = config.get("compile_config")
    if compile and isinstance(compile_config, Mapping) and compile_config.get("optimizer"):
        restore_compile(model, compile_config, path)
    return model


def load_keras_weights(model: Model, path: str) -> None:
    """Load a Keras 3 `.weights.h5` file (or a `.keras` archive's weights) into `model`."""
    ordered = _keras_ordered(model)
    if path.endswith(".keras"):
        _, data = _open_archive(path, 2**36)
    else:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no weights file at {path}")
        data = Path(path).read_bytes()
    with _h5(data, path) as root:
        _assign(root, ordered, path, check_only=True)
        _assign(root, ordered, path)


def _keras_ordered(model: Model) -> list[tuple[str, Any]]:
    from batchfit.models._functional import Functional
    from batchfit.models._sequential import Sequential

    _, layers = model_to_keras_config(model)
    ordered: list[tuple[str, Any]] = []
    for layer in layers:
        if isinstance(layer, (Sequential, Functional)):
            kind = "Sequential" if isinstance(layer, Sequential) else "Functional"
            ordered.append((kind, _Nested(layer, _keras_ordered(layer))))
        else:
            ordered.append((type(layer).__name__, layer))
    return ordered


def _groups(model: Model, prefix: str = "") -> list[tuple[str, str, list[np.ndarray]]]:
    """`(group path, name, arrays)` of every layer, nested models' layers under their group."""
    ordered = _keras_ordered(model)
    groups: list[tuple[str, str, list[np.ndarray]]] = [(prefix.rstrip("/"), model.name, [])]
    for key, (class_name, layer) in zip(keras_keys(c for c, _ in ordered), ordered):
        if isinstance(layer, _Nested):
            groups += _groups(layer.model, f"{prefix}layers/{key}/")
        else:
            arrays = [] if class_name == "InputLayer" else to_keras(layer)
            groups.append((f"{prefix}layers/{key}", layer.name, arrays))
    return groups


def _weights_bytes(model: Model) -> bytes:
    return write_h5(_groups(model))


def save_keras_weights(model: Model, path: str) -> None:
    """Write `model`'s weights as a Keras 3 `.weights.h5` file."""
    atomic_write(path, _weights_bytes(model))  # NOTE [ Safe writes ] in _io.py


def save_keras_model(model: Model, path: str) -> None:
    """Write `model` as a Keras 3 `.keras` archive that Keras' `load_model` opens."""
    config, _ = model_to_keras_config(model)
    config["compile_config"] = keras_compile_config(model)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d@%H:%M:%S")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            "metadata.json", json.dumps({"keras_version": _KERAS_VERSION, "date_saved": date})
        )
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", _weights_bytes(model))
    atomic_write(path, buffer.getvalue())
