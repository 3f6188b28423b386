"""keras.io's sequence programs (recurrent and attention layers), run with only their imports changed.

The programs and their references are recorded in each file's header; the data
are generated reviews (`generated_text_datasets.py`). Run as in
`test_keras_programs.py`: in this process, in a temporary working directory.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).parent


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(HERE))  # for `from generated_text_datasets import ...`
    return runpy.run_path(str(HERE / f"{name}.py"), run_name="__main__")


@pytest.mark.slow
def test_bidirectional_lstm_imdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = _run("bidirectional_lstm_imdb", tmp_path, monkeypatch)
    history = done["history"].history
    assert len(history["val_accuracy"]) == 2
    # Keras 3 on the same data: 0.820 (seed 0), 0.97 after one epoch (seed 1); chance is ~0.5
    assert history["val_accuracy"][-1] > 0.75, history
    assert history["loss"][-1] < history["loss"][0]
    assert "Total params: 2,757,761" in capsys.readouterr().out  # Keras' model.summary() figure


@pytest.mark.slow
def test_keras2_imdb_lstm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("keras2_imdb_lstm", tmp_path, monkeypatch)  # recurrent_dropout: Keras' loop
    assert done["acc"] > 0.75, f"test accuracy {done['acc']:.3f}; Keras 3 gives 0.953 here"
    assert np.isfinite(done["score"])
    assert tuple(done["x_train"].shape) == (512, 80)


@pytest.fixture(scope="module")
def transformer_program(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The transformer program's globals after one run (shared by the tests below)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _run(
            "text_classification_with_transformer", tmp_path_factory.mktemp("tf"), monkeypatch
        )


@pytest.mark.slow
def test_text_classification_with_transformer(transformer_program: dict[str, Any]) -> None:
    history = transformer_program["history"].history
    assert len(history["val_accuracy"]) == 2
    # Keras 3 on the same data: see the program's header
    assert history["val_accuracy"][-1] > 0.75, history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    attention = transformer_program["transformer_block"].att
    assert [w.shape for w in attention.get_weights()] == [
        (32, 2, 32), (2, 32), (32, 2, 32), (2, 32), (32, 2, 32), (2, 32), (2, 32, 32), (32,),
    ]  # fmt: skip


@pytest.mark.slow
def test_transformer_counts_keras_parameters(transformer_program: dict[str, Any]) -> None:
    assert transformer_program["model"].count_params() == 657_758  # Keras 3.15.1's count
