"""Real Keras programs that read their data through `keras.utils` datasets.

Each program file records its source, licence, every change and its
reference. They run in this process (`runpy`) in a temporary working
directory, on generated data (`generated_datasets.py`, `generated_folders.py`).
A program that needs a layer or function batchfit does not have yet is
skipped, naming what is missing.
"""

from __future__ import annotations

import math
import re
import runpy
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)  # files the program saves land here
    monkeypatch.syspath_prepend(str(HERE))  # for the generated data helpers
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")


@pytest.mark.slow
def test_pydataset_guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("pydataset_guide", tmp_path, monkeypatch)
    # the PyDataset sections: the last model trained on a DataLoader; evaluate it on
    # the guide's PyDataset (workers=4) and its arrays, which must agree
    model, val = done["model"], done["val_py_dataset"]
    loss, accuracy = model.evaluate(val, verbose=0)
    assert accuracy > 0.99 and loss < 0.01, (loss, accuracy)
    assert model.evaluate(done["x_val"], done["y_val"], batch_size=32, verbose=0) == [
        loss,
        accuracy,
    ]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive")
def test_timeseries_weather_forecasting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _run("timeseries_weather_forecasting", tmp_path, monkeypatch)
    printed = capsys.readouterr().out
    assert "Input shape: (256, 120, 7)" in printed
    assert "Target shape: (256, 1)" in printed
    losses = done["history"].history["val_loss"]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    # the windows the model saw are Keras': window k starts at k and its target is
    # temperature 792 rows later (past + future), as the example's comments say
    x, y = next(iter(done["dataset_train"]))
    assert (x[3] == done["x_train"][3 : 3 + 720 : 6]).all()
    assert y[3, 0] == done["features"].iloc[792 + 3, 1]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive")
def test_image_classification_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch
    from generated_folders import make_pet_images

    # the program compiles with jit_compile=True (torch.compile, as Keras' torch backend
    # does): compiling this Xception on a test CPU costs minutes, so the test runs the
    # same steps eagerly (the numbers are the same; the compile path has its own tests)
    monkeypatch.setattr(torch, "compile", lambda module, *args, **kwargs: module)
    make_pet_images(tmp_path / "PetImages")
    done = _run("image_classification_from_scratch", tmp_path, monkeypatch)
    printed = capsys.readouterr().out
    assert "Deleted 0 images" in printed
    assert "Found 49 files belonging to 2 classes." in printed
    assert "Using 40 files for training." in printed and "Using 9 files for validation." in printed
    assert done["train_ds"].class_names == ["Cat", "Dog"]
    cat = re.search(r"This image is ([\d.]+)% cat and ([\d.]+)% dog", printed)
    assert cat is not None and 0 <= float(cat.group(1)) <= 100
    history = done["model"].history.history
    assert len(history["val_loss"]) == 2 and all(math.isfinite(v) for v in history["loss"])
