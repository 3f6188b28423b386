"""Keras callbacks: the hook protocol, history, progress bar and built-ins."""

from __future__ import annotations

from batchfit.callbacks._base import Callback, CallbackList
from batchfit.callbacks._builtin import LambdaCallback, TerminateOnNaN
from batchfit.callbacks._history import History
from batchfit.callbacks._progbar import ProgbarLogger

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "LambdaCallback",
    "ProgbarLogger",
    "TerminateOnNaN",
]
