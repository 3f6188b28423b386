"""batchfit's metric and loss classes against real Keras 3 on the same data: max abs differences.

The driver (batchfit's venv) writes seeded data to a temporary .npz, runs this
file again under the Keras venv (`--side keras`, KERAS_BACKEND=torch) and in
its own process (`--side batchfit`), and prints each case's largest absolute
difference. Every case is a class name and keyword arguments, identical in both
libraries; data streams in three batches, with and without sample weights.

    .venv/bin/python benchmarks/keras_metric_parity.py [--keras-python /work/keras-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

N = 30
CUTS = ((0, 7), (7, 8), (8, N))

METRICS: list[tuple[str, dict[str, Any], str]] = [
    ("Accuracy", {}, "ids"),
    ("BinaryAccuracy", {"threshold": 0.7}, "multilabel"),
    ("CategoricalAccuracy", {}, "categorical"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("TopKCategoricalAccuracy", {"k": 2}, "categorical"),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, "sparse"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("CosineSimilarity", {}, "regression"),
    ("LogCoshError", {}, "regression"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "logits"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "categorical"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("KLDivergence", {}, "categorical"),
    ("Poisson", {}, "multilabel"),
    ("Hinge", {}, "logits"),
    ("SquaredHinge", {}, "logits"),
    ("CategoricalHinge", {}, "categorical"),
    ("TruePositives", {"thresholds": [0.3, 0.6]}, "multilabel"),
    ("FalsePositives", {}, "multilabel"),
    ("TrueNegatives", {"thresholds": 0.2}, "multilabel"),
    ("FalseNegatives", {}, "multilabel"),
    ("Precision", {"thresholds": [0.2, 0.5, 0.8]}, "multilabel"),
    ("Precision", {"top_k": 1}, "multilabel"),
    ("Recall", {"class_id": 1}, "multilabel"),
    ("PrecisionAtRecall", {"recall": 0.6}, "binary"),
    ("RecallAtPrecision", {"precision": 0.7}, "binary"),
    ("SensitivityAtSpecificity", {"specificity": 0.5, "num_thresholds": 50}, "binary"),
    ("SpecificityAtSensitivity", {"sensitivity": 0.8}, "binary"),
    ("AUC", {}, "binary"),
    ("F1Score", {}, "categorical"),
    ("F1Score", {"average": "macro", "threshold": 0.3}, "multilabel"),
    ("F1Score", {"average": "micro"}, "categorical"),
    ("FBetaScore", {"average": "weighted", "beta": 2.0, "threshold": 0.5}, "multilabel"),
    ("R2Score", {}, "regression"),
    (
        "R2Score",
        {"class_aggregation": "variance_weighted_average", "num_regressors": 3},
        "regression",
    ),
    ("MeanIoU", {"num_classes": 3}, "ids"),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 2]}, "ids"),
]

LOSSES: list[tuple[str, dict[str, Any], str]] = [
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "regression"),
    ("Huber", {"delta": 0.5}, "regression"),
    ("LogCosh", {}, "regression"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "multilabel"),
    ("BinaryCrossentropy", {"from_logits": True}, "logits"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "gamma": 1.5}, "multilabel"),
    ("BinaryFocalCrossentropy", {"from_logits": True}, "logits"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "categorical"),
    ("CategoricalFocalCrossentropy", {}, "categorical"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 2}, "sparse"),
    ("KLDivergence", {}, "categorical"),
    ("Poisson", {}, "multilabel"),
    ("CosineSimilarity", {}, "regression"),
    ("Hinge", {}, "logits"),
    ("SquaredHinge", {}, "logits"),
    ("CategoricalHinge", {}, "categorical"),
    ("MeanSquaredError", {"reduction": "sum"}, "regression"),
    ("MeanAbsoluteError", {"reduction": "none"}, "regression"),
]


def make_data(path: str) -> None:
    rng = np.random.default_rng(0)

    def f32(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float32)

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    p = f32(rng.uniform(0.01, 0.99, (N, 1)))
    reg = f32(rng.normal(1.0, 1.0, (N, 2)))
    arrays = {
        "binary_t": f32(rng.uniform(0, 1, (N, 1)) < p),
        "binary_p": p,
        "multilabel_t": f32(rng.integers(0, 2, (N, 3))),
        "multilabel_p": f32(rng.uniform(0.01, 0.99, (N, 3))),
        "logits_t": f32(rng.integers(0, 2, (N, 3))),
        "logits_p": f32(rng.normal(0, 2, (N, 3))),
        "categorical_t": f32(np.eye(5)[rng.integers(0, 5, N)]),
        "categorical_p": f32(softmax(rng.normal(0, 1.5, (N, 5)))),
        "sparse_t": rng.integers(0, 5, N).astype(np.int64),
        "sparse_p": f32(softmax(rng.normal(0, 1.5, (N, 5)))),
        "regression_t": reg,
        "regression_p": f32(reg + rng.normal(0, 0.7, (N, 2))),
        "ids_t": rng.integers(0, 3, (N, 4)).astype(np.int64),
        "ids_p": rng.integers(0, 3, (N, 4)).astype(np.int64),
        "weights": f32(np.where(np.arange(N) % 6 == 0, 0.0, rng.uniform(0, 2, N))),
    }
    np.savez(path, **arrays)


def run_side(side: str, path: str) -> dict[str, Any]:
    data = dict(np.load(path))
    if side == "keras":
        import keras

        metric_ns, loss_ns = keras.metrics, keras.losses
    else:
        from batchfit import losses, metrics

        metric_ns, loss_ns = metrics, losses
    out: dict[str, Any] = {}
    for i, (name, kwargs, kind) in enumerate(METRICS):
        t, p, w = data[f"{kind}_t"], data[f"{kind}_p"], data["weights"]
        for weighted in (False, True):
            key = f"metric {i} {name}{kwargs} weighted={weighted}"
            try:
                metric = getattr(metric_ns, name)(**kwargs)
                for lo, hi in CUTS:
                    metric.update_state(t[lo:hi], p[lo:hi], w[lo:hi] if weighted else None)
                out[key] = _np(metric.result())
            except Exception as err:
                out[key] = f"error: {type(err).__name__}: {str(err)[:100]}"
    for i, (name, kwargs, kind) in enumerate(LOSSES):
        t, p, w = data[f"{kind}_t"], data[f"{kind}_p"], data["weights"]
        for weighted in (False, True):
            key = f"loss {i} {name}{kwargs} weighted={weighted}"
            try:
                loss = getattr(loss_ns, name)(**kwargs)
                out[key] = _np(loss(t, p, w if weighted else None))
            except Exception as err:
                out[key] = f"error: {type(err).__name__}: {str(err)[:100]}"
    return out


def _np(value: Any) -> list[float]:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64).reshape(-1).tolist()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["keras", "batchfit"])
    parser.add_argument("--data")
    parser.add_argument("--keras-python", default="/work/keras-venv/bin/python")
    args = parser.parse_args()
    if args.side:
        json.dump(run_side(args.side, args.data), sys.stdout)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        make_data(path)
        env = {**os.environ, "KERAS_BACKEND": "torch"}
        keras_out = subprocess.run(
            [args.keras_python, __file__, "--side", "keras", "--data", path],
            capture_output=True, text=True, check=True, env=env,
        ).stdout  # fmt: skip
        keras = json.loads(keras_out)
        ours = run_side("batchfit", path)
    worst = 0.0
    for key, want in keras.items():
        got = ours[key]
        if isinstance(want, str) or isinstance(got, str):
            print(f"{'n/a':>10}  {key}  keras: {want if isinstance(want, str) else 'ok'}"
                  f"  batchfit: {got if isinstance(got, str) else 'ok'}")  # fmt: skip
            continue
        diff = (
            float(np.max(np.abs(np.subtract(got, want)))) if len(got) == len(want) else float("inf")
        )
        worst = max(worst, diff)
        print(f"{diff:10.2e}  {key}  keras={np.round(want, 6).tolist()}")
    print(f"max abs difference over {len(keras)} cases: {worst:.2e}")


if __name__ == "__main__":
    main()
