"""Reference numbers for `tests/test_keras_parts_table.py`, from real Keras 3 (torch backend).

Run once (from the repository root) with Keras' venv, never in CI:

    KERAS_BACKEND=torch /work/keras-venv/bin/python benchmarks/keras_reference/keras_parts.py

(Keras 3.15.1, torch 2.13.0.) It runs every row of `tests/keras_parts_rows.py` in
Keras on the row's seeded data and writes `tests/data_files/keras_parts_reference.npz`
(and `keras_parts_model.keras`, a small model of Conv3D, 3-D pooling,
GroupNormalization, Dot and constraints saved by Keras, with its prediction):
for each row, under `"<kind>/<row id>/..."`, Keras' weights (`get_weights()`), its
output, and for layers the gradients of `sum(output * R)` with respect to the
inputs and to every weight. The test rebuilds each part with batchfit, loads
those weights and compares. Rows Keras cannot run are reported and skipped.
"""

from __future__ import annotations

import os
import sys
import traceback
import zlib
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from keras_parts_rows import ROWS, make_data  # noqa: E402

OUT = ROOT / "tests" / "data_files" / "keras_parts_reference.npz"
MODEL = ROOT / "tests" / "data_files" / "keras_parts_model.keras"
NAMES = {
    "layers": keras.layers,
    "metrics": keras.metrics,
    "losses": keras.losses,
    "optimizers": keras.optimizers,
    "constraints": keras.constraints,
    "regularizers": keras.regularizers,
}


def _np(t: Any) -> np.ndarray:
    return keras.ops.convert_to_numpy(t)


def _seeded_like(key: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(f"{key}/R".encode()))
    return rng.standard_normal(shape).astype(np.float32)


def call_layer(layer: Any, expr: str, xs: list[Any]) -> Any:
    if expr.startswith("layers.MultiHeadAttention"):
        return layer(*xs, training=False)
    return layer(xs if len(xs) > 1 else xs[0], training=False)


def run_layer(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    layer = eval(expr, NAMES)  # the row's own text, from keras_parts_rows.py
    xs = [
        torch.tensor(a, requires_grad=a.dtype == np.float32, device="cpu") for a in data["inputs"]
    ]
    y = call_layer(layer, expr, xs)
    out[f"{key}/out"] = _np(y)
    for i, w in enumerate(layer.get_weights()):
        out[f"{key}/w{i}"] = w
    if not (isinstance(y, torch.Tensor) and y.requires_grad):
        return
    (y * torch.tensor(_seeded_like(key, tuple(y.shape)))).sum().backward()
    for i, x in enumerate(xs):
        if x.grad is not None:
            out[f"{key}/gx{i}"] = x.grad.numpy()
    for i, v in enumerate(layer.weights):
        grad = v.value.grad
        out[f"{key}/gw{i}"] = (
            np.zeros(v.shape, np.float32) if grad is None else grad.detach().cpu().numpy()
        )
        out[f"{key}/trainable{i}"] = np.array(bool(v.trainable))


def run_layer_losses(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    layer = eval(expr, NAMES)
    xs = [torch.tensor(a) for a in data["inputs"]]
    call_layer(layer, expr, xs)
    for i, w in enumerate(layer.get_weights()):
        out[f"{key}/w{i}"] = w
    out[f"{key}/loss"] = np.array(sum(float(_np(v)) for v in layer.losses), np.float64)
    out[f"{key}/count"] = np.array(len(layer.losses))


def run_train(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    x, y = data["x"], data["y"]
    layer = eval(expr, NAMES)
    dtype = "int64" if x.dtype == np.int64 else "float32"
    model = keras.Sequential([keras.Input(x.shape[1:], dtype=dtype), layer])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    for i, w in enumerate(layer.get_weights()):
        out[f"{key}/w0_{i}"] = w
    for _ in range(3):
        model.train_on_batch(x, y)
    for i, w in enumerate(layer.get_weights()):
        out[f"{key}/w{i}"] = w


def _metric_update(metric: Any, expr: str, y_true: Any, y_pred: Any, weight: Any) -> None:
    kwargs = {} if weight is None else {"sample_weight": weight}
    if expr.startswith(("metrics.Mean(", "metrics.Sum(")):
        metric.update_state(y_pred, **kwargs)
    else:
        metric.update_state(y_true, y_pred, **kwargs)


def run_metric(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    metric = eval(expr, NAMES)
    weight = data.get("sample_weight")
    _metric_update(metric, expr, data["y_true"][0], data["y_pred"][0], None)
    _metric_update(metric, expr, data["y_true"][1], data["y_pred"][1], weight)
    out[f"{key}/result"] = _np(metric.result())
    if weight is not None:  # the unweighted result too, for rows where weighting differs
        metric = eval(expr, NAMES)
        _metric_update(metric, expr, data["y_true"][0], data["y_pred"][0], None)
        _metric_update(metric, expr, data["y_true"][1], data["y_pred"][1], None)
        out[f"{key}/unweighted/result"] = _np(metric.result())


def run_loss(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    loss = eval(expr, NAMES)
    args = [data["y_true"], data["y_pred"]]
    if "sample_weight" in data:
        out[f"{key}/value"] = _np(loss(*args, sample_weight=data["sample_weight"]))
    else:
        out[f"{key}/value"] = _np(loss(*args))


def run_optimizer(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    optimizer = eval(expr, NAMES)
    variables = [keras.Variable(w) for w in data["w"]]
    for step in range(5):
        optimizer.apply([keras.ops.convert_to_tensor(g[step]) for g in data["grads"]], variables)
    for i, v in enumerate(variables):
        out[f"{key}/w{i}"] = _np(v)


def run_constraint(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    out[f"{key}/value"] = _np(eval(expr, NAMES)(keras.ops.convert_to_tensor(data["w"])))


def run_regularizer(key: str, expr: str, data: dict[str, Any], out: dict[str, np.ndarray]) -> None:
    out[f"{key}/value"] = _np(eval(expr, NAMES)(keras.ops.convert_to_tensor(data["w"])))


def save_model(out: dict[str, np.ndarray]) -> None:
    """A small functional model of the new parts, saved by Keras as a `.keras` file that
    the test loads with batchfit's `load_model`; its prediction goes to the reference."""
    L = keras.layers
    inp = keras.Input((3, 4, 5, 2))
    c = L.Conv3D(
        4, 2, padding="same", kernel_constraint=keras.constraints.MaxNorm(2.0),
        kernel_regularizer=keras.regularizers.L2(0.01), bias_constraint="non_neg",
    )(inp)  # fmt: skip
    g = L.GroupNormalization(2, epsilon=0.01)(c)
    m = L.MaxPooling3D(2, padding="same")(g)
    a = L.AveragePooling3D(2, strides=1, padding="same")(g)
    gm = L.GlobalMaxPooling3D()(m)
    ga = L.GlobalAveragePooling3D()(a)
    d = L.Dot(axes=1, normalize=True)([gm, ga])
    y = L.Dense(1, kernel_constraint=keras.constraints.UnitNorm())(L.Concatenate()([gm, d]))
    model = keras.Model(inp, y)
    x = make_data("model/x", {"x": ("normal", (2, 3, 4, 5, 2))})["x"]
    out["model/out"] = _np(model.predict(x, verbose=0))
    model.save(MODEL)


def main() -> None:
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    out: dict[str, np.ndarray] = {}
    failed = []
    for kind, row_id, expr, spec in ROWS:
        key = f"{kind}/{row_id}"
        try:
            globals()[f"run_{kind}"](key, expr, make_data(key, spec), out)
        except Exception:  # report and go on: the test skips rows without a reference
            failed.append(key)
            traceback.print_exc()
    save_model(out)
    np.savez_compressed(OUT, **out)
    print(f"keras {keras.__version__}, torch {torch.__version__}: {len(ROWS) - len(failed)} rows")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes, {len(out)} arrays)")
    print(f"wrote {MODEL.relative_to(ROOT)} ({MODEL.stat().st_size} bytes)")
    if failed:
        print("rows Keras could not run:", ", ".join(failed))


if __name__ == "__main__":
    main()
