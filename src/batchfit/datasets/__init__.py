"""Keras' `keras.datasets`, offline: read from Keras' cache, or say where the file goes.

Nothing is downloaded. `keras.datasets.mnist.load_data()` reads
`$KERAS_HOME/datasets/mnist.npz` (`~/.keras/datasets/...` by default, as
Keras caches it); a missing file is an error naming the path and the URL to
fetch it from. Only formats that hold plain arrays are read (`.npz` without
pickles, gzip'ed IDX files): the CIFAR and IMDB caches are Python pickles,
which batchfit never loads.

Example:
    >>> (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["boston_housing", "cifar10", "cifar100", "fashion_mnist", "imdb", "mnist", "reuters"]

_STORAGE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
Splits = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def cache_dir() -> Path:
    """Where Keras keeps downloaded data sets: `$KERAS_HOME/datasets`, else `~/.keras/datasets`."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def _cached(relative: str, url: str, what: str) -> Path:
    path = cache_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{what}: batchfit does not download data sets; put the file at {path} "
            f"(download it from {url}), or set KERAS_HOME to the directory holding datasets/"
        )
    return path


class _DataSet:
    """A stand-in for a `keras.datasets.<name>` module: it has `load_data`."""

    def __init__(self, name: str, load_data: Callable[..., Any]) -> None:
        self.__name__ = f"batchfit.datasets.{name}"
        self.load_data = load_data

    def __repr__(self) -> str:
        return f"<data set {self.__name__}>"


def _load_mnist(path: str = "mnist.npz") -> Splits:
    file = _cached(path, _STORAGE + "mnist.npz", "mnist.load_data")
    with np.load(file, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def _load_fashion_mnist() -> Splits:
    names = [
        "train-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
    ]
    files = [_cached(f"fashion-mnist/{n}", _STORAGE + n, "fashion_mnist.load_data") for n in names]
    y_train, y_test = _idx(files[0], 8), _idx(files[2], 8)
    x_train = _idx(files[1], 16).reshape(len(y_train), 28, 28)
    x_test = _idx(files[3], 16).reshape(len(y_test), 28, 28)
    return (x_train, y_train), (x_test, y_test)


def _load_boston_housing(
    path: str = "boston_housing.npz", test_split: float = 0.2, seed: int = 113
) -> Splits:
    file = _cached(path, _STORAGE + "boston_housing.npz", "boston_housing.load_data")
    with np.load(file, allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    order = np.arange(len(x))
    np.random.RandomState(seed).shuffle(order)  # Keras' split: the same rows, same order
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - test_split))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _pickled(name: str) -> Callable[..., Any]:
    def load_data(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{name}.load_data: Keras caches {name} as Python pickles, which batchfit never "
            "loads (loading a pickle can run code); convert it to a .npz with Keras, then "
            "np.load it"
        )

    return load_data


mnist = _DataSet("mnist", _load_mnist)
fashion_mnist = _DataSet("fashion_mnist", _load_fashion_mnist)
boston_housing = _DataSet("boston_housing", _load_boston_housing)
cifar10 = _DataSet("cifar10", _pickled("cifar10"))
cifar100 = _DataSet("cifar100", _pickled("cifar100"))
imdb = _DataSet("imdb", _pickled("imdb"))
reuters = _DataSet("reuters", _pickled("reuters"))
