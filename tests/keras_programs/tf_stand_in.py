"""The three TensorFlow names keras.io's image classification example calls, without TensorFlow.

The example (image_classification_from_scratch.py) was written for
TensorFlow-backed Keras and calls `tf.compat.as_bytes`, `tf.data.AUTOTUNE` and
`tf.expand_dims` next to Keras. Its import line `import tensorflow as tf` is
changed to `import tf_stand_in as tf`, so its text stays as written.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np


def _as_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def expand_dims(array: Any, axis: int) -> np.ndarray:
    """`tf.expand_dims` on an array (NumPy's)."""
    return np.expand_dims(np.asarray(array), axis)


compat = SimpleNamespace(as_bytes=_as_bytes)
data = SimpleNamespace(AUTOTUNE=-1)  # tf.data.AUTOTUNE is -1
