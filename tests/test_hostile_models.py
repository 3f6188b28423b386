"""A model file is data: a doctored config is refused before anything is allocated.

The cases run in a child process with an address-space limit, so a regression
that allocates gigabytes fails there instead of swapping the machine; each must
be refused in under a second, with peak memory under 500 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

from batchfit.layers import Dense
from batchfit.models import Sequential, load_model

pytestmark = pytest.mark.slow


def _saved(tmp_path):
    torch.manual_seed(0)
    model = Sequential([Dense(4, input_dim=3), Dense(1)])
    model.compile("sgd", "mse")
    path = tmp_path / "model.safetensors"
    model.save(str(path))
    return path


def _doctor(path, out, change):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        info = json.loads(f.metadata()["batchfit"])
    text = change(info)
    save_file(load_file(str(path)), str(out), metadata={"batchfit": text})
    return out


def _dense(units, inputs):
    def change(info):
        info["model"]["input_shape"] = [inputs]
        info["model"]["layers"][0]["config"]["units"] = units
        return json.dumps(info)

    return change


def _set(key_path, value):
    def change(info):
        target = info
        for key in key_path[:-1]:
            target = target[key]
        target[key_path[-1]] = value
        return json.dumps(info)

    return change


def _conv(info):
    info["model"]["input_shape"] = [8, 8, 3]
    info["model"]["layers"][0] = {
        "class_name": "Conv2D",
        "config": {"name": "c", "filters": 100000, "kernel_size": [100, 100]},
    }
    return json.dumps(info)


CASES = {
    "Dense(60000) on 60000 inputs": _dense(60000, 60000),
    "Dense(10**12)": _dense(10**12, 3),
    "input_shape [50000, 50000]": _set(["model", "input_shape"], [50000, 50000]),
    "Conv2D(100000, 100x100)": _conv,
    "nested 100k deep": lambda info: "[" * 100_000 + "]" * 100_000,
    '"format": "1"': _set(["format"], "1"),
    '"layers": 7': _set(["model", "layers"], 7),
    "an extra key": _set(["model", "layers", 0, "config", "colour"], "blue"),
    "input_shape [-3]": _set(["model", "input_shape"], [-3]),
    "model as a list": _set(["model"], [1, 2]),
}


def test_doctored_model_files_are_refused_quickly_in_little_memory(tmp_path):
    path = _saved(tmp_path)
    files = {
        name: str(_doctor(path, tmp_path / f"case{i}.safetensors", change))
        for i, (name, change) in enumerate(CASES.items())
    }
    child = textwrap.dedent(
        """
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # fail instead of swapping
        from batchfit.models import load_model
        load_model(sys.argv[2])  # warm up: imports and first builds are not what is timed
        out = {}
        for name, path in json.loads(sys.argv[1]).items():
            start = time.perf_counter()
            try:
                load_model(path)
                out[name] = ["loaded", 0.0]
            except ValueError as e:
                out[name] = [str(e), time.perf_counter() - start]
            except BaseException as e:
                out[name] = [f"{type(e).__name__}: {e}", -1.0]
        # VmHWM: this address space's peak (ru_maxrss would carry the parent's over exec)
        with open("/proc/self/status") as f:
            hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        peak_mb = hwm_kb / 1024
        print(json.dumps({"cases": out, "peak_mb": peak_mb}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child, json.dumps(files), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (message, seconds) in report["cases"].items():
        assert seconds >= 0, f"{name}: not a clear ValueError: {message}"
        assert files[name] in message, f"{name}: the error does not name the file: {message}"
        assert seconds < 1.0, f"{name}: took {seconds:.2f} s"
    assert report["peak_mb"] < 500, report["peak_mb"]
    messages = {name: m for name, (m, _) in report["cases"].items()}
    assert (
        "holds (4, 3)" in messages["Dense(60000) on 60000 inputs"]
        or "elements per sample" in messages["Dense(60000) on 60000 inputs"]
    )
    assert "nested too deeply" in messages["nested 100k deep"]
    assert "'format' must be a whole number" in messages['"format": "1"']
    assert "'layers' must be a list" in messages['"layers": 7']
    assert "colour" in messages["an extra key"]


def test_an_untouched_file_still_loads_to_the_same_predictions(tmp_path):
    path = _saved(tmp_path)
    model = load_model(str(path))
    x = torch.randn(5, 3).numpy()
    original = Sequential([Dense(4, input_dim=3), Dense(1)])
    original.load_weights(str(path))
    assert (model.predict(x, verbose=0) == original.predict(x, verbose=0)).all()
