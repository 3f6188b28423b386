"""Real Keras programs that subclass `Model`/`Layer` or write their own steps and loops.

Each program file records its source, licence, every change, and the reference
its result is checked against: the same file, imports turned back to `keras`,
run on the same generated data under Keras 3.12 with the torch backend
(/work/keras-venv, `KERAS_BACKEND=torch`). Weights start from other random
draws than Keras', so figures are compared with a tolerance, and exact facts
(what evaluate returns for the weights it has) against NumPy.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import batchfit as keras

HERE = Path(__file__).parent


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))  # generated_datasets, seeded_arrays
    return runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")


def _missing(module: Any, *names: str) -> list[str]:
    return [n for n in names if not hasattr(module, n)]


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing(keras.metrics, "MeanAbsoluteError")),
    reason="keras.metrics.MeanAbsoluteError is not in batchfit yet (the metrics change adds it)",
)
def test_custom_train_step_in_torch_guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("custom_train_step_torch", tmp_path, monkeypatch)
    # Keras 3.12 (torch) on the same data: first section loss 0.257 -> 0.229 (3 epochs),
    # the lower-level one 2.04 -> 0.260 (5 epochs), the weighted one 0.098 -> 0.087;
    # each falls every epoch and ends well below the untrained MSE (about 1).
    for key, epochs in (("first_history", 3), ("lower_level_history", 5)):
        losses = done[key].history["loss"]
        assert len(losses) == epochs and losses[-1] < min(losses[0], 0.5), (key, losses)
        assert set(done[key].history) == {"loss", "mae"}
    weighted = done["weighted_history"].history["loss"]
    assert weighted[-1] < weighted[0]
    # evaluate() ran the guide's own test_step: `loss_tracker.update_state(loss)` averages
    # the 32 batch losses (batches of 32, the last of 8) and mae averages samples; NumPy:
    model, x, y = done["model"], done["x"], done["y"]
    kernel, bias = model.get_weights()
    pred = np.asarray(x, np.float32) @ kernel + bias
    batch_losses = [np.mean((pred[i : i + 32] - y[i : i + 32]) ** 2) for i in range(0, 1000, 32)]
    np.testing.assert_allclose(
        done["evaluation"], [np.mean(batch_losses), np.mean(np.abs(pred - y))], rtol=1e-4
    )


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing(keras.layers, "LeakyReLU", "Conv2DTranspose")),
    reason="LeakyReLU and Conv2DTranspose are not in batchfit yet (the layers change adds them)",
)
@pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning")  # the guide's
def test_custom_train_step_gan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("custom_train_step_torch_gan", tmp_path, monkeypatch)
    history = done["gan"].history.history
    # Keras 3.12 (torch), the same 2 batches: d_loss 0.665, g_loss 0.732 (both near
    # log 2, where an untrained discriminator starts). Keras itself needs the guide's
    # `isinstance(real_images, tuple)` widened to lists for its DataLoader batches;
    # batchfit hands the step tuples, as the guide expects.
    assert history["d_loss"][0] == pytest.approx(0.665, abs=0.1)
    assert history["g_loss"][0] == pytest.approx(0.732, abs=0.15)
    d_weights = done["discriminator"].trainable_weights
    assert d_weights and all(np.isfinite(w.detach().numpy()).all() for w in d_weights)


def test_making_new_layers_and_models_guide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _run("subclassing_guide", tmp_path, monkeypatch)
    printed = capsys.readouterr().out
    assert "[2. 2.]\n[4. 4.]" in printed  # ComputeSum's non-trainable total, two calls
    assert "weights: 1\nnon-trainable weights: 1\ntrainable_weights: []" in printed
    assert "{'units': 64}" in printed
    assert done["new_layer"].units == 64 and done["new_layer"].name == done["layer"].name
    assert len(done["layer"].get_config()) >= 3  # name, trainable, units
    # The VAE: Keras 3.12 (torch) on the same 600 generated digits gives loss
    # 0.2359 then 0.1702 over its 2 epochs (MSE + the KL added with add_loss).
    np.testing.assert_allclose(done["vae"].history.history["loss"], [0.2359, 0.1702], rtol=0.05)
    # The add_loss-only model trains on 0.01 * mean(inputs) alone: a small positive loss.
    # (Keras 3.12 still reports its earlier compile's mse there, 0.12: recompiling with
    # loss=None keeps the old loss; a fresh Keras model gives 0.01 * mean(x).)
    (reg_only,) = done["model"].history.history["loss"]
    assert 0 < reg_only < 0.01


@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing(keras.metrics, "CategoricalAccuracy")),
    reason="keras.metrics.CategoricalAccuracy is not in batchfit yet (the metrics change adds it)",
)
def test_training_loop_from_scratch_in_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _run("training_loop_torch_guide", tmp_path, monkeypatch)
    # Keras 3.12 (torch) on the same generated digits: validation accuracy 1.0 and
    # training accuracy 1.0 in the last epoch (the generated classes are separable).
    assert float(done["val_acc"]) == pytest.approx(1.0, abs=0.02)
    assert float(done["train_acc"]) == pytest.approx(1.0, abs=0.02)
    assert done["model"].losses == []  # get_model() has no add_loss layer
