"""Stand-ins for `keras.datasets.*.load_data()`: generated arrays of the same shapes and dtypes.

No download is possible here, so each program of this folder loads these
instead. Every class has its own fixed pattern plus noise, so the tasks are
learnable: a program's accuracy shows that training works, not what the real
data set would give.
"""

from __future__ import annotations

import numpy as np

Split = tuple[np.ndarray, np.ndarray]


def _images(
    n: int, shape: tuple[int, ...], classes: int, rng: np.random.Generator, prototypes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, classes, n)
    noise = rng.normal(0.0, 40.0, size=(n, *shape))
    images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
    return images, labels.astype(np.uint8)


def _load(
    shape: tuple[int, ...], classes: int, n_train: int, n_test: int, seed: int
) -> tuple[Split, Split]:
    rng = np.random.default_rng(seed)
    prototypes = rng.choice([0.0, 255.0], size=(classes, *shape), p=[0.8, 0.2])
    return (
        _images(n_train, shape, classes, rng, prototypes),
        _images(n_test, shape, classes, rng, prototypes),
    )


def mnist_load_data(n_train: int = 600, n_test: int = 200) -> tuple[Split, Split]:
    """As `keras.datasets.mnist.load_data()`: uint8 images (N, 28, 28), uint8 labels (N,)."""
    return _load((28, 28), 10, n_train, n_test, seed=28)


def cifar10_load_data(n_train: int = 256, n_test: int = 64) -> tuple[Split, Split]:
    """As `keras.datasets.cifar10.load_data()`: uint8 images (N, 32, 32, 3), labels (N, 1)."""
    (xa, ya), (xb, yb) = _load((32, 32, 3), 10, n_train, n_test, seed=32)
    return (xa, ya.reshape(-1, 1)), (xb, yb.reshape(-1, 1))
