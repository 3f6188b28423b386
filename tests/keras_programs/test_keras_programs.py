"""Real Keras programs from keras.io, run with only their imports (and data) changed.

Each program file records its source, licence, every change, and the reference
its result is checked against. They run in this process (`runpy`), in a
temporary working directory, on generated data (`generated_datasets.py`).
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).parent


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)  # files the program saves land here
    monkeypatch.syspath_prepend(str(HERE))  # for `from generated_datasets import ...`
    return runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")


@pytest.mark.slow
def test_mnist_convnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("mnist_convnet", tmp_path, monkeypatch)
    loss, accuracy = done["score"]
    assert accuracy > 0.9, f"test accuracy {accuracy:.3f} on a separable generated task"
    assert np.isfinite(loss)


@pytest.mark.slow
def test_functional_api_guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("functional_api_guide", tmp_path, monkeypatch)
    assert done["test_scores"][1] > 0.9
    assert len(done["history"].history["val_accuracy"]) == 2
    # the ensemble averages three nested models, as the guide says
    x = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    expected = np.mean(
        [m.predict(x, verbose=0) for m in (done["model1"], done["model2"], done["model3"])], axis=0
    )
    np.testing.assert_allclose(
        done["ensemble_model"].predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6
    )
    assert done["model"].name == "toy_resnet" and (tmp_path / "my_model.keras").is_file()


def test_sequential_model_guide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _run("sequential_model_guide", tmp_path, monkeypatch)
    printed = capsys.readouterr().out
    assert "\n2\n" in f"\n{printed}"  # len(model.layers) after pop()
    assert "Number of weights after calling the model: 6" in printed
    assert "(None, 40, 40, 32)" in printed  # "The answer was: (40, 40, 32)"
    assert "(None, 4, 4, 32)" in printed  # "Now that we have 4x4 feature maps"
    assert tuple(done["features"].shape) == (1, 121, 121, 32)


def test_transfer_learning_guide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _run("transfer_learning_guide", tmp_path, monkeypatch)  # its own asserts ran
    counts = [line for line in capsys.readouterr().out.splitlines() if "weights:" in line]
    assert counts == [
        "weights: 2", "trainable_weights: 2", "non_trainable_weights: 0",
        "weights: 4", "trainable_weights: 2", "non_trainable_weights: 2",
        "weights: 2", "trainable_weights: 0", "non_trainable_weights: 2",
    ]  # fmt: skip
    assert done["model"].trainable is False


@pytest.mark.slow
def test_keras2_mnist_mlp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("keras2_mnist_mlp", tmp_path, monkeypatch)
    assert done["score"][1] > 0.9
    assert len(done["history"].history["val_accuracy"]) == 2
