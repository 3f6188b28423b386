"""batchfit's optimizers against Keras 3 itself: 20 steps from the same weights and gradients.

Not a test (CI has no Keras): run it where a second venv has Keras 3 on the
torch backend, with the same torch pin:

    python3 -m venv /tmp/keras-venv && /tmp/keras-venv/bin/pip install torch==2.13.0 keras h5py
    .venv/bin/python benchmarks/keras_reference/optimizer_trajectories.py \
        --keras-python /tmp/keras-venv/bin/python

The gradients come from a fixed least-squares problem (float32), recomputed
at each step from the current weights on both sides, so any difference in the
update rule grows over the 20 steps instead of hiding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from batchfit import optimizers

CASES: dict[str, dict[str, object]] = {
    "SGD": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "Adam": {
        "learning_rate": 0.05,
        "beta_1": 0.8,
        "beta_2": 0.99,
        "epsilon": 1e-4,
        "amsgrad": True,
    },
    "AdamW": {"learning_rate": 0.05, "weight_decay": 0.1, "epsilon": 1e-4},
    "Adamax": {"learning_rate": 0.05, "epsilon": 1e-4},
    "Nadam": {"learning_rate": 0.05, "epsilon": 1e-4},
    "RMSprop": {
        "learning_rate": 0.02,
        "rho": 0.8,
        "momentum": 0.5,
        "epsilon": 1e-4,
        "centered": True,
    },
    "Adagrad": {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "epsilon": 1e-4},
    "Adadelta": {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-4},
    "Lion": {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9},
    "Lamb": {"learning_rate": 0.05, "epsilon": 1e-4},
    "Adafactor": {"learning_rate": 0.05, "clip_threshold": 0.5},
    "Adafactor+const": {"learning_rate": 0.05, "relative_step": False, "epsilon_2": 0.01},
    "Ftrl": {
        "learning_rate": 0.1,
        "learning_rate_power": -0.7,
        "l1_regularization_strength": 0.01,
        "l2_regularization_strength": 0.02,
        "l2_shrinkage_regularization_strength": 0.03,
        "beta": 0.1,
    },
    "Adam+accum": {"learning_rate": 0.05, "gradient_accumulation_steps": 3},
    "Adam+ema": {
        "learning_rate": 0.05,
        "use_ema": True,
        "ema_momentum": 0.9,
        "ema_overwrite_frequency": 3,
    },
    "Adam+accum+ema": {
        "learning_rate": 0.05,
        "gradient_accumulation_steps": 2,
        "use_ema": True,
        "ema_momentum": 0.9,
        "ema_overwrite_frequency": 3,
    },
}
STEPS = 20

KERAS_SIDE = r"""
import json, sys, numpy as np, os
os.environ["KERAS_BACKEND"] = "torch"
import keras, torch
data = np.load(sys.argv[1]); cases = json.loads(sys.argv[2]); steps = int(sys.argv[3])
x, y = torch.tensor(data["x"]), torch.tensor(data["y"])
out = {}
for name, kw in cases.items():
    cls = getattr(keras.optimizers, name.split("+")[0])
    w = keras.Variable(data["w"], dtype=str(data["w"].dtype))
    b = keras.Variable(data["b"], dtype=str(data["b"].dtype))
    opt = cls(**kw)
    for _ in range(steps):
        wt, bt = w.value.detach().requires_grad_(), b.value.detach().requires_grad_()
        ((x @ wt + bt - y) ** 2).mean().backward()
        opt.apply([wt.grad, bt.grad], [w, b])
    opt.finalize_variable_values([w, b])
    out[name + "/w"] = np.asarray(w.value.detach()); out[name + "/b"] = np.asarray(b.value.detach())
np.savez(sys.argv[4], **out)
"""


def batchfit_side(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    x, y = torch.tensor(data["x"]), torch.tensor(data["y"])
    out = {}
    for name, kw in CASES.items():
        w = torch.tensor(data["w"], requires_grad=True)
        b = torch.tensor(data["b"], requires_grad=True)
        opt = getattr(optimizers, name.split("+")[0])(**kw)
        opt.build([w, b])
        for _ in range(STEPS):
            opt.zero_grad()
            ((x @ w + b - y) ** 2).mean().backward()
            opt.step()
        opt.finalize_variable_values()
        out[name + "/w"], out[name + "/b"] = w.detach().numpy(), b.detach().numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--keras-python", default=os.environ.get("KERAS_PYTHON", "/work/keras-venv/bin/python")
    )
    parser.add_argument("--float64", action="store_true", help="rounding out of the way")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dtype = np.float64 if args.float64 else np.float32
    data = {
        "x": rng.normal(size=(16, 3)).astype(dtype),
        "y": rng.normal(size=(16, 2)).astype(dtype),
        "w": rng.normal(size=(3, 2)).astype(dtype),
        "b": rng.normal(size=(2,)).astype(dtype),
    }
    ours = batchfit_side(data)
    with tempfile.TemporaryDirectory() as tmp:
        inputs, result = Path(tmp, "in.npz"), Path(tmp, "out.npz")
        np.savez(inputs, **data)
        subprocess.run(
            [
                args.keras_python,
                "-c",
                KERAS_SIDE,
                str(inputs),
                json.dumps(CASES),
                str(STEPS),
                str(result),
            ],
            check=True,
        )
        theirs = dict(np.load(result))
    print(f"{'optimizer':16} max |batchfit - keras| after {STEPS} steps ({dtype.__name__})")
    worst = 0.0
    for name in CASES:
        diff = max(float(np.abs(ours[f"{name}/{k}"] - theirs[f"{name}/{k}"]).max()) for k in "wb")
        worst = max(worst, diff)
        print(f"{name:16} {diff:.2e}")
    sys.exit(0 if worst < 1e-5 else 1)


if __name__ == "__main__":
    main()
