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
    orphans = [backup / ".backup.safetensors.k1l3d.tmp", backup / ".backup.safetensors.x9.tmp"]
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
