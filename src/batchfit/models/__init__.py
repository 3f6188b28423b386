"""Keras-style models: `Sequential`, `Model(inputs, outputs)` or `Model(module)`, `load_model`."""

from __future__ import annotations

from batchfit.models._functional import Functional
from batchfit.models._functional_config import model_from_json
from batchfit.models._model import Model
from batchfit.models._saving import load_model
from batchfit.models._sequential import Sequential

__all__ = ["Functional", "Model", "Sequential", "load_model", "model_from_json"]
