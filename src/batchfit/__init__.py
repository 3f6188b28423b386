"""batchfit: Keras-style `fit` and `train_on_batch` for PyTorch, on data of any size.

`import batchfit as keras` gives Keras 3's top level for training code
(`keras.Sequential`, `keras.Input`, `keras.layers`, `keras.utils`, ...).
Everything loads on first use (PEP 562), so `import batchfit` itself imports
neither torch nor any other heavy dependency.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public subpackages and modules, imported when first read as `batchfit.<name>`
_SUBMODULES = (
    "activations",
    "backend",
    "callbacks",
    "config",
    "data",
    "datasets",
    "distributed",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "preprocessing",
    "random",
    "constraints",
    "regularizers",
    "saving",
    "transforms",
    "utils",
)

#: Keras' top-level names and the module that defines each
_ATTRIBUTES = {
    "Input": "batchfit.layers",
    "InputLayer": "batchfit.layers",
    "KerasTensor": "batchfit.layers",
    "Layer": "batchfit.layers",
    "Loss": "batchfit.losses",
    "Metric": "batchfit.metrics",
    "Model": "batchfit.models",
    "Optimizer": "batchfit.optimizers",
    "Sequential": "batchfit.models",
}

__all__ = ["__version__", "version", *_SUBMODULES, *_ATTRIBUTES]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these load lazily
    from batchfit import (  # noqa: F401
        activations,
        backend,
        callbacks,
        config,
        constraints,
        data,
        datasets,
        distributed,
        initializers,
        layers,
        losses,
        metrics,
        models,
        ops,
        optimizers,
        preprocessing,
        random,
        regularizers,
        saving,
        transforms,
        utils,
    )
    from batchfit.layers import Input, InputLayer, KerasTensor, Layer  # noqa: F401
    from batchfit.losses import Loss  # noqa: F401
    from batchfit.metrics import Metric  # noqa: F401
    from batchfit.models import Model, Sequential  # noqa: F401
    from batchfit.optimizers import Optimizer  # noqa: F401


def version() -> str:
    """The batchfit version (Keras' `keras.version()`)."""
    return __version__


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = import_module(f"batchfit.{name}")
    elif name in _ATTRIBUTES:
        value = getattr(import_module(_ATTRIBUTES[name]), name)
    else:
        raise AttributeError(f"module 'batchfit' has no attribute {name!r}")
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
