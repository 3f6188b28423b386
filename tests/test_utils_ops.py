"""keras.utils, keras.ops, keras.backend, keras.random, keras.regularizers against NumPy and Keras' docs."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit import ops

# -- keras.utils ------------------------------------------------------------------------


def test_to_categorical_as_keras_documents() -> None:
    # the docstring example of keras.utils.to_categorical
    out = keras.utils.to_categorical([0, 1, 2, 3], num_classes=4)
    np.testing.assert_array_equal(out, np.eye(4))
    assert out.dtype == np.float64  # NumPy in, float64 out, as Keras


@pytest.mark.parametrize(
    ("labels", "shape"),
    [
        (np.array([2, 0, 1]), (3, 3)),
        (np.array([[2], [0], [1]]), (3, 3)),
        (np.array([[0, 1], [1, 2]]), (2, 2, 3)),
    ],
)
def test_to_categorical_shapes(labels: np.ndarray, shape: tuple[int, ...]) -> None:
    out = keras.utils.to_categorical(labels)
    assert out.shape == shape
    np.testing.assert_array_equal(out.argmax(-1), labels.reshape(shape[:-1]))
    np.testing.assert_array_equal(out.sum(-1), np.ones(shape[:-1]))


def test_to_categorical_errors_and_tensors() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 3\), got values from 0 to 3"):
        keras.utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="integer class indices"):
        keras.utils.to_categorical([0.5])
    t = keras.utils.to_categorical(torch.tensor([1, 0]), num_classes=2)
    assert torch.equal(t, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_normalize_matches_numpy() -> None:
    x = np.random.default_rng(0).normal(size=(4, 3))
    x[2] = 0.0
    out = keras.utils.normalize(x)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(out, np.where(norms == 0, 0.0, x / np.where(norms == 0, 1, norms)))
    np.testing.assert_allclose(keras.utils.normalize(x, axis=0, order=1), x / np.abs(x).sum(0))
    torch.testing.assert_close(keras.utils.normalize(torch.from_numpy(x)), torch.from_numpy(out))


def test_pad_sequences_as_keras_documents() -> None:
    seqs = [[1], [2, 3], [4, 5, 6]]
    pad = keras.utils.pad_sequences
    np.testing.assert_array_equal(pad(seqs), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad(seqs, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad(seqs, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad(seqs, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    np.testing.assert_array_equal(pad(seqs, maxlen=2, truncating="post"), [[0, 1], [2, 3], [4, 5]])
    assert pad(seqs).dtype == np.int32
    vectors = pad([np.ones((1, 2)), np.ones((2, 2))], dtype="float32")
    assert vectors.shape == (2, 2, 2) and vectors[0, 0].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="padding must be"):
        pad(seqs, padding="middle")


def test_set_random_seed_seeds_python_numpy_and_torch() -> None:
    def draws() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(()))

    keras.utils.set_random_seed(123)
    first = draws()
    keras.utils.set_random_seed(123)
    assert draws() == first


def test_progbar_prints_running_means() -> None:
    """Keras 3's Progbar: a running mean while going; a value given with the finishing
    update replaces it (Keras' `finalize` branch), so a loop that finishes with an empty
    update shows the mean."""
    out = io.StringIO()
    bar = keras.utils.Progbar(4, verbose=1, interval=0.0, file=out)
    for step, loss in enumerate([1.0, 2.0, 3.0, 6.0]):
        bar.update(step + 1, values=[("loss", loss)], finalize=False)
    bar.update(4, finalize=True)
    line = out.getvalue()  # not a terminal: one line, written when the bar finishes
    assert line.startswith("4/4 " + "━" * 20 + " ") and line.endswith(" - loss: 3.0000\n")
    assert "ms/step" in line or "us/step" in line or "s/step" in line
    out = io.StringIO()
    bar = keras.utils.Progbar(4, verbose=2, file=out)
    for step, loss in enumerate([1.0, 2.0, 3.0, 6.0]):
        bar.update(step + 1, values=[("loss", loss)])
    assert out.getvalue().startswith("4/4 - ") and out.getvalue().endswith(" - loss: 6.0000\n")


def test_progbar_prints_small_values_as_keras_does() -> None:
    out = io.StringIO()
    bar = keras.utils.Progbar(1, verbose=1, file=out)
    bar.update(1, values=[("loss", 4.5749e-06), ("acc", 0.5)])
    assert out.getvalue().endswith(" - loss: 4.5749e-06 - acc: 0.5000\n")


# -- keras.ops --------------------------------------------------------------------------

X = np.array([[1.0, -2.0, 3.0], [4.0, 0.5, -6.0]], dtype=np.float32)
Y = np.array([[0.5, 2.0, -1.0], [1.0, 1.0, 2.0]], dtype=np.float32)

CASES = [
    ("add", (X, Y), X + Y),
    ("subtract", (X, Y), X - Y),
    ("multiply", (X, Y), X * Y),
    ("divide", (X, Y), X / Y),
    ("maximum", (X, Y), np.maximum(X, Y)),
    ("minimum", (X, Y), np.minimum(X, Y)),
    ("abs", (X,), np.abs(X)),
    ("square", (X,), X**2),
    ("sqrt", (np.abs(X),), np.sqrt(np.abs(X))),
    ("exp", (X,), np.exp(X)),
    ("log", (np.abs(X),), np.log(np.abs(X))),
    ("clip", (X, -1.0, 2.0), np.clip(X, -1, 2)),
    ("matmul", (X, Y.T), X @ Y.T),
    ("relu", (X,), np.maximum(X, 0)),
    ("sigmoid", (X,), 1 / (1 + np.exp(-X))),
    ("softmax", (X,), np.exp(X) / np.exp(X).sum(-1, keepdims=True)),
    ("mean", (X,), X.mean()),
    ("sum", (X,), X.sum()),
    ("max", (X,), X.max()),
    ("var", (X,), X.var()),
    ("std", (X,), X.std()),
    ("reshape", (X, (3, 2)), X.reshape(3, 2)),
    ("transpose", (X,), X.T),
    ("expand_dims", (X, 1), X[:, None]),
    ("squeeze", (X[:, None],), X),
    ("concatenate", ([X, Y], 1), np.concatenate([X, Y], 1)),
    ("stack", ([X, Y],), np.stack([X, Y])),
    ("where", (X > 0, X, Y), np.where(X > 0, X, Y)),
]


@pytest.mark.parametrize(("name", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_ops_match_numpy(name: str, args: tuple[object, ...], expected: np.ndarray) -> None:
    out = getattr(ops, name)(*args)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, rtol=1e-6, atol=1e-6)


def test_ops_reductions_with_axis_and_keepdims() -> None:
    np.testing.assert_allclose(ops.mean(X, axis=0), X.mean(0))
    np.testing.assert_allclose(ops.sum(X, axis=(0, 1), keepdims=True), X.sum((0, 1), keepdims=True))
    assert ops.mean(X, keepdims=True).shape == (1, 1)
    np.testing.assert_allclose(ops.var(X, axis=1), X.var(1), rtol=1e-6)  # population variance
    arg = ops.argmax(X, axis=-1)
    assert arg.dtype == torch.int32 and arg.tolist() == X.argmax(-1).tolist()
    assert int(ops.argmax(X)) == int(X.argmax())


def test_ops_creation_conversion_and_shapes() -> None:
    assert ops.ones((2, 3)).dtype == torch.float32 and float(ops.zeros((2,)).sum()) == 0.0
    assert ops.shape(ops.ones((2, 3))) == (2, 3) and ops.shape(X) == (2, 3)
    assert ops.cast(X, "int32").dtype == torch.int32
    assert ops.convert_to_tensor([1.0, 2.0]).dtype == torch.float32  # Python floats: floatx
    assert ops.convert_to_tensor(np.arange(3)).dtype == torch.int64
    assert ops.convert_to_tensor(X, dtype="float64").dtype == torch.float64
    np.testing.assert_array_equal(ops.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    rows, cols = ops.where(X > 3)
    assert rows.tolist() == [1] and cols.tolist() == [0]


def test_ops_losses_follow_keras_docs() -> None:
    # the example of keras.utils.to_categorical's docstring, with Keras' printed values
    a = keras.utils.to_categorical([0, 1, 2, 3], num_classes=4)
    b = np.array(
        [
            0.9,
            0.04,
            0.03,
            0.03,
            0.3,
            0.45,
            0.15,
            0.13,
            0.04,
            0.01,
            0.94,
            0.05,
            0.12,
            0.21,
            0.5,
            0.17,
        ]
    ).reshape(4, 4)
    loss = ops.categorical_crossentropy(a, b)
    np.testing.assert_allclose(
        np.around(ops.convert_to_numpy(loss), 5), [0.10536, 0.82807, 0.1011, 1.77196]
    )
    sparse = ops.sparse_categorical_crossentropy(np.array([0, 1, 2, 3]), b)
    np.testing.assert_allclose(sparse, loss, rtol=1e-6)
    p, y = np.array([0.9, 0.2]), np.array([1.0, 0.0])
    np.testing.assert_allclose(ops.binary_crossentropy(y, p), -np.log([0.9, 0.8]), rtol=1e-6)


# -- keras.backend, keras.config, keras.random, keras.regularizers ------------------------


def test_backend_values_and_settings() -> None:
    from batchfit import backend as K

    assert (K.floatx(), K.epsilon(), K.image_data_format(), K.backend()) == (
        "float32",
        1e-7,
        "channels_last",
        "torch",
    )
    w = torch.zeros(2, 2)
    K.set_value(w, np.ones((2, 2)))
    np.testing.assert_array_equal(K.get_value(w), np.ones((2, 2)))
    assert K.get_value(0.5) == 0.5
    with pytest.raises(TypeError, match="learning_rate = value"):
        K.set_value(0.5, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels-last"):
        keras.config.set_image_data_format("channels_first")
    assert K.is_keras_tensor(keras.Input(shape=(2,))) and not K.is_keras_tensor(w)
    assert K.int_shape(keras.Input(shape=(2, 3))) == (None, 2, 3)


def test_clear_session_restarts_layer_names() -> None:
    from batchfit import backend as K

    K.clear_session()
    first = keras.layers.Dense(1).name
    keras.layers.Dense(1)
    K.clear_session()
    assert first == "dense" and keras.layers.Dense(1).name == "dense"


def test_random_is_seeded_and_in_range() -> None:
    r = keras.random
    torch.testing.assert_close(r.normal((3, 2), seed=7), r.normal((3, 2), seed=7))
    u = r.uniform((1000,), minval=2.0, maxval=3.0, seed=1)
    assert float(u.min()) >= 2.0 and float(u.max()) < 3.0
    gen = r.SeedGenerator(5)
    assert not torch.equal(r.normal((4,), seed=gen), r.normal((4,), seed=gen))  # a stream
    ints = r.randint((100,), 0, 3, seed=2)
    assert ints.dtype == torch.int32 and set(ints.tolist()) == {0, 1, 2}
    assert sorted(r.shuffle(np.arange(10), seed=3).tolist()) == list(range(10))
    assert float(r.truncated_normal((1000,), stddev=1.0, seed=4).abs().max()) <= 2.0
    kept = r.dropout(torch.ones(100_000), 0.25, seed=5)
    assert set(kept.unique().tolist()) <= {0.0, float(np.float32(1 / 0.75))}
    assert 0.74 < float((kept > 0).float().mean()) < 0.76  # 7 standard deviations


def test_regularizers_are_keras_penalties() -> None:
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    n = w.numpy()
    assert float(keras.regularizers.L2()(w)) == pytest.approx(0.01 * (n**2).sum())
    assert float(keras.regularizers.L1(0.1)(w)) == pytest.approx(0.1 * np.abs(n).sum())
    both = keras.regularizers.get({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}})
    assert float(both(w)) == pytest.approx(0.1 * np.abs(n).sum() + 0.2 * (n**2).sum())
    assert isinstance(keras.regularizers.get("l2"), keras.regularizers.L2)


# -- keras.datasets (offline) ---------------------------------------------------------------


def test_datasets_read_keras_cache_or_say_where_the_file_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"put the file at {tmp_path}/datasets/mnist.npz"):
        keras.datasets.mnist.load_data()
    (tmp_path / "datasets").mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 255, (5, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
        "x_test": rng.integers(0, 255, (2, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 2, dtype=np.uint8),
    }
    np.savez(tmp_path / "datasets" / "mnist.npz", **arrays)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    for got, key in zip((x_train, y_train, x_test, y_test), arrays):
        np.testing.assert_array_equal(got, arrays[key])
    # fashion-mnist: gzip'ed IDX files (8-byte label header, 16-byte image header)
    folder = tmp_path / "datasets" / "fashion-mnist"
    folder.mkdir()
    for split, key in (("train", "train"), ("t10k", "test")):
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\0" * 8 + arrays[f"y_{key}"].tobytes())
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\0" * 16 + arrays[f"x_{key}"].tobytes())
    (fx, fy), (tx, ty) = keras.datasets.fashion_mnist.load_data()
    for got, key in zip((fx, fy, tx, ty), arrays):
        np.testing.assert_array_equal(got, arrays[key])
    with pytest.raises(NotImplementedError, match="pickles"):
        keras.datasets.cifar10.load_data()


def test_boston_housing_split_is_keras_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    np.savez(tmp_path / "datasets" / "boston_housing.npz", x=x, y=y)
    (x_train, y_train), (x_test, y_test) = keras.datasets.boston_housing.load_data()
    order = np.arange(10)
    np.random.RandomState(113).shuffle(order)  # Keras' documented seed=113, test_split=0.2
    for got, want in zip(
        (x_train, y_train, x_test, y_test), (x[order[:8]], y[order[:8]], x[order[8:]], y[order[8:]])
    ):
        np.testing.assert_array_equal(got, want)


# -- image helpers and get_file ---------------------------------------------------------------


def test_image_round_trip_is_lossless_in_png(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (6, 5, 3)).astype(np.float32)
    path = tmp_path / "x.png"
    keras.utils.save_img(path, pixels, scale=False)
    img = keras.utils.load_img(path)
    assert img.size == (5, 6)  # PIL: (width, height)
    back = keras.utils.img_to_array(img)
    assert back.dtype == np.float32 and back.shape == (6, 5, 3)
    np.testing.assert_array_equal(back, pixels)
    gray = keras.utils.img_to_array(keras.utils.load_img(path, color_mode="grayscale"))
    assert gray.shape == (6, 5, 1)


def test_load_img_resizes_as_pil_does(tmp_path: Path) -> None:
    from PIL import Image

    pixels = np.random.default_rng(2).integers(0, 256, (8, 10, 3)).astype(np.uint8)
    path = tmp_path / "y.png"
    Image.fromarray(pixels).save(path)
    got = keras.utils.img_to_array(
        keras.utils.load_img(path, target_size=(4, 5), interpolation="bilinear")
    )
    want = np.asarray(Image.fromarray(pixels).resize((5, 4), Image.Resampling.BILINEAR), np.float32)
    np.testing.assert_array_equal(got, want)


def test_array_to_img_scales_to_the_full_range() -> None:
    x = np.array([[[-1.0], [0.0]], [[1.0], [3.0]]])
    img = keras.utils.array_to_img(x)
    assert img.mode == "L"
    expected = ((x - x.min()) / (x.max() - x.min()) * 255).astype(np.uint8)[:, :, 0]
    np.testing.assert_array_equal(np.asarray(img), expected)
    with pytest.raises(ValueError, match="channels"):
        keras.utils.array_to_img(np.zeros((2, 2, 2)))


def test_get_file_finds_the_cache_or_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    origin = "https://example.org/data/table.csv"
    with pytest.raises(
        FileNotFoundError, match=f"put table.csv at {tmp_path}/datasets/table.csv.*{origin}"
    ):
        keras.utils.get_file(origin=origin)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "table.csv").write_text("a\n1\n")
    assert keras.utils.get_file("table.csv", origin) == str(tmp_path / "datasets" / "table.csv")
