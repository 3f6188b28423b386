"""`batchfit fit` killed with SIGKILL mid-run, then resumed, ends with the uninterrupted model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.cli.conftest import cli_env, run_cli


def fit_args(datadir: Path, out: Path) -> list[str]:
    return [
        "fit", str(datadir / "big.csv"), "--target", "price",
        "--model", "dense:16:relu,dropout:0.2,dense:1", "--metrics", "mae",
        "--epochs", "2", "--batch-size", "16", "--validation-split", "0.1",
        "--shuffle-buffer", "500", "--seed", "7", "--normalize", "--normalize-target",
        "--backup-every", "40", "--out", str(out), "--quiet",
    ]  # fmt: skip


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_uninterrupted_model(datadir: Path, tmp_path: Path) -> None:
    reference = run_cli(*fit_args(datadir, tmp_path / "whole"))
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    backup = out / "backup" / "backup.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchfit", *fit_args(datadir, out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    deadline = time.monotonic() + 120
    while not backup.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # a few more batches, so the kill lands between backups
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "model.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    resumed = run_cli("fit", "--resume", "--out", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stdout

    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    again = load_file(str(out / "model.safetensors"))
    assert whole.keys() == again.keys()
    for key in whole:
        assert (whole[key] == again[key]).all(), key  # bit for bit on CPU
    assert (tmp_path / "whole" / "history.csv").read_text() == (out / "history.csv").read_text()
