"""Exact resume: a run stopped anywhere (even by SIGKILL) ends bit-identical to one never stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from batchfit._engine import checkpoint as state_module
from batchfit.callbacks import BackupAndRestore, Callback, CSVLogger, EarlyStopping
from batchfit.layers import Dense, Dropout
from batchfit.models import Sequential

SCRIPT = Path(__file__).with_name("resume_script.py")


class _Crash(Exception):
    pass


class CrashAt(Callback):
    """Raises after a given number of training batches, like a crash would."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.seen = after, 0

    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == self.after:
            raise _Crash


def _data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, :1] - x[:, 1:2] > 0).astype(np.float32)
    return x, y


def _run(tmp: Path, crash_after: int | None, accumulate: int = 1, save_freq=4):
    """One fit; returns (weights, history, csv text). Models differ in init on purpose."""
    torch.manual_seed(0 if crash_after is None else 99)
    x, y = _data()
    model = Sequential([Dense(8, activation="relu"), Dropout(0.25), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"], accumulate_steps=accumulate)
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True),
        CSVLogger(tmp / "log.csv"),
        BackupAndRestore(tmp / "backup", save_freq=save_freq),
    ]
    if crash_after is not None:
        callbacks.append(CrashAt(crash_after))
    torch.manual_seed(0)  # what the shuffle seed and dropout draw from
    history = model.fit(
        x, y, batch_size=16, epochs=3, validation_split=0.2, callbacks=callbacks, verbose=0
    )
    return model.get_weights(), history.history, (tmp / "log.csv").read_text()


@pytest.mark.parametrize("crash_after", [1, 5, 10, 11, 17, 29])
@pytest.mark.parametrize("accumulate", [1, 2])
def test_resume_after_a_crash_is_bit_identical(tmp_path, crash_after, accumulate):
    ref_w, ref_h, ref_csv = _run(tmp_path / "ref", None, accumulate)
    run = tmp_path / "crash"
    with pytest.raises(_Crash):
        _run(run, crash_after, accumulate)
    assert (run / "backup" / "backup.safetensors").exists() or crash_after < 4
    got_w, got_h, got_csv = _run(run, None, accumulate)  # same command again
    for a, b in zip(ref_w, got_w):
        np.testing.assert_array_equal(a, b)
    assert got_h == ref_h
    assert got_csv == ref_csv
    assert not (run / "backup").exists()  # deleted after a finished run


def test_a_crash_inside_a_save_keeps_the_previous_backup(tmp_path, monkeypatch):
    ref_w, _, _ = _run(tmp_path / "ref", None)
    run = tmp_path / "crash"
    from batchfit import _io

    real_write, real_atomic = _io._write_all, state_module.atomic_write
    calls = {"n": 0}

    def half_then_crash(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise _Crash

    def failing_atomic(path, data, keep_previous=False):
        calls["n"] += 1
        if calls["n"] == 3:  # the third backup dies half-written
            monkeypatch.setattr(_io, "_write_all", half_then_crash)
        return real_atomic(path, data, keep_previous)

    monkeypatch.setattr(state_module, "atomic_write", failing_atomic)
    with pytest.raises(_Crash):
        _run(run, None)
    monkeypatch.setattr(state_module, "atomic_write", real_atomic)
    monkeypatch.setattr(_io, "_write_all", real_write)
    backup = run / "backup"
    assert sorted(p.name for p in backup.iterdir()) == [
        "backup.safetensors",
        "backup.safetensors.prev",
    ]
    saved = state_module.read_state(backup / "backup.safetensors")
    assert (saved["epoch"], saved["batches_done"]) == (0, 8)
    got_w, _, _ = _run(run, None)
    for a, b in zip(ref_w, got_w):
        np.testing.assert_array_equal(a, b)


def test_a_truncated_backup_falls_back_to_the_previous_one(tmp_path):
    ref_w, _, _ = _run(tmp_path / "ref", None)
    run = tmp_path / "crash"
    with pytest.raises(_Crash):
        _run(run, 9)
    newest = run / "backup" / "backup.safetensors"
    assert newest.with_name("backup.safetensors.prev").exists()
    newest.write_bytes(newest.read_bytes()[:100])
    got_w, _, _ = _run(run, None)
    for a, b in zip(ref_w, got_w):
        np.testing.assert_array_equal(a, b)


def test_damaged_backups_are_refused_with_the_file_named(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "backup.safetensors").write_bytes(b"\x00" * 64)
    x, y = _data()
    model = Sequential([Dense(1, input_dim=5)])
    model.compile("sgd", "mse")
    with pytest.raises(
        ValueError,
        match=r"no usable backup: .*backup.safetensors is not a readable batchfit backup",
    ):
        model.fit(x, y, callbacks=[BackupAndRestore(backup)], verbose=0)
    assert model.optimizer.iterations == 0  # nothing trained on garbage
    # a valid safetensors file that is not a backup
    model.save_weights(str(backup / "backup.safetensors"))
    with pytest.raises(ValueError, match="is a safetensors file but not a batchfit backup"):
        model.fit(x, y, callbacks=[BackupAndRestore(backup)], verbose=0)


def test_resume_from_argument(tmp_path):
    ref_w, _, _ = _run(tmp_path / "ref", None)
    run = tmp_path / "crash"
    with pytest.raises(_Crash):
        _run(run, 13)
    torch.manual_seed(7)
    x, y = _data()
    model = Sequential([Dense(8, activation="relu"), Dropout(0.25), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=3,
        validation_split=0.2,
        verbose=0,
        callbacks=[
            EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True),
            CSVLogger(run / "log2.csv"),
        ],
        resume_from=str(run / "backup"),
    )
    for a, b in zip(ref_w, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def _kill_and_resume(tmp_path: Path, kind: str, kill_after: int, extra: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = tmp_path / "ref"
    ref.mkdir()
    subprocess.run(
        [sys.executable, str(SCRIPT), str(ref), kind, *extra],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(run), kind, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("batch"):
            seen += 1
            if seen == kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "final.npz").exists()
    subprocess.run(
        [sys.executable, str(SCRIPT), str(run), kind, *extra],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    want, got = np.load(ref / "final.npz"), np.load(run / "final.npz")
    assert sorted(want.files) == sorted(got.files)
    for key in want.files:
        np.testing.assert_array_equal(want[key], got[key])


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [7, 31])
def test_sigkill_resume_in_memory_arrays(tmp_path, kill_after):
    _kill_and_resume(tmp_path, "arrays", kill_after, [])


@pytest.mark.slow
def test_sigkill_resume_shuffled_csv_stream(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for part in range(3):
        x = rng.normal(size=(100, 6))
        label = (x[:, :2].sum(axis=1) > 0).astype(int)
        rows = ["f0,f1,f2,f3,f4,f5,label"]
        rows += [",".join(f"{v:.6f}" for v in r) + f",{lab}" for r, lab in zip(x, label)]
        (data / f"part-{part}.csv").write_text("\n".join(rows) + "\n")
    _kill_and_resume(tmp_path, "csv", 23, [str(data)])


@pytest.mark.slow
def test_sigkill_resume_augmented_image_flow(tmp_path):
    _kill_and_resume(tmp_path, "images", 19, [])


def _run_steps(tmp: Path, crash_after: int | None):
    """fit with steps_per_epoch shorter than the data: epochs continue the stream."""
    import batchfit as bf

    torch.manual_seed(0)  # weights are made at the first batch, from this seed
    x, y = _data()
    model = Sequential([Dense(8, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    callbacks = [BackupAndRestore(tmp / "backup", save_freq=3)]
    if crash_after is not None:
        callbacks.append(CrashAt(crash_after))
    source = bf.data.arrays(x, y, batch_size=16, shuffle=True, seed=11)  # 13 batches an epoch
    model.fit(source, epochs=4, steps_per_epoch=7, callbacks=callbacks, verbose=0)
    return model.get_weights()


@pytest.mark.filterwarnings("ignore:Your input ran out of data")  # epochs of 7, 6, 7, 6
@pytest.mark.parametrize("crash_after", [4, 13, 20])
def test_resume_with_steps_per_epoch_continuing_the_stream(tmp_path, crash_after):
    ref = _run_steps(tmp_path / "ref", None)
    with pytest.raises(_Crash):
        _run_steps(tmp_path / "run", crash_after)
    got = _run_steps(tmp_path / "run", None)
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)
