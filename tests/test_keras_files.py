"""Keras 3's own files (.keras archives, .weights.h5) both ways, hostile archives, plot_model.

Where the expected layout comes from: Keras 3.15.1 (torch backend, /work/keras-venv)
saved the models built in `_functional` and `_branches` below, and the archives
were listed with zipfile and h5py. It gave: members `metadata.json`,
`config.json`, `model.weights.h5`, stored uncompressed; weights at
`layers/<snake-case class name, made unique in model.layers order>/vars/<i>`
with the layer's own name as the `name` attribute of `vars`
(`layers/dense_2/vars` named "out"); a functional model's inputs as
`layers/input_layer/vars` with no datasets; Dense kernels `(in, out)`, Conv2D
kernels `(kh, kw, in, out)`, BatchNormalization gamma, beta, moving mean,
moving variance; Normalization mean `(F,)`, variance `(F,)`, count `()` int32.
For the two `_branches` graphs, Keras' `model.layers` orders are recorded at
`test_weights_h5_round_trip_and_layout`.

The optional `keras_reference` tests run real Keras in a subprocess (the venv
named by KERAS_VENV, default /work/keras-venv) and skip where there is none.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import batchfit as keras
from batchfit import layers
from batchfit.models import load_model
from batchfit.utils._plot import plot_layout


def _functional() -> keras.Model:
    inp = keras.Input(shape=(8, 8, 3), name="img")
    x = layers.Conv2D(4, 3, activation="relu", padding="same", name="conv")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Flatten(name="flat")(x)
    a = layers.Dense(5, activation="relu", name="left")(x)
    b = layers.Dense(5, name="right")(x)
    m = layers.Add(name="add")([a, b])
    m = layers.Dropout(0.2, name="drop")(m)
    out = layers.Dense(2, activation="softmax", name="out")(m)
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _branches(long_first: bool = True) -> keras.Model:
    inp = keras.Input((4,), name="x")
    a = layers.Dense(3, name="a")(inp)
    b = layers.Dense(2, name="b")(inp)
    c = layers.Dense(2, name="c")(a)
    return keras.Model(inp, layers.Add(name="sum")([c, b] if long_first else [b, c]))


def _images(n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, 8, 8, 3)).astype(np.float32), rng.integers(0, 2, n)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def _h5_listing(data: bytes) -> dict[str, tuple[int, ...] | None]:
    listing: dict[str, tuple[int, ...] | None] = {}
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda n, o: listing.__setitem__(n, getattr(o, "shape", None)))
    return listing


# -- round trips -----------------------------------------------------------------------------


def test_functional_with_merge_round_trips_through_keras_file(tmp_path):
    x, y = _images()
    model = _functional()
    model.fit(x, y, epochs=1, verbose=0)  # moves BatchNormalization's statistics
    model.save(str(tmp_path / "m.keras"))
    loaded = load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [la.name for la in loaded.layers] == [la.name for la in model.layers]
    assert loaded.metrics_names == ["loss", "accuracy"]
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_sequential_with_normalization_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    norm = layers.Normalization()
    norm.adapt(rng.standard_normal((50, 4)).astype(np.float32) * 3 + 1)
    model = keras.Sequential([keras.Input((4,)), norm, layers.Dense(3, "relu"), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.save(str(tmp_path / "s.keras"))
    weights = _members(tmp_path / "s.keras")["model.weights.h5"]
    with h5py.File(io.BytesIO(weights), "r") as f:
        assert f["layers/normalization/vars/2"].dtype == np.int32
        assert f["layers/normalization/vars/2"][()] == 50
    loaded = load_model(str(tmp_path / "s.keras"))
    x = rng.standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.optimizer.get_config()["learning_rate"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("long_first", "keys"),
    [
        # Keras 3.15's model.layers: ['x', 'a', 'c', 'b', 'sum'] and ['x', 'a', 'b', 'c', 'sum']
        # (by depth, then first visit from the outputs; batchfit's own order for the second
        # graph is x, b, a, c, so the paths cannot come from model.layers)
        (True, {"dense": "a", "dense_1": "c", "dense_2": "b"}),
        (False, {"dense": "a", "dense_1": "b", "dense_2": "c"}),
    ],
)
def test_weights_h5_round_trip_and_layout(tmp_path, long_first, keys):
    model = _branches(long_first)
    model.save_weights(str(tmp_path / "w.weights.h5"))
    listing = _h5_listing((tmp_path / "w.weights.h5").read_bytes())
    shapes = {"a": [(4, 3), (3,)], "b": [(4, 2), (2,)], "c": [(3, 2), (2,)]}
    assert {k: v for k, v in listing.items() if v is not None} == {
        f"layers/{key}/vars/{i}": shape
        for key, name in keys.items()
        for i, shape in enumerate(shapes[name])
    }
    with h5py.File(tmp_path / "w.weights.h5", "r") as f:
        assert {k: f[f"layers/{k}/vars"].attrs["name"] for k in keys} == keys
        assert "layers/input_layer/vars" in f and "layers/add/vars" in f
    fresh = _branches(long_first)
    fresh.load_weights(str(tmp_path / "w.weights.h5"))
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))
    model.save(str(tmp_path / "m.keras"))  # load_weights also takes a .keras archive, as Keras
    again = _branches(long_first)
    again.load_weights(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_archive_has_keras_members_config_and_weight_paths(tmp_path):
    model = _functional()
    model.save(str(tmp_path / "m.keras"))
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert [i.filename for i in z.infolist()] == [
            "metadata.json",
            "config.json",
            "model.weights.h5",
        ]
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    members = _members(tmp_path / "m.keras")
    assert set(json.loads(members["metadata.json"])) == {"keras_version", "date_saved"}
    config = json.loads(members["config.json"])
    assert config["class_name"] == "Functional"
    assert config["config"]["input_layers"] == ["img", 0, 0]
    assert config["config"]["output_layers"] == ["out", 0, 0]
    entries = {e["name"]: e for e in config["config"]["layers"]}
    assert entries["img"]["config"]["batch_shape"] == [None, 8, 8, 3]
    add = entries["add"]
    assert add["build_config"] == {"input_shape": [[None, 5], [None, 5]]}
    (arg,) = add["inbound_nodes"][0]["args"]
    assert [t["config"]["keras_history"] for t in arg] == [["left", 0, 0], ["right", 0, 0]]
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    assert config["compile_config"]["metrics"] == ["accuracy"]
    shapes = {k: v for k, v in _h5_listing(members["model.weights.h5"]).items() if v}
    assert shapes == {
        "layers/conv2d/vars/0": (3, 3, 3, 4),
        "layers/conv2d/vars/1": (4,),
        **{f"layers/batch_normalization/vars/{i}": (4,) for i in range(4)},
        "layers/dense/vars/0": (64, 5),
        "layers/dense/vars/1": (5,),
        "layers/dense_1/vars/0": (64, 5),
        "layers/dense_1/vars/1": (5,),
        "layers/dense_2/vars/0": (5, 2),
        "layers/dense_2/vars/1": (2,),
    }
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as f:
        assert f["layers/dense_2/vars"].attrs["name"] == "out"
        kernel = f["layers/conv2d/vars/0"][()]
    np.testing.assert_array_equal(kernel, model.get_layer("conv").get_weights()[0])


# -- a file as Keras writes it, loaded without Keras ---------------------------------------------

_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}}


def _keras_dense(name: str, units: int, activation: str, inputs: int, **extra) -> dict:
    """A Dense entry with every key Keras 3.15 writes (copied from a saved config.json)."""
    init = {"module": "keras.initializers", "class_name": "GlorotUniform"}
    config = {
        "name": name,
        "trainable": True,
        "dtype": _POLICY,
        "units": units,
        "activation": activation,
        "use_bias": True,
        "kernel_initializer": {**init, "config": {"seed": None}, "registered_name": None},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}},
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
        "quantization_config": None,
        **extra,
    }
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": config,
        "registered_name": None,
        "build_config": {"input_shape": [None, inputs]},
    }


def _keras_archive(
    path: Path, layers_: list[dict], arrays: dict[str, np.ndarray], **zip_kw
) -> None:
    input_layer = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "in"},
    }
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "layers": [input_layer, *layers_]},
        "compile_config": None,
    }
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, value in arrays.items():
            f[key] = value
    with zipfile.ZipFile(path, "w", **zip_kw) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buffer.getvalue())


def test_keras_written_sequential_loads_and_predicts_as_numpy(tmp_path):
    rng = np.random.default_rng(4)
    k0, b0 = (
        rng.standard_normal((4, 3)).astype(np.float32),
        rng.standard_normal(3).astype(np.float32),
    )
    k1, b1 = (
        rng.standard_normal((3, 2)).astype(np.float32),
        rng.standard_normal(2).astype(np.float32),
    )
    arrays = {
        "layers/dense/vars/0": k0,
        "layers/dense/vars/1": b0,
        "layers/dense_1/vars/0": k1,
        "layers/dense_1/vars/1": b1,
    }
    entries = [_keras_dense("hidden", 3, "relu", 4), _keras_dense("head", 2, "linear", 3)]
    _keras_archive(tmp_path / "k.keras", entries, arrays)
    model = load_model(str(tmp_path / "k.keras"))
    x = rng.standard_normal((7, 4)).astype(np.float32)
    expected = np.maximum(x @ k0 + b0, 0) @ k1 + b1  # the same model in NumPy
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert [la.name for la in model.layers] == ["hidden", "head"]
    assert model.optimizer is None  # compile_config was null


# -- hostile and unsupported files ---------------------------------------------------------------


def _one_dense(tmp_path: Path, **extra) -> Path:
    arrays = {
        "layers/dense/vars/0": np.ones((4, 2), np.float32),
        "layers/dense/vars/1": np.ones(2, np.float32),
    }
    _keras_archive(tmp_path / "one.keras", [_keras_dense("d", 2, "linear", 4, **extra)], arrays)
    return tmp_path / "one.keras"


def test_non_default_unknown_key_is_named_and_default_one_ignored(tmp_path):
    assert load_model(str(_one_dense(tmp_path, lora_rank=None, groups=1))).count_params() == 10
    with pytest.raises(ValueError, match=r"layer 'd' \(Dense\) sets lora_rank=4.*not support"):
        load_model(str(_one_dense(tmp_path, lora_rank=4)))
    # a regularizer and a constraint as Keras serializes them are honoured
    l2 = {"module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.25}}
    max_norm = {
        "module": "keras.constraints",
        "class_name": "MaxNorm",
        "config": {"max_value": 3, "axis": 0},
        "registered_name": None,
    }
    model = load_model(str(_one_dense(tmp_path, kernel_regularizer=l2, kernel_constraint=max_norm)))
    assert model.get_layer("d").kernel_regularizer.l2 == pytest.approx(0.25)
    assert model.get_layer("d").kernel_constraint.get_config() == {"max_value": 3, "axis": 0}


def test_unknown_layer_class_and_lambda_are_refused_by_name(tmp_path):
    entry = _keras_dense("mystery", 2, "linear", 4)
    entry["class_name"] = "FancyAttention"
    _keras_archive(tmp_path / "u.keras", [entry], {})
    with pytest.raises(
        ValueError,
        match=r"layer 'mystery' is a FancyAttention, which batchfit does not have.*custom_objects",
    ):
        load_model(str(tmp_path / "u.keras"))
    entry = {"class_name": "Lambda", "config": {"name": "fn", "function": {"code": "4wEAAAA"}}}
    _keras_archive(tmp_path / "l.keras", [entry], {})
    with pytest.raises(ValueError, match=r"layer 'fn' is a Lambda layer.*never runs"):
        load_model(str(tmp_path / "l.keras"))


def test_custom_objects_supply_a_class_by_name(tmp_path):
    class Scaled(layers.Dense):
        pass

    entry = _keras_dense("d", 2, "linear", 4)
    entry["class_name"] = "Scaled"
    arrays = {
        "layers/scaled/vars/0": np.eye(4, 2, dtype=np.float32),
        "layers/scaled/vars/1": np.zeros(2, np.float32),
    }
    _keras_archive(tmp_path / "c.keras", [entry], arrays)
    model = load_model(str(tmp_path / "c.keras"), custom_objects={"Scaled": Scaled})
    assert isinstance(model.layers[0], Scaled)
    np.testing.assert_array_equal(
        model.predict(np.eye(4, dtype=np.float32), verbose=0), np.eye(4, 2)
    )


def test_zip_bomb_member_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.keras"
    _keras_archive(path, [_keras_dense("d", 2, "linear", 4)], {})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("assets/zeros.bin", b"")
    # rewrite the weights member as 64 MiB of zeros, deflated to ~64 KiB
    with zipfile.ZipFile(path) as z:
        kept = {i.filename: z.read(i) for i in z.infolist() if i.filename != "model.weights.h5"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in kept.items():
            z.writestr(name, data)
        z.writestr("model.weights.h5", bytes(64 * 2**20))
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(ValueError, match=r"model.weights.h5' inflates .* \(a zip bomb\?\)"):
        load_model(str(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20  # nothing near the 64 MiB was inflated


def test_path_traversal_member_is_refused(tmp_path):
    path = _one_dense(tmp_path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("../../escape.txt", b"x")
    with pytest.raises(ValueError, match=r"member '../../escape.txt' has an unsafe path"):
        load_model(str(path))


def test_huge_layer_in_config_is_refused_before_allocating(tmp_path):
    # 2**31 units x 4 inputs would be 32 GiB of float32 if built for real
    arrays = {
        "layers/dense/vars/0": np.ones((4, 2), np.float32),
        "layers/dense/vars/1": np.ones(2, np.float32),
    }
    _keras_archive(tmp_path / "big.keras", [_keras_dense("d", 2**31, "linear", 4)], arrays)
    with pytest.raises(
        ValueError,
        match=r"layer 'd' \(Dense, group layers/dense\) needs weights of \[8589934592, 2147483648\] elements, the file holds \[8, 2\]",
    ):
        load_model(str(tmp_path / "big.keras"))


def test_dataset_declaring_more_than_the_file_holds_is_refused(tmp_path):
    path = tmp_path / "sparse.keras"
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:  # chunked and never written: declared, not stored
        f.create_dataset("layers/dense/vars/0", shape=(2**20, 2**12), dtype="f4", chunks=(64, 64))
        f["layers/dense/vars/1"] = np.ones(2**12, np.float32)
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, 2**20], "name": "in"},
                },
                _keras_dense("d", 2**12, "linear", 2**20),
            ],
        },
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buffer.getvalue())
    with pytest.raises(ValueError, match=r"declares 17,179,885,568 bytes of weights in a file of"):
        load_model(str(path))


def test_external_link_in_weights_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["k"] = np.ones((4, 2), np.float32)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("layers/dense/vars")
        f["layers/dense/vars/0"] = h5py.ExternalLink(str(other), "/k")
        f["layers/dense/vars/1"] = np.ones(2, np.float32)
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "in"}},
                _keras_dense("d", 2, "linear", 4),
            ],
        },
    }
    with zipfile.ZipFile(tmp_path / "link.keras", "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", buffer.getvalue())
    with pytest.raises(
        ValueError, match=r"/layers/dense/vars/0 is a ExternalLink, not stored data"
    ):
        load_model(str(tmp_path / "link.keras"))


def test_legacy_h5_and_wrong_suffixes_give_clear_errors(tmp_path):
    import h5py

    model = _branches()
    with h5py.File(tmp_path / "old.h5", "w") as f:  # what Keras writes for model.save("x.h5")
        f.attrs["model_config"] = "{}"
    with pytest.raises(ValueError, match=r"legacy HDF5 model files \(.h5\) are not read"):
        load_model(str(tmp_path / "old.h5"))
    with pytest.raises(ValueError, match=r"Keras weights files end in .weights.h5"):
        model.save_weights(str(tmp_path / "w.keras"))
    with pytest.raises(ValueError, match=r"no Keras layer class"):
        inp = keras.Input((3,))
        keras.Model(inp, inp * 2.0).save(str(tmp_path / "op.keras"))


def test_model_saved_as_h5_round_trips_in_batchfit_format_with_a_warning(tmp_path):
    """Keras programs `model.save("best_model.h5")` (ModelCheckpoint) and `load_model` it
    (keras.io's timeseries classification); Keras 3 writes its legacy HDF5 there. batchfit
    keeps the round trip in its own format and says Keras cannot open that file."""
    model = _branches()
    with pytest.warns(UserWarning, match="Keras cannot open it"):
        model.save(str(tmp_path / "best.h5"))
    back = load_model(str(tmp_path / "best.h5"))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), back.predict(x, verbose=0))


def test_keras2_style_h5_weights_round_trip_and_legacy_layout_is_refused(tmp_path):
    """Keras 2 programs `save_weights("x.h5")` (keras.io's weather example's checkpoint);
    batchfit writes Keras 3's layout there and reads it back; Keras 2's own layout (a root
    `layer_names` attribute, no `layers` group) is a clear error."""
    import h5py

    model = _branches()
    model.save_weights(str(tmp_path / "w.h5"))
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert "layers" in f
    twin = _branches()
    twin.load_weights(str(tmp_path / "w.h5"))
    for a, b in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    with h5py.File(tmp_path / "old.h5", "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        f.create_group("dense")
    with pytest.raises(ValueError, match=r"legacy HDF5"):
        twin.load_weights(str(tmp_path / "old.h5"))


# -- plot_model ----------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_layout_has_a_box_per_layer_and_an_arrow_per_connection():
    model = _branches()
    layout = plot_layout(model, show_shapes=True, show_layer_names=True)
    names = [b.name for b in layout.boxes]
    assert sorted(names) == ["a", "b", "c", "sum", "x"]
    edges = {(names[i], names[j]) for i, j in layout.edges}
    assert edges == {("x", "a"), ("x", "b"), ("a", "c"), ("c", "sum"), ("b", "sum")}
    assert len(layout.edges) == 5
    box = {b.name: b for b in layout.boxes}
    assert box["x"].y > box["a"].y > box["c"].y > box["sum"].y  # top to bottom by depth
    assert box["b"].y == box["a"].y and box["b"].x != box["a"].x
    assert box["c"].lines == ["c (Dense)", "Input shape: (None, 3)", "Output shape: (None, 2)"]
    lr = plot_layout(model, rankdir="LR")
    lr_box = {b.name: b for b in lr.boxes}
    assert lr_box["x"].x < lr_box["a"].x < lr_box["c"].x < lr_box["sum"].x


def test_plot_model_writes_a_png(tmp_path):
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.Dense(1)])
    keras.utils.plot_model(model, to_file=str(tmp_path / "seq.png"), dpi=50)
    keras.utils.plot_model(_functional(), to_file=str(tmp_path / "f.png"), show_shapes=True)
    width, height = _png_size(tmp_path / "seq.png")
    assert 40 < width < 2000 and 80 < height < 2000 and height > width
    fw, fh = _png_size(tmp_path / "f.png")
    assert 200 < fw < 5000 and 500 < fh < 10000
    assert len(plot_layout(model).boxes) == 3 and len(plot_layout(model).edges) == 2


# -- real Keras, when there is one ---------------------------------------------------------------

KERAS_VENV = Path(os.environ.get("KERAS_VENV", "/work/keras-venv"))
KERAS_PYTHON = KERAS_VENV / "bin" / "python"


def _run_keras(script: str, cwd: Path) -> None:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    done = subprocess.run(
        [str(KERAS_PYTHON), "-c", textwrap.dedent(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _has_keras() -> bool:
    if not KERAS_PYTHON.exists():
        return False
    has = "import importlib.util, sys; sys.exit(importlib.util.find_spec('keras') is None)"
    probe = subprocess.run([str(KERAS_PYTHON), "-c", has], capture_output=True, timeout=60)
    return probe.returncode == 0


needs_keras = pytest.mark.skipif(
    not _has_keras(), reason=f"no Keras venv at {KERAS_VENV} (set KERAS_VENV)"
)

_KERAS_MODEL = """
    import keras, numpy as np
    from keras import layers
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(8, 8, 3), name="img")
    x = layers.Conv2D(4, 3, activation="relu", padding="same")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    a = layers.Dense(5, activation="relu")(x)
    b = layers.Dense(5)(x)
    m = layers.Dropout(0.2)(layers.Concatenate()([a, b]))
    model = keras.Model(inp, layers.Dense(2, activation="softmax", name="out")(m))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 8, 8, 3)).astype("float32"), rng.integers(0, 2, 32)
    model.fit(x, y, epochs=2, verbose=0)
    model.save("keras.keras")
    np.save("x.npy", x)
    np.save("y.npy", model.predict(x, verbose=0))
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="tanh")])
    joined = layers.Concatenate()([shared(a), shared(b)])
    nested = keras.Model({"a": a, "b": b}, [layers.Dense(1)(joined), layers.Dense(2)(joined)])
    nested.save("nested.keras")
    xa, xb = x[:5, 0, 0, :].repeat(2, 1)[:, :4], x[:5, 1, 1, :].repeat(2, 1)[:, :4]
    np.save("xa.npy", xa); np.save("xb.npy", xb)
    np.save("n0.npy", nested.predict({"a": xa, "b": xb}, verbose=0)[0])
    np.save("n1.npy", nested.predict({"a": xa, "b": xb}, verbose=0)[1])
"""


@pytest.mark.keras_reference
@pytest.mark.slow
@needs_keras
def test_keras_written_archive_loads_with_the_same_predictions(tmp_path):
    _run_keras(_KERAS_MODEL, tmp_path)
    model = load_model(str(tmp_path / "keras.keras"))
    x = np.load(tmp_path / "x.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(tmp_path / "y.npy"), atol=1e-5)
    assert model.compiled and model.metrics_names == ["loss", "accuracy"]
    nested = load_model(str(tmp_path / "nested.keras"))  # a shared Sequential inside
    inputs = {"a": np.load(tmp_path / "xa.npy"), "b": np.load(tmp_path / "xb.npy")}
    for got, want in zip(nested.predict(inputs, verbose=0), ("n0", "n1")):
        np.testing.assert_allclose(got, np.load(tmp_path / f"{want}.npy"), atol=1e-5)


@pytest.mark.keras_reference
@pytest.mark.slow
@needs_keras
def test_batchfit_written_archive_opens_in_keras_with_the_same_predictions(tmp_path):
    x, y = _images()
    model = _functional()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(str(tmp_path / "bf.keras"))
    model.save_weights(str(tmp_path / "bf.weights.h5"))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", model.predict(x, verbose=0))
    _run_keras(
        """
        import keras, numpy as np
        x, y = np.load("x.npy"), np.load("y.npy")
        model = keras.models.load_model("bf.keras")
        np.testing.assert_allclose(model.predict(x, verbose=0), y, atol=1e-5)
        assert model.optimizer.__class__.__name__ == "Adam"
        clone = keras.models.clone_model(model)
        clone.load_weights("bf.weights.h5")
        np.testing.assert_allclose(clone.predict(x, verbose=0), y, atol=1e-5)
        """,
        tmp_path,
    )


def test_shared_layer_dict_inputs_and_two_outputs_round_trip(tmp_path):
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = layers.Dense(3, activation="tanh", name="shared")
    x = layers.Concatenate(name="cat")([shared(a), shared(b)])
    outputs = [layers.Dense(1, name="o1")(x), layers.Dense(2, activation="softmax", name="o2")(x)]
    model = keras.Model({"a": a, "b": b}, outputs)
    model.save(str(tmp_path / "shared.keras"))
    config = json.loads(_members(tmp_path / "shared.keras")["config.json"])["config"]
    assert config["input_layers"] == {"a": ["a", 0, 0], "b": ["b", 0, 0]}
    cat = next(e for e in config["layers"] if e["name"] == "cat")
    histories = [t["config"]["keras_history"] for t in cat["inbound_nodes"][0]["args"][0]]
    assert histories == [["shared", 0, 0], ["shared", 1, 0]]  # the second call is node 1
    loaded = load_model(str(tmp_path / "shared.keras"))
    rng = np.random.default_rng(5)
    x_in = {k: rng.standard_normal((5, 4)).astype(np.float32) for k in "ab"}
    for got, want in zip(loaded.predict(x_in, verbose=0), model.predict(x_in, verbose=0)):
        np.testing.assert_array_equal(got, want)
    assert loaded.count_params() == model.count_params() == 15 + 7 + 14


# compile_config of `Sequential([Input((4,)), Dense(3)])` compiled by Keras 3.15.1 with
# optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True),
# metrics=[SparseCategoricalAccuracy()] (copied from its config.json)
_KERAS_COMPILE = {
    "optimizer": {
        "module": "keras.src.backend.torch.optimizers.torch_adam",
        "class_name": "Adam",
        "config": {
            "name": "adam_1",
            "learning_rate": 0.0010000000474974513,
            "weight_decay": None,
            "clipnorm": None,
            "global_clipnorm": None,
            "clipvalue": None,
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
        "registered_name": "Adam",
    },
    "loss": {
        "module": "keras.losses",
        "class_name": "SparseCategoricalCrossentropy",
        "config": {
            "name": "sparse_categorical_crossentropy",
            "reduction": "sum_over_batch_size",
            "from_logits": True,
            "ignore_class": None,
        },
        "registered_name": None,
    },
    "loss_weights": None,
    "metrics": [
        {
            "module": "keras.metrics",
            "class_name": "SparseCategoricalAccuracy",
            "config": {"name": "sparse_categorical_accuracy", "dtype": "float32"},
            "registered_name": None,
        }
    ],
    "weighted_metrics": None,
    "run_eagerly": False,
    "steps_per_execution": 1,
    "jit_compile": False,
}


def _with_compile(path: Path, compile_config: dict) -> Path:
    members = _members(path)
    config = json.loads(members["config.json"])
    config["compile_config"] = compile_config
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, json.dumps(config) if name == "config.json" else data)
    return path


def test_keras_compile_config_is_restored(tmp_path):
    model = load_model(str(_with_compile(_one_dense(tmp_path), _KERAS_COMPILE)))
    assert model.metrics_names == ["loss", "sparse_categorical_accuracy"]
    assert model.loss.get_config()["from_logits"] is True
    assert model.optimizer.get_config()["epsilon"] == 1e-7
    assert model.optimizer.get_config()["learning_rate"] == pytest.approx(1e-3)


def test_compile_config_batchfit_cannot_honour_loads_uncompiled_with_a_warning(tmp_path):
    odd = json.loads(json.dumps(_KERAS_COMPILE))
    odd["loss"]["class_name"] = "Tversky"  # a Keras loss batchfit does not have
    with pytest.warns(UserWarning, match=r"compile settings could not be restored.*Tversky"):
        model = load_model(str(_with_compile(_one_dense(tmp_path), odd)))
    assert model.optimizer is None


def test_huge_input_shape_is_refused_before_building(tmp_path):
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, 2**20, 2**20], "name": "in"},
                },
            ],
        },
    }
    with zipfile.ZipFile(tmp_path / "wide.keras", "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", _h5_bytes())
    with pytest.raises(
        ValueError, match=r"input 'in' of shape \[None, 1048576, 1048576\] asks for more elements"
    ):
        load_model(str(tmp_path / "wide.keras"))


def _h5_bytes() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("layers")
    return buffer.getvalue()


def test_models_inside_a_model_round_trip_with_keras_paths(tmp_path):
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="d1")], name="inner")
    fi = keras.Input((3,))
    finner = keras.Model(fi, layers.Dense(2, name="fd")(fi), name="finner")
    i = keras.Input((4,), name="i")
    model = keras.Model(i, layers.Dense(1, name="head")(finner(inner(i))))
    model.save(str(tmp_path / "nest.keras"))
    members = _members(tmp_path / "nest.keras")
    # Keras 3.15 lays a nested model's weights under its group: layers/sequential/layers/dense
    shapes = {k: v for k, v in _h5_listing(members["model.weights.h5"]).items() if v}
    assert shapes == {
        "layers/sequential/layers/dense/vars/0": (4, 3),
        "layers/sequential/layers/dense/vars/1": (3,),
        "layers/functional/layers/dense/vars/0": (3, 2),
        "layers/functional/layers/dense/vars/1": (2,),
        "layers/dense/vars/0": (2, 1),
        "layers/dense/vars/1": (1,),
    }
    with h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as f:
        assert f["layers/sequential/vars"].attrs["name"] == "inner"
    entries = json.loads(members["config.json"])["config"]["layers"]
    assert [(e["class_name"], e["name"]) for e in entries] == [
        ("InputLayer", "i"),
        ("Sequential", "inner"),
        ("Functional", "finner"),
        ("Dense", "head"),
    ]
    loaded = load_model(str(tmp_path / "nest.keras"))
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_member_that_is_not_hdf5_is_a_clear_error(tmp_path):
    path = _one_dense(tmp_path)
    members = _members(path)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, b"not hdf5 at all" if name == "model.weights.h5" else data)
    with pytest.raises(ValueError, match=r"model.weights.h5 is not a readable HDF5 file"):
        load_model(str(path))
