"""The progress line in a real pseudo-terminal: whole (wrapped by the terminal, never cut),
validation metrics included, at 80 columns and in a 0x0 terminal (issue 13)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

CHILD = r"""
import numpy as np
import batchfit as keras
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4)).astype("float32")
y = (x[:, 0] > 0).astype("float32")
model = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=1)
"""


def _run_in_terminal(rows: int, cols: int) -> str:
    main, child_end = pty.openpty()
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "COLUMNS": str(cols) if cols else "", "LINES": str(rows) if rows else ""}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=child_end, stderr=child_end, env=env, close_fds=True
    )
    os.close(child_end)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    os.close(main)
    return b"".join(chunks).decode()


def _screen_lines(raw: str) -> list[str]:
    """What is left on each line once carriage returns redraw it (colours dropped)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", raw).replace("\r\n", "\n")
    return [line.split("\r")[-1].rstrip() for line in text.split("\n") if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("size", [(24, 80), (0, 0)], ids=["80 columns", "0x0"])
def test_terminal_shows_the_whole_line_with_validation(size: tuple[int, int]) -> None:
    lines = _screen_lines(_run_in_terminal(*size))
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2", lines
    for done in (lines[1], lines[3]):
        assert re.match(r"^24/24 ━{20} \d+s \d+(ms|us|s)/step - ", done), done
        for name in ("accuracy", "loss", "val_accuracy", "val_loss"):
            assert re.search(rf" - {name}: \d\.\d{{4}}", done), (name, done)
        assert len(done) > 80  # longer than the terminal: wrapped by it, not cut
