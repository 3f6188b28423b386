"""The command against a planted symlink and a doctored run.json: clear errors, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import run_cli, write_csv

pytestmark = pytest.mark.slow


def _fit(data: Path, out: Path, *extra: str):
    return run_cli(
        "fit", str(data), "--target", "price", "--epochs", "2", "--batch-size", "64",
        "--out", str(out), *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    data = write_csv(root / "houses.csv", 300, 1)
    done = _fit(data, root / "run")
    assert done.returncode == 0, done.stderr
    return data, root / "run"


def test_a_resume_does_not_write_through_a_planted_history_symlink(tmp_path):
    data = write_csv(tmp_path / "houses.csv", 300, 1)
    out = tmp_path / "run"
    # a run stopped after its first epoch's backup, as a kill would leave it
    first = _fit(data, out, "--backup-every", "1")
    assert first.returncode == 0, first.stderr
    run = json.loads((out / "run.json").read_text())
    run["status"] = "running"
    (out / "run.json").write_text(json.dumps(run))
    (out / "backup").mkdir(exist_ok=True)
    (out / "backup" / "backup.safetensors").write_bytes(b"")  # "a backup exists"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "history.csv").unlink()
    (out / "history.csv").symlink_to(victim)
    again = _fit(data, out, "--resume")
    assert again.returncode != 0
    assert victim.read_text() == "precious\n"
    assert "symlink" in again.stderr or "backup" in again.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(features="size"), r"'features' must be a list of column names"),
        (lambda r: r.pop("target"), r"the key 'target' is missing"),
        (lambda r: r.update(settings=[1, 2]), r"'settings' must be a table of settings"),
        (lambda r: r.update(world_size="two"), r"'world_size' must be a count"),
    ],
)
def test_a_doctored_run_json_is_one_error_naming_the_file_and_key(
    finished, tmp_path, change, message
):
    data, run_dir = finished
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("model.safetensors", "run.json"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    run = json.loads((copy / "run.json").read_text())
    change(run)
    (copy / "run.json").write_text(json.dumps(run))
    done = run_cli("evaluate", str(copy), str(data))
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert "run.json" in lines[0]
    import re

    assert re.search(message, lines[0]), lines[0]
