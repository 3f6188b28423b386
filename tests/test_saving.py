"""save -> load gives identical predictions; loading never unpickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from batchfit.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from batchfit.models import Model, Sequential, load_model


def _cnn() -> Sequential:
    model = Sequential(
        [
            Conv2D(4, 3, activation="relu", input_shape=(8, 8, 2)),
            MaxPooling2D(),
            BatchNormalization(),
            Flatten(),
            Dropout(0.2),
            Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_save_load_gives_identical_predictions_and_compile(tmp_path):
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 2)).astype(np.float32)
    y = np.arange(16) % 3
    model = _cnn()
    model.fit(x, y, epochs=2, verbose=0)  # moves BatchNormalization's moving statistics
    path = tmp_path / "cnn.safetensors"
    model.save(str(path))
    loaded = load_model(str(path))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.metrics_names == ["loss", "accuracy"]
    assert (
        loaded.optimizer.get_config()["learning_rate"]
        == model.optimizer.get_config()["learning_rate"]
    )
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_lazily_built_sequential_saves_its_shapes(tmp_path):
    model = Sequential([Dense(4, activation="tanh"), Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((3, 5), np.float32)
    model.train_on_batch(x, np.zeros((3, 1), np.float32))
    model.save(str(tmp_path / "m.safetensors"))
    loaded = load_model(str(tmp_path / "m.safetensors"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_wrapped_module_needs_its_module_to_load(tmp_path):
    net = nn.Sequential(nn.Linear(3, 2))
    model = Model(net, device="cpu")
    path = str(tmp_path / "wrapped.safetensors")
    model.save(path)
    with pytest.raises(
        ValueError, match=r"custom torch module .*load_model\(path, module=MyModule\(\)\)"
    ):
        load_model(path)
    loaded = load_model(path, module=nn.Sequential(nn.Linear(3, 2)))
    x = torch.randn(4, 3)
    torch.testing.assert_close(loaded(x), net(x))


def test_save_and_load_weights_check_shapes(tmp_path):
    model = Sequential([Dense(2, input_dim=3)])
    path = str(tmp_path / "w.safetensors")
    model.save_weights(path)
    other = Sequential([Dense(2, input_dim=3)])
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = Sequential([Dense(5, input_dim=3)])
    with pytest.raises(
        ValueError, match=r"weight 'layers.0.kernel' has shape \(2, 3\), the model expects \(5, 3\)"
    ):
        wrong.load_weights(path)


class _Boom:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_a_pickle_file_is_refused_without_running_it(tmp_path, capsys):
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"weights": _Boom()}))
    with pytest.raises(
        ValueError, match=r"evil.safetensors is not a readable batchfit/safetensors file"
    ):
        load_model(str(path))
    assert "pickle code ran" not in capsys.readouterr().out


def test_truncated_and_tampered_files_are_refused(tmp_path):
    model = _cnn()
    path = tmp_path / "m.safetensors"
    model.save(str(path))
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.safetensors is not a readable"):
        load_model(str(tmp_path / "cut.safetensors"))
    # a file naming a class outside batchfit's registry is refused, not imported
    tampered = data.replace(b'\\"class_name\\": \\"Flatten\\"', b'\\"class_name\\": \\"os.exec\\"')
    assert tampered != data and len(tampered) == len(data)
    (tmp_path / "t.safetensors").write_bytes(tampered)
    with pytest.raises(ValueError, match=r"unknown layer class 'os.exec'"):
        load_model(str(tmp_path / "t.safetensors"))
    with pytest.raises(FileNotFoundError, match="no model file at"):
        load_model(str(tmp_path / "missing.safetensors"))
