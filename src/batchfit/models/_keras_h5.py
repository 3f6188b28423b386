"""Keras 3 weight files (`model.weights.h5`, `x.weights.h5`): layer paths and arrays, read safely.

NOTE [ Keras' weight layout ]
Keras 3 writes one HDF5 group per layer at `layers/<key>/vars/<i>`, where
`<key>` is the snake-case class name made unique in the order of
`model.layers` (`dense`, `dense_1`, ...: not the layer's own name, which
Keras keeps only as the `name` attribute of `vars`). A `Sequential`'s
`layers` leaves out its `InputLayer`; a functional model's includes them. A
layer's own variables are `vars/0..n-1` in `layer.weights` order (Dense:
kernel `(in, out)`, bias; BatchNormalization: gamma, beta, moving mean,
moving variance); sub-objects (an RNN's `cell`, a nested model's `layers`)
are groups beside `vars`, visited in name order. Observed by saving models
with Keras 3.15 and listing the files with h5py (tests/test_keras_files.py).

Reading is careful because the file comes from elsewhere: only hard links are
followed (an external link could open another file), datasets with external
or virtual storage are refused, and a dataset's shape and dtype are checked
against what the model expects before any of its data is read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "from_keras",
    "keras_keys",
    "keras_sizes",
    "layer_datasets",
    "read_arrays",
    "snake_case",
    "to_keras",
    "write_h5",
]


def snake_case(class_name: str) -> str:
    """Keras' snake-case of a class name: `MaxPooling2D` -> `max_pooling2d`."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_keys(class_names: Iterable[str]) -> list[str]:
    """The group key of each layer, in `model.layers` order (see NOTE [ Keras' weight layout ])."""
    used: dict[str, int] = {}
    keys = []
    for class_name in class_names:
        base = snake_case(class_name)
        if base in used:
            used[base] += 1
            keys.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            keys.append(base)
    return keys


def _hard_child(group: Any, name: str, where: str) -> Any:
    import h5py

    link = group.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise ValueError(
            f"{where}: {group.name}/{name} is a {type(link).__name__}, not stored data"
        )
    return group[name]


def layer_datasets(root: Any, path: str, where: str) -> list[Any]:
    """The datasets of the layer group at `path`: `vars/0..n-1`, then sub-groups by name."""
    import h5py

    group: Any = root
    for part in path.split("/"):
        if part not in group:
            raise ValueError(f"{where}: the weights file has no group {path!r} (expected by Keras)")
        group = _hard_child(group, part, where)
    if not isinstance(group, h5py.Group):
        raise ValueError(f"{where}: {path!r} is not a group of weights")
    found: list[Any] = []
    _collect(group, found, where, depth=0)
    return found


def _collect(group: Any, found: list[Any], where: str, depth: int) -> None:
    import h5py

    if depth > 16:
        raise ValueError(f"{where}: weight groups nested more than 16 deep at {group.name}")
    if "vars" in group:
        variables = _hard_child(group, "vars", where)
        names = list(variables)
        expected = [str(i) for i in range(len(names))]
        if sorted(names, key=lambda n: (len(n), n)) != expected:
            raise ValueError(
                f"{where}: {variables.name} holds {names[:6]}, expected datasets named 0..n-1"
            )
        for name in expected:
            found.append(_checked_dataset(_hard_child(variables, name, where), where))
    for name in sorted(group):
        if name == "vars":
            continue
        child = _hard_child(group, name, where)
        if isinstance(child, h5py.Group):
            _collect(child, found, where, depth + 1)


def _checked_dataset(dataset: Any, where: str) -> Any:
    import h5py

    if not isinstance(dataset, h5py.Dataset):
        raise ValueError(f"{where}: {dataset.name} is not a dataset")
    if dataset.external or dataset.is_virtual:
        raise ValueError(f"{where}: {dataset.name} points at data outside the file; refused")
    if dataset.dtype.kind not in "fiub":
        raise ValueError(f"{where}: {dataset.name} has dtype {dataset.dtype}, expected numbers")
    return dataset


def read_arrays(
    datasets: Sequence[Any], shapes: Sequence[tuple[int, ...]], layer: str, where: str
) -> list[np.ndarray]:
    """Each dataset's data, once its shape is checked against `shapes` (nothing read before)."""
    if len(datasets) != len(shapes):
        raise ValueError(
            f"{where}: layer {layer!r} has {len(shapes)} weight arrays, the file holds "
            f"{len(datasets)}"
        )
    arrays = []
    for i, (dataset, shape) in enumerate(zip(datasets, shapes)):
        if tuple(dataset.shape) != tuple(shape):
            raise ValueError(
                f"{where}: layer {layer!r} weight {i} ({dataset.name}) has shape "
                f"{tuple(dataset.shape)}, the model expects {tuple(shape)}"
            )
        arrays.append(np.asarray(dataset[()]))
    return arrays


def write_h5(groups: Sequence[tuple[str, str, Sequence[np.ndarray]]]) -> bytes:
    """The bytes of a Keras weights file: `(group path, object name, arrays)` per object.

    Each object's arrays go to `<group path>/vars/<i>`, named as Keras names them.
    """
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("layers")
        for path, name, arrays in groups:
            variables = f.create_group(f"{path}/vars" if path else "vars")
            variables.attrs["name"] = name
            for i, array in enumerate(arrays):
                variables.create_dataset(str(i), data=np.array(array, order="C"))  # 0-d stays 0-d
    return buffer.getvalue()


# -- layers whose Keras variables differ from get_weights() --------------------------------


def _keep_shape(layer: Any) -> tuple[int, ...]:
    return tuple(
        s for i, s in enumerate(layer.mean.shape) if i in layer._keep_axes(layer.mean.dim())
    )


def to_keras(layer: Any) -> list[np.ndarray]:
    """A layer's weights as Keras stores them (Normalization: flat statistics and the count)."""
    if type(layer).__name__ == "Normalization":
        if layer._init_mean is not None:
            return []  # Keras keeps given statistics in the config, not in variables
        shape = _keep_shape(layer)
        return [
            layer.mean.cpu().numpy().reshape(shape),
            layer.variance.cpu().numpy().reshape(shape),
            np.asarray(int(layer.count), np.int32),
        ]
    return list(layer.get_weights())


def keras_sizes(layer: Any) -> list[int]:
    """Element counts of `to_keras(layer)`, from shapes alone (works on the meta device)."""
    if type(layer).__name__ == "Normalization":
        return [] if layer._init_mean is not None else [layer.mean.numel()] * 2 + [1]
    return [w.numel() for w in layer.weights]


def from_keras(layer: Any, arrays: list[np.ndarray]) -> None:
    """Set a layer's weights from arrays as Keras stores them (the inverse of `to_keras`)."""
    if type(layer).__name__ == "Normalization":
        if arrays:
            with torch.no_grad():
                layer.mean.copy_(torch.as_tensor(arrays[0]).reshape(layer.mean.shape))
                layer.variance.copy_(torch.as_tensor(arrays[1]).reshape(layer.variance.shape))
                layer.count.fill_(int(arrays[2]))
            layer.adapted = True
        return
    layer.set_weights(arrays)
