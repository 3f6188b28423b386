"""Keras' dataset utilities as batchfit sources: PyDataset, folders, timeseries, split_dataset.

References: NumPy reimplementations of Keras' documented semantics; the
expectations of Keras' own `timeseries_dataset_utils_test.py` (Keras 3.15.1);
real Keras' listing and split of the same generated folders, recorded with
`KERAS_BACKEND=torch /work/keras-venv/bin/python benchmarks/keras_dataset_reference.py`
into `keras_programs/keras_listing_reference.json`; torch's `interpolate`
(half-pixel bilinear, no antialias: what `tf.image.resize` computes) and
torch's `random_split`; a hand `train_on_batch` loop for `fit`.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit.callbacks import BackupAndRestore, Callback
from batchfit.data._pydataset import PyDatasetSource

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE / "data"), str(HERE / "keras_programs")]

from contract import (  # noqa: E402
    assert_batches_equal,
    assert_no_new_threads,
    check_epochs_and_shards,
    check_resumable,
)
from generated_folders import make_image_folder, make_text_folder  # noqa: E402

KERAS_LISTING = json.loads((HERE / "keras_programs" / "keras_listing_reference.json").read_text())


# -- timeseries_dataset_from_array ------------------------------------------------------------
def numpy_windows(data, targets, length, stride, rate, start, end):
    """Keras' documented windows: starts every `stride` steps, `length` steps `rate` apart."""
    start = start or 0
    end = len(data) if end is None else end
    steps = data[start:end]
    x, y = [], []
    i = 0
    while i + (length - 1) * rate < len(steps) and (targets is None or i < len(targets)):
        x.append(steps[i : i + (length - 1) * rate + 1 : rate])
        if targets is not None:
            y.append(targets[start:end][i])
        i += stride
    return np.array(x), (None if targets is None else np.array(y))


@pytest.mark.parametrize(
    "length,stride,rate,start,end,batch",
    [
        (9, 1, 1, None, None, 5),
        (10, 3, 2, None, None, 4),
        (9, 3, 2, 10, 90, 5),
        (4, 5, 3, 7, None, 3),
    ],
)
@pytest.mark.parametrize("with_targets", [True, False])
def test_windows_equal_numpy(length, stride, rate, start, end, batch, with_targets):
    data = np.arange(100) * 10 + np.arange(100)[:, None] * 0  # (100, 1): time on axis 0
    data = data[:, 0].reshape(100, 1).astype(np.float32)
    targets = np.arange(100) * 2 if with_targets else None
    ds = keras.utils.timeseries_dataset_from_array(
        data, targets, length, stride, rate, batch, start_index=start, end_index=end
    )
    batches = list(ds)
    assert all(len(b[0]) == batch for b in batches[:-1]) and len(batches) == len(ds)
    x_ref, y_ref = numpy_windows(data, targets, length, stride, rate, start, end)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x_ref)
    if with_targets:
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y_ref)
    else:
        assert all(len(b) == 1 for b in batches)


def test_windows_match_keras_own_test_expectations():
    # keras/src/utils/timeseries_dataset_utils_test.py (Keras 3.15.1): test_basics,
    # test_sampling_rate, test_sequence_stride, test_timeseries_regression
    data = np.arange(100)
    cases = [
        ({}, 19, (2, 9), lambda i, j: np.arange(i * 5 + j, i * 5 + j + 9)),
        ({"sampling_rate": 2}, 17, (4, 9), lambda i, j: np.arange(i * 5 + j, i * 5 + j + 18, 2)),
        (
            {"sequence_stride": 3},
            7,
            (1, 9),
            lambda i, j: np.arange(i * 15 + j * 3, i * 15 + j * 3 + 9),
        ),
    ]
    for kwargs, count, last_shape, window in cases:
        ds = keras.utils.timeseries_dataset_from_array(
            data, data * 2, sequence_length=9, batch_size=5, **kwargs
        )
        batches = list(ds)
        assert len(batches) == count and batches[-1][0].shape == last_shape
        for i, (x, y) in enumerate(batches):
            np.testing.assert_array_equal(x[:, 0] * 2, y)
            for j in range(len(x)):
                np.testing.assert_array_equal(x[j], window(i, j))
    data = np.arange(10)
    batches = list(keras.utils.timeseries_dataset_from_array(data, data[3:], 3, batch_size=1))
    assert len(batches) == 7
    for i, (x, y) in enumerate(batches):
        np.testing.assert_array_equal(x[0], data[i : i + 3])
        assert y[0] == data[3 + i]


def test_shuffled_windows_are_keras_start_positions():
    # Keras: np.random.RandomState(seed).shuffle(arange(0, num_seqs, stride, dtype="int32"))
    data = np.arange(60)
    ds = keras.utils.timeseries_dataset_from_array(
        data, data * 2, 5, sequence_stride=2, batch_size=4, shuffle=True, seed=123
    )
    starts = np.arange(0, 56, 2, dtype="int32")
    np.random.RandomState(123).shuffle(starts)
    np.testing.assert_array_equal(ds.positions, starts)
    rows = np.concatenate([b[0] for b in ds])
    np.testing.assert_array_equal(np.sort(rows[:, 0]), np.sort(starts))  # every window once
    np.testing.assert_array_equal(rows, rows[:, :1] + np.arange(5))
    first, second = [b[0] for b in ds], (ds.set_epoch(1), [b[0] for b in ds])[1]
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))  # reshuffled per epoch


def test_timeseries_contract_and_unbatched():
    data = np.arange(80, dtype=np.float32).reshape(40, 2)
    make = lambda: keras.utils.timeseries_dataset_from_array(  # noqa: E731
        data, np.arange(40), 4, batch_size=3, shuffle=True, seed=5
    )
    check_resumable(make)
    check_epochs_and_shards(make, lambda bs: np.concatenate([b[1] for b in bs]), np.arange(37))
    single = list(keras.utils.timeseries_dataset_from_array(data, None, 4, batch_size=None))
    assert single[0][0].shape == (4, 2) and len(single) == 37


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"start_index": -1}, "start_index"),
        ({"end_index": 10}, "end_index"),
        ({"sampling_rate": 0}, "sampling_rate"),
        ({"sequence_stride": 0}, "sequence_stride"),
        ({"sequence_length": 20}, "no window"),
    ],
)
def test_timeseries_bad_arguments(kwargs, message):
    args = {"sequence_length": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        keras.utils.timeseries_dataset_from_array(np.arange(10), None, **args)


# -- image_dataset_from_directory --------------------------------------------------------------
@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    return make_image_folder(
        tmp_path_factory.mktemp("imgs") / "images", classes=("Cat", "Dog", "Emu")
    )


def _rel(source, root):
    return [os.path.relpath(p, root) for p in source.file_paths]


def test_image_listing_and_split_equal_keras(image_root, capsys):
    ref = KERAS_LISTING["images_seed1337"]
    train, val = keras.utils.image_dataset_from_directory(
        image_root,
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=(24, 24),
        batch_size=8,
    )
    out = capsys.readouterr().out
    assert "Found 36 files belonging to 3 classes." in out
    assert "Using 29 files for training." in out and "Using 7 files for validation." in out
    assert train.class_names == val.class_names == ref["class_names"]
    assert _rel(train, image_root) == ref["training"]
    assert _rel(val, image_root) == ref["validation"]
    np.testing.assert_array_equal(train.labels, ref["training_labels"])
    # validation is not shuffled: its batches follow the listing, with int32 labels
    labels = np.concatenate([y for _, y in val])
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, ref["validation_labels"])
    # a subset alone is the same as its half of "both"
    alone = keras.utils.image_dataset_from_directory(
        image_root, validation_split=0.2, subset="validation", seed=1337, image_size=(24, 24)
    )
    assert alone.file_paths == val.file_paths
    ref = KERAS_LISTING["images_unshuffled"]
    plain = keras.utils.image_dataset_from_directory(
        image_root, shuffle=False, validation_split=0.25, subset="training", image_size=(24, 24)
    )
    assert _rel(plain, image_root) == ref["training"]


def test_images_are_resized_as_tf_bilinear_and_nearest(image_root):
    from PIL import Image

    ds = keras.utils.image_dataset_from_directory(
        image_root, shuffle=False, image_size=(17, 31), batch_size=4
    )
    near = keras.utils.image_dataset_from_directory(
        image_root, shuffle=False, image_size=(17, 31), batch_size=4, interpolation="nearest"
    )
    (x, y), (xn, _) = next(iter(ds)), next(iter(near))
    assert x.shape == (4, 17, 31, 3) and x.dtype == np.float32
    for i in range(4):
        raw = np.asarray(Image.open(ds.file_paths[i]).convert("RGB"), np.float32)
        t = torch.from_numpy(raw).permute(2, 0, 1)[None]
        bil = torch.nn.functional.interpolate(t, (17, 31), mode="bilinear", align_corners=False)
        nn = torch.nn.functional.interpolate(t, (17, 31), mode="nearest-exact")
        np.testing.assert_allclose(x[i], bil[0].permute(1, 2, 0).numpy(), rtol=0, atol=1e-3)
        np.testing.assert_array_equal(xn[i], nn[0].permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(y, [0, 0, 0, 0])  # unshuffled: Cat's files first


def test_image_label_modes_and_options(image_root):
    common = {"shuffle": False, "image_size": 8, "batch_size": 40}
    ref = np.array(KERAS_LISTING["images_unshuffled"]["all_labels"])
    ((_, cat),) = keras.utils.image_dataset_from_directory(
        image_root, label_mode="categorical", **common
    )
    np.testing.assert_array_equal(cat, np.eye(3, dtype=np.float32)[ref])
    ((x,),) = keras.utils.image_dataset_from_directory(image_root, labels=None, **common)
    assert x.shape == (36, 8, 8, 3)
    ((x, _),) = keras.utils.image_dataset_from_directory(
        image_root, color_mode="grayscale", class_names=["Emu", "Cat"], **common
    )
    assert x.shape == (24, 8, 8, 1)
    two = keras.utils.image_dataset_from_directory(
        image_root, class_names=["Dog", "Cat"], label_mode="binary", **common
    )
    ((_, b),) = two
    assert b.shape == (24, 1) and b.dtype == np.float32 and b[:12].sum() == 0 and b[12:].sum() == 12
    ((x, _),) = keras.utils.image_dataset_from_directory(
        image_root, crop_to_aspect_ratio=True, **common
    )
    assert x.shape == (36, 8, 8, 3)


def test_image_dataset_contract_take_and_map(image_root):
    make = lambda: keras.utils.image_dataset_from_directory(  # noqa: E731
        image_root, seed=3, image_size=(6, 6), batch_size=5
    )
    check_resumable(make)
    ds = make()
    pixel_sums = lambda bs: np.concatenate([b[0].reshape(len(b[0]), -1).sum(1) for b in bs])  # noqa: E731
    check_epochs_and_shards(make, pixel_sums, pixel_sums(list(make())))
    it = iter(ds)
    first = next(it)
    taken = list(ds.take(2))
    assert len(taken) == 2 and len(ds.take(2)) == 2
    # tensors, as tf.data yields: Keras programs call .numpy() and int() on them
    images, labels = taken[0]
    assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
    np.testing.assert_array_equal(images.numpy(), first[0])
    assert int(labels[0]) == first[1][0]
    assert_batches_equal([next(it)], [list(make())[1]])  # take() did not move the position
    doubled = ds.map(lambda x, y: (x * 2, y))
    ((x2, _),) = doubled.take(1)
    np.testing.assert_array_equal(x2.numpy(), first[0] * 2)
    assert ds.prefetch(8) is ds and doubled.class_names == ["Cat", "Dog", "Emu"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"validation_split": 0.2, "subset": "training"}, "seed"),
        ({"validation_split": 0.2}, "subset"),
        ({"label_mode": "binary"}, "2 classes"),
        ({"label_mode": "sparse"}, "label_mode"),
        ({"class_names": ["Cat", "Wolf"]}, "Wolf"),
        ({"interpolation": "cubic"}, "interpolation"),
    ],
)
def test_image_dataset_bad_arguments(image_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        keras.utils.image_dataset_from_directory(image_root, **kwargs)


def test_image_folder_without_images_names_the_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("no image")
    with pytest.raises(ValueError, match=r"found no image files .*" + str(tmp_path.name)):
        keras.utils.image_dataset_from_directory(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        keras.utils.image_dataset_from_directory(tmp_path / "missing")
    (tmp_path / "a" / "bad.png").write_bytes(b"not a png")
    ds = keras.utils.image_dataset_from_directory(tmp_path, image_size=4)
    with pytest.raises(ValueError, match="bad.png"):
        list(ds)


def test_text_listing_split_and_contents(tmp_path):
    root = make_text_folder(tmp_path / "texts")
    ref = KERAS_LISTING["texts_seed7"]
    train, val = keras.utils.text_dataset_from_directory(
        root, validation_split=0.3, subset="both", seed=7, batch_size=4, max_length=9
    )
    assert _rel(train, root) == ref["training"] and _rel(val, root) == ref["validation"]
    assert train.class_names == ["neg", "pos"]
    texts, labels = next(iter(val))
    for text, label, path in zip(texts, labels, val.file_paths[:4], strict=True):
        assert text == Path(path).read_bytes()[:9].decode()
        assert label == ("pos" in path)


# -- split_dataset ------------------------------------------------------------------------------
def test_split_dataset_picks_torch_random_split_rows():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25)
    left, right = keras.utils.split_dataset((x, y), left_size=0.6, shuffle=True, seed=4)
    want_left, want_right = torch.utils.data.random_split(
        range(25), [15, 10], generator=torch.Generator().manual_seed(4)
    )
    np.testing.assert_array_equal(np.concatenate([b[1] for b in left]), list(want_left))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in right]), list(want_right))
    a, b = keras.utils.split_dataset(x, left_size=5, right_size=7)
    np.testing.assert_array_equal(np.concatenate([t[0] for t in a.batch(2)]), x[:5])
    np.testing.assert_array_equal(np.concatenate([t[0] for t in b]), x[5:12])
    series = keras.utils.timeseries_dataset_from_array(
        np.arange(30), np.arange(30), 3, batch_size=4
    )
    head, tail = keras.utils.split_dataset(series, right_size=0.25)
    assert head.n == 21 and tail.n == 7
    np.testing.assert_array_equal(np.concatenate([t[1] for t in tail]), np.arange(21, 28))
    with pytest.raises(ValueError, match="left_size=30"):
        keras.utils.split_dataset(x, left_size=30)
    with pytest.raises(ValueError, match="left_size or right_size"):
        keras.utils.split_dataset(x)


# -- PyDataset --------------------------------------------------------------------------------
class Batches(keras.utils.PyDataset):
    """Keras' docstring pattern: slices of arrays by index, counting epoch ends."""

    def __init__(self, x, y, batch_size, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.w, self.batch_size = x, y, weights, batch_size
        self.epoch_ends = 0
        self.fetched: list[int] = []

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, idx):
        self.fetched.append(idx)
        part = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
        if self.w is None:
            return self.x[part], self.y[part]
        return self.x[part], self.y[part], self.w[part]

    def on_epoch_end(self):
        self.epoch_ends += 1


def _xy(n=90, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5, 0.0], np.float32))[:, None]


def _model(seed=0):
    torch.manual_seed(seed)
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


@pytest.mark.parametrize("shuffle", [False, True])
def test_pydataset_fit_equals_train_on_batch_loop(shuffle):
    x, y = _xy()
    w = np.linspace(0.5, 1.5, len(x)).astype(np.float32)
    data = Batches(x, y, 16, weights=w)
    val = Batches(x[:20], y[:20], 8)
    model = _model()
    torch.manual_seed(7)  # the batch order's seed comes from torch's generator
    history = model.fit(data, epochs=3, shuffle=shuffle, validation_data=val, verbose=0)
    assert data.epoch_ends == 3 and val.epoch_ends == 3  # Keras calls it for validation too

    torch.manual_seed(7)
    order_seed = PyDatasetSource(Batches(x, y, 16), shuffle=shuffle).seed
    hand = _model()
    reference = Batches(x, y, 16, weights=w)
    losses = []
    for epoch in range(3):
        indices = np.random.default_rng((order_seed, epoch)).permutation(6) if shuffle else range(6)
        assert not shuffle or list(indices) != list(range(6)) or epoch > 0
        for i in indices:
            hand.train_on_batch(*reference[int(i)])
        losses.append(hand.evaluate(x[:20], y[:20], batch_size=8, verbose=0))
    for a, b in zip(model.get_weights(), hand.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(history.history["val_loss"], losses, rtol=1e-6)
    if shuffle:
        assert data.fetched[:6] != list(range(6))


def test_pydataset_evaluate_predict_and_workers_give_the_same_batches():
    x, y = _xy(70)
    model = _model()
    plain, threaded = Batches(x, y, 8), Batches(x, y, 8, workers=3, max_queue_size=4)
    assert threaded.workers == 3 and threaded.max_queue_size == 4
    assert threaded.use_multiprocessing is False
    before = set(threading.enumerate())
    assert model.evaluate(plain, verbose=0) == model.evaluate(threaded, verbose=0)
    np.testing.assert_array_equal(
        model.predict(plain, verbose=0), model.predict(threaded, verbose=0)
    )
    np.testing.assert_array_equal(model.predict(plain, verbose=0), model.predict(x, verbose=0))
    assert_no_new_threads(before)
    source = PyDatasetSource(
        Batches(x, y, 8, use_multiprocessing=True, workers=2), shuffle=True, seed=1
    )
    check_resumable(lambda: PyDatasetSource(Batches(x, y, 8, workers=2), shuffle=True, seed=1))
    check_epochs_and_shards(
        lambda: PyDatasetSource(Batches(x, y, 8), shuffle=True, seed=1),
        lambda bs: np.concatenate([b[0][:, 0] for b in bs]),
        x[:, 0],
    )
    assert len(list(source)) == 9


class Endless(keras.utils.PyDataset):
    def __init__(self):
        super().__init__()

    @property
    def num_batches(self):
        return None

    def __getitem__(self, idx):
        x = np.full((4, 4), idx % 5, np.float32)
        return x, x.sum(1, keepdims=True)


def test_endless_pydataset_with_steps_per_epoch():
    model = _model()
    with pytest.warns(UserWarning, match="infinite PyDataset"):
        history = model.fit(Endless(), epochs=2, steps_per_epoch=3, verbose=0)
    assert len(history.history["loss"]) == 2
    hand = _model()
    for i in range(6):
        hand.train_on_batch(*Endless()[i])
    for a, b in zip(model.get_weights(), hand.get_weights()):
        np.testing.assert_array_equal(a, b)


class Wrong(keras.utils.PyDataset):
    def __init__(self, bad):
        super().__init__()
        self.bad = bad

    def __len__(self):
        return 3

    def __getitem__(self, idx):
        x = np.zeros((2, 4), np.float32)
        return (x, x[:, :1]) if idx < 2 else self.bad


@pytest.mark.parametrize("bad,got", [("text", "str"), ((1, 2, 3, 4), "a tuple of 4 parts")])
def test_pydataset_wrong_structure_names_the_batch(bad, got):
    with pytest.raises(
        ValueError, match=rf"Wrong.__getitem__\(2\) returned {got}; expected a tuple"
    ):
        _model().fit(Wrong(bad), shuffle=False, verbose=0)
    with pytest.raises(ValueError, match="y must be None when x is a PyDataset"):
        _model().fit(Wrong(bad), np.zeros(3), verbose=0)


def test_pydataset_without_super_init_warns_and_works():
    class NoSuper(keras.utils.Sequence):  # Keras 2's name
        def __init__(self):
            self.size = 2

        def __len__(self):
            return 2

        def __getitem__(self, idx):
            return np.ones((3, 4), np.float32), np.ones((3, 1), np.float32)

    with pytest.warns(UserWarning, match="super"):
        _model().fit(NoSuper(), verbose=0)
    assert keras.utils.Sequence is keras.utils.PyDataset


class _Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, after):
        super().__init__()
        self.after, self.seen = after, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after:
            raise _Crash


def _resumable_run(tmp: Path, crash_after: int | None):
    x, y = _xy(100, seed=3)
    model = _model()
    callbacks = [BackupAndRestore(tmp / "backup", save_freq=3)]
    if crash_after is not None:
        callbacks.append(CrashAt(crash_after))
    torch.manual_seed(0)
    history = model.fit(Batches(x, y, 16), epochs=3, shuffle=True, callbacks=callbacks, verbose=0)
    return model.get_weights(), history.history


@pytest.mark.parametrize("crash_after", [4, 7, 11])
def test_pydataset_resume_mid_epoch_equals_uninterrupted(tmp_path, crash_after):
    ref_w, ref_h = _resumable_run(tmp_path / "ref", None)
    with pytest.raises(_Crash):
        _resumable_run(tmp_path / "run", crash_after)
    got_w, got_h = _resumable_run(tmp_path / "run", None)
    for a, b in zip(ref_w, got_w):
        np.testing.assert_array_equal(a, b)
    assert got_h == ref_h


def test_keras_preprocessing_names_are_the_same_functions():
    # Keras 3 exports its dataset utilities under keras.preprocessing too
    for name in ("timeseries_dataset_from_array", "image_dataset_from_directory"):
        assert getattr(keras.preprocessing, name) is getattr(keras.utils, name)


def test_unseeded_listing_is_sorted_so_ranks_agree(image_root):
    # without a seed each rank would draw its own listing shuffle: the listing stays in
    # Keras' unshuffled order and only the epochs (seed shared by shard_for_ranks) shuffle
    ds = keras.utils.image_dataset_from_directory(image_root, image_size=4)
    assert _rel(ds, image_root) == KERAS_LISTING["images_unshuffled"]["all"]
    assert ds.shuffle
    series = keras.utils.timeseries_dataset_from_array(np.arange(20), None, 3, shuffle=True)
    np.testing.assert_array_equal(series.positions, np.arange(18))


def test_verbose_false_prints_no_count(image_root, capsys):
    keras.utils.image_dataset_from_directory(image_root, image_size=4, verbose=False)
    assert capsys.readouterr().out == ""
    left, _ = keras.utils.split_dataset(np.arange(10.0), left_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        left.batch(0)
