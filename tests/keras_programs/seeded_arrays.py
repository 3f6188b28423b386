"""Seeded stand-ins for the unseeded `np.random.random(...)` data of the subclassing programs.

The programs draw their training arrays with `np.random.random`; here the same
shapes come from a fixed seed, so a run under real Keras and a run under
batchfit see the same numbers and their results can be compared.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(2023)


def random(shape: tuple[int, ...]) -> np.ndarray:
    """As `np.random.random(shape)` (float64 in [0, 1)), from one seeded stream."""
    return _rng.random(shape)
