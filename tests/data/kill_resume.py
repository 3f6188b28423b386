"""One kill -9 and resume of a training script, checked against an uninterrupted run.

The script takes `OUT DATA`, prints a line starting with "batch" per batch,
backs up into `OUT/backup` and writes `OUT/final.npz` (the weights) at the end;
`training_script` writes one around the lines that make its source.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["check_kill_resume", "training_script"]

_TRAINING = """
import sys
from pathlib import Path

import numpy as np
import torch

import batchfit as bf
from batchfit.callbacks import BackupAndRestore, LambdaCallback
from batchfit.layers import Dense, Dropout
from batchfit.models import Sequential

out, data = Path(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
{source}
model = Sequential([Dense(16, activation="relu"), Dropout(0.3), Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", accumulate_steps=2)
announce = LambdaCallback(on_train_batch_end=lambda b, logs: print(f"batch {{b}}", flush=True))
history = model.fit(train, epochs=3, verbose=0,
                    callbacks=[BackupAndRestore(out / "backup", save_freq=3), announce])
np.savez(out / "final.npz", *model.get_weights(), loss=np.array(history.history["loss"]))
"""


def training_script(source: str) -> str:
    """A script training 3 epochs (dropout, accumulation, backups) on `train`.

    `source` is the code that makes `train` from `data` (the DATA argument).
    """
    return _TRAINING.format(source=source.strip())


def check_kill_resume(script_text: str, data: Path, tmp_path: Path, kill_after: int) -> None:
    """Kill the script after `kill_after` batches, rerun it, and compare with a whole run."""
    script = tmp_path / "run.py"
    script.write_text(script_text)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(out: Path) -> subprocess.Popen[str]:
        out.mkdir(exist_ok=True)
        return subprocess.Popen(
            [sys.executable, str(script), str(out), str(data)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    ref = run(tmp_path / "ref")
    ref.communicate(timeout=300)
    assert ref.returncode == 0
    proc = run(tmp_path / "run")
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("batch")
        if seen == kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "final.npz").exists()
    assert (tmp_path / "run" / "backup").exists()
    again = run(tmp_path / "run")
    printed, _ = again.communicate(timeout=300)
    assert again.returncode == 0
    assert 0 < printed.count("batch") < 51  # it resumed from the backup, not from the start
    want, got = np.load(tmp_path / "ref" / "final.npz"), np.load(tmp_path / "run" / "final.npz")
    for key in want.files:
        np.testing.assert_array_equal(want[key], got[key])
