"""Batched image augmentation and streaming data-set statistics.

See NOTE [ Affine conventions ] in `batchfit.transforms._affine` and
NOTE [ Statistics as sums ] in `batchfit.transforms._stats`.
"""

from __future__ import annotations

from batchfit.transforms._affine import FILL_MODES, affine_matrices, default_backend, warp_affine
from batchfit.transforms._stats import Moments, available_memory_bytes, zca_matrix

__all__ = [
    "FILL_MODES",
    "Moments",
    "affine_matrices",
    "available_memory_bytes",
    "default_backend",
    "warp_affine",
    "zca_matrix",
]
