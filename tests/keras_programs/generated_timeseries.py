"""Stand-ins for the UCR FordA files and `sklearn.metrics.accuracy_score` (nothing downloaded).

`forda_readucr(split)` gives what the keras.io example's `readucr` returns for
FordA_TRAIN/FordA_TEST: float series of length 500 (z-normalised per series)
and labels in {-1, 1}. Class 1 carries a short burst at one frequency, class
-1 at another, at a random position in noise, so a small Conv1D network can
learn it: an accuracy shows that training works, not what FordA would give.
"""

from __future__ import annotations

import numpy as np

LENGTH = 500


def forda_readucr(
    split: str, n_train: int = 320, n_test: int = 160
) -> tuple[np.ndarray, np.ndarray]:
    """As `readucr("FordA_TRAIN.tsv")`/`readucr("FordA_TEST.tsv")`: x (N, 500) float64, y (N,) in {-1, 1}."""
    n, seed = (n_train, 176) if split == "train" else (n_test, 177)
    rng = np.random.default_rng(seed)
    y = rng.choice([-1, 1], size=n)
    t = np.arange(LENGTH)
    x = rng.normal(0.0, 1.0, size=(n, LENGTH))
    for i in range(n):
        start = rng.integers(0, LENGTH - 100)
        period = 8.0 if y[i] == 1 else 20.0
        x[i, start : start + 100] += 2.0 * np.sin(2 * np.pi * t[:100] / period)
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return x, y.astype(int)


def accuracy_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of equal labels, as `sklearn.metrics.accuracy_score`."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))
