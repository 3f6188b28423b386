"""Keras-style models: `Sequential`, `Model(torch_module)`, `load_model`."""

from __future__ import annotations

from batchfit.models._model import Model
from batchfit.models._saving import load_model
from batchfit.models._sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]
