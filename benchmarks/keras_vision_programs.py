"""Run the vision/timeseries programs of tests/keras_programs under real Keras 3 for references.

    .venv/bin/python benchmarks/keras_vision_programs.py

Each program is run twice on the same generated data, both with NumPy's and
torch's global seeds at 0 and one torch thread: under /work/keras-venv
(`KERAS_BACKEND=torch`) with its `batchfit` import lines turned back into the
Keras ones, and under batchfit as written. It prints the figures the tests
check (final validation/test numbers). Weights start from different random
draws in the two libraries, so the figures agree in size, not bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "tests" / "keras_programs"
KERAS_PYTHON = "/work/keras-venv/bin/python"
BACK_TO_KERAS = {
    "import batchfit as keras": "import keras",
    "from batchfit import layers": "from keras import layers",
    "from batchfit.models import Model": "from keras.models import Model",
}

# /work/keras-venv has no matplotlib: the Keras run gets a stand-in whose calls do nothing
PYPLOT_STAND_IN = """
class _Nothing:
    def __getattr__(self, name):
        return self
    def __call__(self, *args, **kwargs):
        return self
    def __iter__(self):
        return iter(())
def __getattr__(name):
    return _Nothing()
"""

RUNNER = """
import os, runpy, sys, numpy as np, torch
torch.set_num_threads(1); np.random.seed(0); torch.manual_seed(0)
sys.path.insert(0, {programs!r}); sys.path.insert(0, os.getcwd())
ns = runpy.run_path({path!r}, run_name="__main__")
if "autoencoder" in ns:
    ae = ns["autoencoder"]
    loss = ae.evaluate(ns["noisy_test_data"], ns["test_data"], verbose=0)
    print("FIGURE noisy->clean loss", loss)
else:
    history = ns["history"].history
    print("FIGURE val_accuracy", [round(float(v), 4) for v in history["val_accuracy"]])
"""


def run(name: str, keras: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        text = (PROGRAMS / f"{name}.py").read_text()
        if keras:
            for ours, theirs in BACK_TO_KERAS.items():
                text = text.replace(ours, theirs)
        path = Path(tmp) / f"{name}.py"
        path.write_text(text)
        python = KERAS_PYTHON if keras else sys.executable
        if keras:
            (Path(tmp) / "matplotlib").mkdir()
            (Path(tmp) / "matplotlib" / "__init__.py").write_text("")
            (Path(tmp) / "matplotlib" / "pyplot.py").write_text(PYPLOT_STAND_IN)
        env = {**os.environ, "KERAS_BACKEND": "torch", "MPLBACKEND": "Agg",
               "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
        code = RUNNER.format(programs=str(PROGRAMS), path=str(path))
        done = subprocess.run(
            [python, "-c", code], cwd=tmp, env=env, capture_output=True, text=True, check=False
        )
        lines = [
            line for line in done.stdout.splitlines() if "FIGURE" in line or "Test accuracy" in line
        ]
        return "\n".join(lines) if done.returncode == 0 else done.stderr[-2000:]


def main() -> None:
    for name in ("conv_autoencoder_denoising", "timeseries_classification_from_scratch"):
        for keras in (True, False):
            print(f"{name} [{'keras' if keras else 'batchfit'}]\n{run(name, keras)}")


if __name__ == "__main__":
    main()
