"""Ranks with different numbers of batches finish, with the weights of a one-process replay.

The replay follows the rule docs/scaling-out.md states: while a rank has run out
of batches, DDP's `Join` adds zeros in its place and the sum is still divided by
the initial world size, so a step taken by rank 0 alone moves the weights by
half its own gradient.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from batchfit.layers import BatchNormalization, Dense
from batchfit.models import Sequential
from batchfit.optimizers import SGD

SCRIPT = Path(__file__).with_name("uneven_script.py")
sys.path.insert(0, str(SCRIPT.parent))
import uneven_script  # noqa: E402
from torchrun_util import run_script  # noqa: E402

pytestmark = pytest.mark.slow


def _torchrun(out: Path, mode: str) -> list[dict]:
    done = run_script(SCRIPT, out, mode)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def _replay(initial: list, steps: list[list[tuple[np.ndarray, np.ndarray]]]) -> list[np.ndarray]:
    """Plain torch SGD where each step's gradient is the sum of the ranks' mean-loss
    gradients divided by 2 (the initial world size), ranks without a batch adding 0."""
    k0, b0, k1, b1 = (torch.tensor(np.array(w), dtype=torch.float32) for w in initial)
    params = [p.requires_grad_() for p in (k0, b0, k1, b1)]
    for batches in steps:
        total = sum(
            torch.mean((torch.tanh(_flat(x) @ k0 + b0) @ k1 + b1 - _flat(y)) ** 2)
            for x, y in batches
        )
        loss = total / 2
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= 0.1 * g
    return [p.detach().numpy() for p in params]


def _flat(a) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a, dtype=np.float32))
    return t.reshape(t.shape[0], -1)


def _assert_close(got: list, want: list[np.ndarray]) -> None:
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.array(a, dtype=np.float32), b, rtol=0, atol=2e-6)


def test_arrays_with_a_rank_one_batch_short_finish_like_the_replay(tmp_path):
    ranks = _torchrun(tmp_path, "arrays")
    x, y = uneven_script.make_data()  # 33 rows: rank 0 takes 17 (5 batches), rank 1 16 (4)
    shards = [(x[r::2], y[r::2]) for r in (0, 1)]
    per_rank = [[(sx[i : i + 4], sy[i : i + 4]) for i in range(0, len(sx), 4)] for sx, sy in shards]
    assert [len(b) for b in per_rank] == [5, 4]
    epoch = [[b[i] for b in per_rank if i < len(b)] for i in range(5)]
    want = _replay(ranks[0]["initial"], epoch + epoch)
    for report in ranks:
        _assert_close(report["weights"], want)
    assert ranks[0]["loss"] == ranks[1]["loss"]  # metric sums are added over ranks


def test_lists_of_ten_and_six_batches_finish_like_the_replay(tmp_path):
    ranks = _torchrun(tmp_path, "lists")
    lists = [uneven_script.list_batches(r) for r in (0, 1)]
    steps = [[b[i] for b in lists if i < len(b)] for i in range(10)]
    want = _replay(ranks[0]["initial"], steps)
    for report in ranks:
        _assert_close(report["weights"], want)


@pytest.mark.parametrize("kind", ["csv", "parquet", "images"])
def test_file_sources_with_uneven_shards_finish_like_the_replay(tmp_path, kind):
    uneven_script.write_files(tmp_path)
    ranks = _torchrun(tmp_path, kind)
    mine = [r["batches"] for r in ranks]  # what each rank's shard yields, in order
    assert len(mine[0]) != len(mine[1]), [len(b) for b in mine]  # the case under test
    # together the shards hold every row once
    rows = sum(len(x) for shard in mine for x, _ in shard)
    assert rows == (17 if kind == "images" else 33)
    steps = [[b[i] for b in mine if i < len(b)] for i in range(max(map(len, mine)))]
    want = _replay(ranks[0]["initial"], steps)
    for report in ranks:
        _assert_close(report["weights"], want)


def test_a_nan_batch_on_one_rank_stops_both_and_changes_no_weight(tmp_path):
    ranks = _torchrun(tmp_path, "nan")
    assert "loss is nan at epoch 1, batch 3" in ranks[1]["raised"]
    assert "loss is nan on another rank at epoch 1, batch 3" in ranks[0]["raised"]
    trainable = [0, 1, 2, 3, 6, 7]  # kernels, biases, gamma, beta (4, 5: moving statistics)
    for report in ranks:
        for i in trainable:
            assert report["weights"][i] == report["clean"][i]
        assert all(np.isfinite(np.array(w)).all() for w in report["weights"])
    # the rank that saw the NaN kept its moving statistics from before that batch
    assert ranks[1]["weights"] == ranks[1]["clean"]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_rejected_batch_leaves_batchnorm_statistics_bit_identical(accumulate):
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    model = Sequential([Dense(4, input_dim=3), BatchNormalization(), Dense(1)])
    model.compile(SGD(0.1), "mse", accumulate_steps=accumulate)
    model.train_on_batch(x[:4], y[:4])
    if accumulate == 2:
        model.train_on_batch(x[4:8], y[4:8])  # closes the window
    before = model.get_weights()
    bad = x[8:].copy()
    bad[1, 0] = np.nan
    with pytest.raises(FloatingPointError, match="did not update the weights"):
        model.train_on_batch(bad, y[8:])
    after = model.get_weights()
    for a, b in zip(before, after):
        assert np.array_equal(a, b)
    # and the next good batch trains from exactly that state: as a model that never saw it
    twin = Sequential([Dense(4, input_dim=3), BatchNormalization(), Dense(1)])
    twin.compile(SGD(0.1), "mse", accumulate_steps=accumulate)
    twin.set_weights(before)
    model.train_on_batch(x[8:], y[8:])
    twin.train_on_batch(x[8:], y[8:])
    for a, b in zip(model.get_weights(), twin.get_weights()):
        assert np.array_equal(a, b)
