"""Bad input gets one clear error naming what was expected, what came, and where."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batchfit import losses
from batchfit.layers import Dense
from batchfit.models import Sequential


@pytest.mark.parametrize("bad", [-100, -1, 3, 7])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_labels_out_of_range_are_named(bad, from_logits, weighted):
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    y_pred = torch.softmax(torch.randn(4, 3), -1)
    labels = torch.tensor([0, 1, bad, 2])
    sample_weight = torch.ones(4) if weighted else None
    with pytest.raises(ValueError, match=rf"class ids in \[0, 3\).*got {bad} \(1 of 4"):
        loss(labels, y_pred, sample_weight)


def test_sparse_labels_in_range_give_the_numpy_cross_entropy():
    y_pred = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), -1)
    labels = torch.tensor([0, 3, 1, 2, 3])
    want = -np.mean(np.log(y_pred.numpy()[np.arange(5), labels.numpy()]))
    got = losses.SparseCategoricalCrossentropy()(labels, y_pred)
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_fit_names_the_batch_with_the_bad_label():
    x = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, -100, 2, 0, 1])
    model = Sequential([Dense(3, activation="softmax", input_dim=2)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"got -100 .*\(epoch 1, batch 3\)"):
        model.fit(x, y, batch_size=4, shuffle=False, verbose=0)
    # the first two batches trained; the bad one changed nothing after them
    again = Sequential([Dense(3, activation="softmax", input_dim=2)])
    again.compile("sgd", "sparse_categorical_crossentropy")
    again.set_weights(before)
    again.fit(x[:8], y[:8], batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), again.get_weights()):
        assert np.array_equal(a, b)


# -- writes into run and backup folders (NOTE [ Safe writes ] in batchfit/_io.py) ---------
def _small_fit(tmp_path, callbacks, epochs=2):
    from batchfit.optimizers import SGD

    x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
    model = Sequential([Dense(1, input_dim=2)])
    model.compile(SGD(0.1), "mse")
    return model.fit(x, x[:, :1], batch_size=4, epochs=epochs, verbose=0, callbacks=callbacks)


def test_a_backup_never_writes_through_a_planted_symlink(tmp_path):
    from batchfit.callbacks import BackupAndRestore

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "backup.safetensors").symlink_to(victim)
    with pytest.raises(OSError, match="refusing to write through a symlink"):
        _small_fit(tmp_path, [BackupAndRestore(backup, save_freq=1, delete_checkpoint=False)])
    assert victim.read_text() == "precious"


def test_csv_logger_never_writes_through_a_planted_symlink(tmp_path):
    from batchfit.callbacks import CSVLogger

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "history.csv").symlink_to(victim)
    for append in (False, True):
        with pytest.raises(OSError, match="symlink|Too many levels"):
            _small_fit(tmp_path, [CSVLogger(tmp_path / "history.csv", append=append)])
        assert victim.read_text() == "precious"


def test_orphaned_temp_files_of_a_killed_save_are_removed_on_the_next_run(tmp_path):
    from batchfit.callbacks import BackupAndRestore

    backup = tmp_path / "backup"
    backup.mkdir()
    orphans = [
        backup / ".backup.safetensors.k1l3d.tmp",
        backup / ".backup.safetensors.x9.tmp",
        backup / ".tmpA1b2C3",  # safetensors' own temporary name
    ]
    for orphan in orphans:
        orphan.write_bytes(b"half a backup")
    other = backup / "notes.txt"  # not ours: left alone
    other.write_text("keep")
    _small_fit(tmp_path, [BackupAndRestore(backup, save_freq=1, delete_checkpoint=False)])
    assert not any(o.exists() for o in orphans)
    assert other.read_text() == "keep"
    assert sorted(p.name for p in backup.iterdir() if p.name.endswith(".tmp")) == []


def test_a_full_disk_during_a_backup_names_the_file_and_keeps_the_previous_one(
    tmp_path, monkeypatch
):
    import errno

    from batchfit import _io
    from batchfit._engine.checkpoint import read_state
    from batchfit.callbacks import BackupAndRestore

    backup = tmp_path / "backup"
    real = _io._write_all
    calls = {"n": 0}

    def disk_fills_up(fd, data):
        calls["n"] += 1
        if calls["n"] == 3:
            real(fd, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(_io, "_write_all", disk_fills_up)
    with pytest.raises(OSError, match=r"could not write .*backup\.safetensors: No space left"):
        _small_fit(tmp_path, [BackupAndRestore(backup, save_freq=1, delete_checkpoint=False)])
    assert read_state(backup / "backup.safetensors")["batches_done"] == 2
    assert not [p for p in backup.iterdir() if p.name.endswith(".tmp")]


# -- resuming after the data changed (NOTE [ Data fingerprints ] in data/_fingerprint.py) --
class _Stop(Exception):
    pass


def _crash_after(batches):
    from batchfit.callbacks import LambdaCallback

    def stop(batch, logs):
        if batch + 1 == batches:
            raise _Stop

    return LambdaCallback(on_train_batch_end=stop)


def _csv(path, rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2)).round(3)
    lines = ["a,b,t"] + [f"{a},{b},{a - b:.3f}" for a, b in x]
    path.write_text("\n".join(lines) + "\n")


def _fit_csv(path, backup, callbacks=(), check_data=True):
    import batchfit as bf
    from batchfit.callbacks import BackupAndRestore
    from batchfit.optimizers import SGD

    torch.manual_seed(0)
    model = Sequential([Dense(1, input_dim=2)])
    model.compile(SGD(0.05), "mse")
    source = bf.data.csv(str(path), target="t", batch_size=8)
    saver = BackupAndRestore(backup, save_freq=1, check_data=check_data)
    model.fit(source, epochs=2, verbose=0, callbacks=[*callbacks, saver])
    return model.get_weights()


def test_a_resume_after_a_row_was_appended_is_refused_naming_the_file(tmp_path):
    from batchfit._engine.epoch_iterator import ChangedDataError

    data, backup = tmp_path / "houses.csv", tmp_path / "backup"
    _csv(data, 64)
    with pytest.raises(_Stop):
        _fit_csv(data, backup, [_crash_after(3)])
    size = data.stat().st_size
    with data.open("a") as f:
        f.write("0.5,0.25,0.25\n")
    with pytest.raises(ChangedDataError, match=rf"houses\.csv changed size from {size} to"):
        _fit_csv(data, backup)
    # told to go on, it resumes (and finishes)
    weights = _fit_csv(data, backup, check_data=False)
    assert all(np.isfinite(w).all() for w in weights)


def test_a_resume_on_unchanged_data_is_exact_and_a_rewritten_file_is_refused(tmp_path):
    from batchfit._engine.epoch_iterator import ChangedDataError

    data = tmp_path / "d.csv"
    _csv(data, 64)
    reference = _fit_csv(data, tmp_path / "ref")
    with pytest.raises(_Stop):
        _fit_csv(data, tmp_path / "b", [_crash_after(5)])
    resumed = _fit_csv(data, tmp_path / "b")
    for a, b in zip(reference, resumed):
        assert np.array_equal(a, b)
    with pytest.raises(_Stop):
        _fit_csv(data, tmp_path / "c", [_crash_after(5)])
    _csv(data, 64, seed=1)  # rewritten with other rows
    with pytest.raises(ChangedDataError, match=r"d\.csv"):
        _fit_csv(data, tmp_path / "c")


def test_changed_arrays_are_refused_and_generators_cannot_be_checked():
    import batchfit as bf
    from batchfit._engine.epoch_iterator import ChangedDataError, EpochIterator

    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    saved = EpochIterator(bf.data.arrays(x, x[:, :1], batch_size=4), None).state_dict()
    x2 = x.copy()
    x2[7, 1] = -1.0
    changed = EpochIterator(bf.data.arrays(x2, x[:, :1], batch_size=4), None)
    with pytest.raises(ChangedDataError, match="array 0 holds different values"):
        changed.load_state_dict(saved)
    wider = EpochIterator(
        bf.data.arrays(np.zeros((20, 3), np.float32), x[:, :1], batch_size=4), None
    )
    with pytest.raises(ChangedDataError, match=r"array 0 has shape \[20, 3\]"):
        wider.load_state_dict(saved)
    same = EpochIterator(bf.data.arrays(x.copy(), x[:, :1], batch_size=4), None)
    same.load_state_dict(saved)  # equal data: no complaint
    feed = bf.data.generator(lambda: iter([(x[:4], x[:4, :1])]))
    assert feed.fingerprint() is None


# -- sizes read from a file are checked before anything is allocated ----------------------
@pytest.mark.parametrize(
    "spec",
    [
        [[4, 50000, 50000], [4, 1], "float32"],  # 2.5e9 elements per sample
        [[4, 3], [4, 10**12], "float32"],
        [[4, -3], [4, 1], "float32"],
        [[4, 3.5], [4, 1], "float32"],
        [[4] * 20, [4, 1], "float32"],
        [[4, 3], [4, 1], "object"],
        "x",
    ],
)
def test_a_doctored_first_batch_record_is_refused_before_allocating(tmp_path, spec):
    from batchfit._engine.checkpoint import read_state, write_state
    from batchfit.callbacks import BackupAndRestore
    from batchfit.optimizers import SGD

    x = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    model = Sequential([Dense(2), Dense(1)])  # shapes come from the first batch
    model.compile(SGD(0.1), "mse")
    backup = tmp_path / "backup"
    with pytest.raises(_Stop):
        model.fit(
            x,
            x[:, :1],
            batch_size=4,
            verbose=0,
            callbacks=[_crash_after(2), BackupAndRestore(backup, save_freq=1)],
        )
    state = read_state(backup / "backup.safetensors")
    assert state["step"]["first_batch"][0] == [4, 3]
    state["step"]["first_batch"] = spec
    write_state(state, backup / "backup.safetensors", keep_previous=False)
    fresh = Sequential([Dense(2), Dense(1)])
    fresh.compile(SGD(0.1), "mse")
    with pytest.raises(ValueError, match="first-batch|target dtype"):
        fresh.fit(x, x[:, :1], batch_size=4, verbose=0, callbacks=[BackupAndRestore(backup)])


# -- images ----------------------------------------------------------------------------
def _grey16_folder(tmp_path):
    from PIL import Image

    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    (tmp_path / "cls").mkdir()
    Image.fromarray(values).save(tmp_path / "cls" / "a.png")
    return values


@pytest.mark.parametrize("color_mode", ["grayscale", "rgb", "rgba"])
def test_16_bit_greyscale_pngs_are_scaled_not_saturated(tmp_path, color_mode):
    import batchfit as bf

    values = _grey16_folder(tmp_path)
    source = bf.data.images(
        tmp_path, target_size=(8, 8), color_mode=color_mode, class_mode=None, batch_size=1
    )
    (x,) = next(iter(source))
    want = values.astype(np.float32) / 257.0  # 65535 -> 255, the 8-bit range
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[color_mode]
    assert x.shape == (1, 8, 8, channels)
    for c in range(min(channels, 3)):
        np.testing.assert_allclose(x[0, :, :, c], want, rtol=1e-6)
    if channels == 4:
        assert (x[0, :, :, 3] == 255).all()
    assert x.max() > 240  # 63000 / 257; saturation would cap most pixels at 255


def test_a_decompression_bomb_is_named_and_skippable(tmp_path, monkeypatch):
    from PIL import Image

    import batchfit as bf

    (tmp_path / "cls").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "cls" / "bomb.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "cls" / "fine.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40 x 40 is "too large" now
    source = bf.data.images(tmp_path, target_size=(4, 4), class_mode=None, batch_size=2)
    with pytest.raises(ValueError, match=r"bomb\.png.*1600|bomb\.png.*decompression"):
        next(iter(source))
    skipping = bf.data.images(
        tmp_path, target_size=(4, 4), class_mode=None, batch_size=2, on_bad_files="skip"
    )
    (x,) = next(iter(skipping))
    assert x.shape[0] == 1 and [p.endswith("bomb.png") for p in skipping.bad_files] == [True]


# -- errors that name the file ----------------------------------------------------------------
def test_a_truncated_gzip_csv_is_an_error_naming_the_file(tmp_path):
    import gzip

    import batchfit as bf

    rows = "\n".join(f"{i},{i * 0.5}" for i in range(20000))
    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip.compress(("a,t\n" + rows + "\n").encode()))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    # a small file is caught while the source is made (its first block is sampled)
    with pytest.raises(ValueError, match=r"big\.csv\.gz is damaged: .*truncated"):
        bf.data.csv(str(path), target="t", batch_size=256)
    # a larger one while it is read, naming the line it got to
    many = "\n".join([rows] * 40)
    path.write_bytes(gzip.compress(("a,t\n" + many + "\n").encode())[:-20000])
    source = bf.data.csv(str(path), target="t", batch_size=256)
    with pytest.raises(ValueError, match=r"big\.csv\.gz is damaged: .*, after line \d+"):
        for _ in source:
            pass


def test_a_text_column_in_the_second_parquet_file_is_named_before_training(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    import batchfit as bf

    pq.write_table(pa.table({"a": [1.0, 2.0], "t": [0.0, 1.0]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"a": ["x", "y"], "t": [0.0, 1.0]}), tmp_path / "p2.parquet")
    with pytest.raises(TypeError, match=r"column 'a' in .*p2\.parquet has type string"):
        bf.data.parquet(str(tmp_path / "*.parquet"), target="t")
