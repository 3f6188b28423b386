"""`batchfit fit`, `evaluate` and `predict` under torchrun (2 gloo processes on the CPU).

Checked against one process: the same files in the run directory, the
weights of the same training done in one process, and the same evaluation
and predictions. See NOTE [ The command under torchrun ] in
`batchfit.cli.fit`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors.torch import load_file

from tests.cli.conftest import cli_env, run_cli, write_csv

pytestmark = pytest.mark.slow

FEATURES = ["size", "rooms", "age"]
SEED, BATCH, SHUFFLE, EPOCHS, SPLIT = 3, 32, 300, 2, 0.2
MODEL = "dense:16:relu,dense:1"


def torchrun(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m batchfit ARGS`, captured.

    --standalone picks a free rendezvous port at run time. On a timeout the
    whole process group (torchrun and its workers) is killed, so no worker
    outlives the test.
    """
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "batchfit", *args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def why(done: subprocess.CompletedProcess) -> str:
    """The workers' errors (before torchrun's long report) and the report's end."""
    return done.stderr[:3000] + "\n...\n" + done.stderr[-1500:]


def fit_args(files: list[Path], out: Path, batch_size: int) -> list[str]:
    return [
        "fit", *map(str, files), "--target", "price", "--drop", "noise", "--model", MODEL,
        "--metrics", "mae", "--epochs", str(EPOCHS), "--batch-size", str(batch_size),
        "--validation-split", str(SPLIT), "--shuffle-buffer", str(SHUFFLE), "--seed", str(SEED),
        "--normalize", "--normalize-target", "--learning-rate", "0.01",
        "--backup-every", "10", "--out", str(out),
    ]  # fmt: skip


def listing(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A 2-process fit and a 1-process fit (global batch: twice the per-process batch)."""
    root = tmp_path_factory.mktemp("torchrun")
    # equal files: each is one CSV block, so each rank's shard is one file
    files = [write_csv(root / f"part-{i}.csv", 1200, 10 + i) for i in range(2)]
    cwd = root / "cwd"
    cwd.mkdir()
    two = torchrun(*fit_args(files, root / "two", BATCH), cwd=cwd)
    one = run_cli(*fit_args(files, root / "one", 2 * BATCH), cwd=cwd)
    return {"root": root, "files": files, "cwd": cwd, "two": two, "one": one}


def test_fit_writes_what_one_process_writes(runs: dict) -> None:
    two, one, root = runs["two"], runs["one"], runs["root"]
    assert two.returncode == 0, why(two)
    assert one.returncode == 0, one.stderr
    assert listing(root / "two") == listing(root / "one") == [
        "history.csv", "history.png", "model.safetensors", "predictions.png", "run.json",
        "table.json",
    ]  # fmt: skip  # the per-rank backups are gone
    assert not list(runs["cwd"].iterdir())  # nothing written anywhere else
    for line in ("Reading the table", "Training on", "Epoch 1/2:", "Epoch 2/2:", "Final:"):
        assert two.stdout.count(line) == 1, (line, two.stdout)  # rank 0 alone prints
    assert "2 processes" in two.stdout
    assert "batchfit: error" not in two.stderr

    run, single = (json.loads((root / d / "run.json").read_text()) for d in ("two", "one"))
    assert run["status"] == "complete" and run["world_size"] == 2 and single["world_size"] == 1
    # rows are added over the ranks; the shards of the split are the whole split
    assert run["train_rows_per_epoch"] == single["train_rows_per_epoch"]
    assert run["validation_rows"] == single["validation_rows"]
    assert run["train_rows_per_epoch"] + run["validation_rows"] == 2400
    # the statistics pass reads a shard per rank and merges the sums: the same statistics
    for side in ("features", "target"):
        for key in ("mean", "variance"):
            np.testing.assert_allclose(
                run["normalization"][side][key], single["normalization"][side][key], rtol=1e-6
            )
    assert run["normalization"]["features"]["rows"] == run["train_rows_per_epoch"]
    history = (root / "two" / "history.csv").read_text().splitlines()
    assert len(history) == EPOCHS + 1 and history[0] == "epoch,loss,mae,val_loss,val_mae"


def table_source(run_dir: Path, files: list[str], **options: Any) -> Any:
    """A source reading `files` as the run's table, as the command's `_split` builds it."""
    from batchfit.cli.data import open_source
    from batchfit.cli.settings import FitSettings
    from batchfit.cli.table import read_table, table_rows

    rows = table_rows(read_table(run_dir), ["price"], FitSettings(), with_key=True)
    return open_source(files, ["price"], FEATURES, table=rows, **options)


def _reference_model(runs: dict) -> Any:
    """The same training in one process: each step on both ranks' batches of that step.

    DDP averages the ranks' gradients, each the mean over its own batch (the
    row-hash split leaves batches of slightly different sizes), so the one
    process weights rank r's rows by n / (2 n_r) on the joined batch of n rows.
    A step where one rank has run out of batches divides by the initial world
    size all the same (docs/scaling-out.md): its rows weigh 1/2.
    """
    import torch

    from batchfit import optimizers
    from batchfit.cli.model_spec import build_model
    from batchfit.cli.split import RowSplit
    from batchfit.layers import Normalization

    run = json.loads((runs["root"] / "two" / "run.json").read_text())
    files = [str(f) for f in runs["files"]]
    batches = []
    for epoch in range(EPOCHS):
        per_rank = []
        for rank in range(2):
            inner = table_source(
                runs["root"] / "two", files, batch_size=BATCH, shuffle_buffer=SHUFFLE, seed=SEED
            )
            shard = RowSplit(inner, SPLIT, "train", keyed=True).shard(rank, 2)
            shard.set_epoch(epoch)
            per_rank.append([tuple(np.array(part) for part in batch) for batch in shard])
        for i in range(max(map(len, per_rank))):
            step = [b[i] for b in per_rank if i < len(b)]
            n = sum(len(y) for _, y in step)
            w = np.concatenate([np.full(len(y), n / (2 * len(y))) for _, y in step])
            batches.append(
                (
                    np.concatenate([x for x, _ in step]),
                    np.concatenate([y for _, y in step]),
                    w.astype(np.float32),
                )
            )
    stats = run["normalization"]
    torch.manual_seed(SEED)
    model = build_model(
        MODEL,
        len(FEATURES),
        1,
        feature_norm=Normalization(
            mean=stats["features"]["mean"], variance=stats["features"]["variance"]
        ),
        target_stats=(stats["target"]["mean"], stats["target"]["variance"]),
    )
    model.compile(
        optimizer=optimizers.get({"class_name": "adam", "learning_rate": 0.01}),
        loss="mse",
        metrics=["mae"],
    )
    model.fit(batches, epochs=1, verbose=0)
    return model


def test_weights_equal_the_same_training_in_one_process(runs: dict, tmp_path: Path) -> None:
    assert runs["two"].returncode == 0, why(runs["two"])
    model = _reference_model(runs)
    model.save(str(tmp_path / "reference.safetensors"))
    want = load_file(str(tmp_path / "reference.safetensors"))
    got = load_file(str(runs["root"] / "two" / "model.safetensors"))
    assert got.keys() == want.keys()
    for key in got:
        if not key.endswith(".count"):  # the adapted layer counted rows; the rebuilt one did not
            np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), atol=1e-5, err_msg=key)


def test_files_of_different_sizes_finish_like_the_replay(tmp_path: Path) -> None:
    # one file per rank, 1,200 rows against 700: rank 1 runs out of batches first
    files = [
        write_csv(tmp_path / "part-0.csv", 1200, 10),
        write_csv(tmp_path / "part-1.csv", 700, 11),
    ]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    two = torchrun(*fit_args(files, tmp_path / "two", BATCH), cwd=cwd)
    assert two.returncode == 0, why(two)
    runs = {"root": tmp_path, "files": files}
    model = _reference_model(runs)
    model.save(str(tmp_path / "reference.safetensors"))
    want = load_file(str(tmp_path / "reference.safetensors"))
    got = load_file(str(tmp_path / "two" / "model.safetensors"))
    for key in got:
        if not key.endswith(".count"):
            np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), atol=1e-5, err_msg=key)


def test_evaluate_under_torchrun_equals_one_process(runs: dict) -> None:
    from batchfit.cli.split import RowSplit
    from batchfit.models import load_model

    root, files = runs["root"], [str(f) for f in runs["files"]]
    assert runs["two"].returncode == 0, why(runs["two"])
    args = ["evaluate", str(root / "two"), *files, "--batch-size", "500"]
    # the validation side: the split of each rank's shard, scored and counted over ranks
    two = torchrun(*args, "--subset", "validation", cwd=runs["cwd"])
    one = run_cli(*args, "--subset", "validation")
    assert two.returncode == 0 and one.returncode == 0, why(two) + one.stderr
    assert two.stdout == one.stdout and two.stdout.count("rows:") == 1
    run = json.loads((root / "two" / "run.json").read_text())
    assert f"{run['validation_rows']:,} rows: loss: {run['final']['val_loss']:.4f}" in two.stdout
    # fit's last validation (2 ranks) is one process's evaluation of the saved model
    model = load_model(str(root / "two" / "model.safetensors"))
    validation = RowSplit(
        table_source(root / "two", files, batch_size=500), SPLIT, "validation", keyed=True
    )
    values = model.evaluate(validation, verbose=0, return_dict=True)
    np.testing.assert_allclose(values["loss"], run["final"]["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(values["mae"], run["final"]["val_mae"], rtol=1e-5)


def test_predict_under_torchrun_equals_one_process(runs: dict, tmp_path: Path) -> None:
    root, files = runs["root"], [str(f) for f in runs["files"]]
    assert runs["two"].returncode == 0, why(runs["two"])
    # 5 batches of 500: the ranks take 3 and 2, gathered back in order
    args = ["predict", str(root / "two"), *files, "--batch-size", "500", "--output"]
    two = torchrun(*args, str(tmp_path / "two.parquet"), cwd=runs["cwd"])
    one = run_cli(*args, str(tmp_path / "one.parquet"))
    assert two.returncode == 0 and one.returncode == 0, why(two) + one.stderr
    assert two.stdout.count("Wrote 2,400 predictions") == 1
    got, want = pq.read_table(tmp_path / "two.parquet"), pq.read_table(tmp_path / "one.parquet")
    assert got.column_names == want.column_names == ["price_pred"]
    assert got.num_rows == want.num_rows == 2400
    np.testing.assert_allclose(
        got.column("price_pred").to_numpy(), want.column("price_pred").to_numpy(), atol=1e-6
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.parquet", "two.parquet"]


def test_errors_under_torchrun_end_every_rank_with_one_message(runs: dict, tmp_path: Path) -> None:
    good = runs["files"]
    # a set-up error (every rank sees it): one message, nothing written
    done = torchrun("fit", *map(str, good), "--target", "nope", "--out", str(tmp_path / "a"),
                    cwd=runs["cwd"], timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.count("batchfit: error") == 1 and "--target" in done.stderr
    assert not (tmp_path / "a").exists()
    # a malformed row in rank 1's file, met during training: rank 1 says so, every rank ends
    bad = tmp_path / "bad.csv"
    lines = good[1].read_text().splitlines()
    bad.write_text("\n".join([*lines[:1000], "1.0,2.0,abc,4.0,5.0", *lines[1000:]]) + "\n")
    t0 = time.perf_counter()
    done = torchrun("fit", str(good[0]), str(bad), "--target", "price", "--batch-size", "32",
                    "--out", str(tmp_path / "b"), "--quiet", cwd=runs["cwd"], timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert time.perf_counter() - t0 < 60
    assert done.stderr.count("malformed row") == 1
    assert (
        "batchfit: error (rank 1): malformed row at" in done.stderr and "line 1001" in done.stderr
    )
    assert not (tmp_path / "b" / "model.safetensors").exists()


def test_resume_needs_as_many_processes_as_the_backups(tmp_path: Path, datadir: Path) -> None:
    """Each process backs up its own data position: another process count cannot resume."""
    out = tmp_path / "run"
    done = run_cli("fit", str(datadir / "part-0.csv"), "--target", "price", "--epochs", "1",
                   "--model", "dense:1", "--out", str(out), "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads((out / "run.json").read_text())
    run.update(status="running", world_size=2)  # as a 2-process run killed mid-way leaves it
    (out / "run.json").write_text(json.dumps(run))
    (out / "backup").mkdir()
    for rank in range(2):
        (out / "backup" / f"backup-rank{rank}.safetensors").write_bytes(b"")
    done = run_cli("fit", "--resume", "--out", str(out), "--quiet")
    assert done.returncode == 1
    assert "started with 2 processes (torchrun --nproc_per_node=2" in done.stderr
    assert "this is 1 process" in done.stderr
    assert (out / "backup" / "backup-rank0.safetensors").exists()  # left alone
