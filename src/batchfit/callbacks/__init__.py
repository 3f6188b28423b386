"""Keras callbacks: the hook protocol, history, progress bar and built-ins."""

from __future__ import annotations

from batchfit.callbacks._backup import BackupAndRestore
from batchfit.callbacks._base import Callback, CallbackList
from batchfit.callbacks._builtin import (
    CSVLogger,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    TensorBoard,
    TerminateOnNaN,
)
from batchfit.callbacks._history import History
from batchfit.callbacks._monitor import EarlyStopping, ReduceLROnPlateau
from batchfit.callbacks._progbar import ProgbarLogger

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]
