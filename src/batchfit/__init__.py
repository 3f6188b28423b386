"""batchfit: Keras-style `fit` and `train_on_batch` for PyTorch, on data of any size."""

from __future__ import annotations

from batchfit import data

__version__ = "0.1.0"

__all__ = ["__version__", "data"]
