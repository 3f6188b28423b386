"""Keras' `keras.saving`: `load_model`, `save_model`, `register_keras_serializable`.

Files are safetensors plus a JSON config (see `models/_saving.py`); loading
never imports or runs anything named in a file. A custom layer class becomes
loadable by being registered in the program that loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from batchfit.models import load_model

if TYPE_CHECKING:
    from batchfit.models import Model

__all__ = ["load_model", "register_keras_serializable", "save_model"]


def save_model(model: Model, filepath: str, overwrite: bool = True, **kwargs: Any) -> None:
    """`model.save(filepath)` (Keras' functional spelling)."""
    from pathlib import Path

    if not overwrite and Path(filepath).exists():
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    model.save(filepath)


def register_keras_serializable(
    package: str = "Custom", name: str | None = None
) -> Callable[[type], type]:
    """Decorator: make a custom `Layer` subclass loadable by its class name.

    Registration happens in your program (the code that loads the file), so a
    saved file can only name classes that program chose to allow.
    """
    del package, name  # batchfit's registry is keyed by the class name

    def register(cls: type) -> type:
        from batchfit.layers import Layer, register_layer

        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"register_keras_serializable registers Layer subclasses, got {cls!r}")
        register_layer(cls)
        return cls

    return register
