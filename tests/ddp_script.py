"""Run under torchrun by tests/test_distributed.py: train, evaluate, gather statistics.

    torchrun --standalone --nproc_per_node=2 tests/ddp_script.py OUT_DIR MODE
MODE is 'train' (coverage, weights, metrics, statistics) or 'resume' (backs up; with
KILL_AT=N in the environment, rank 1 kills itself with SIGKILL at its N-th batch).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

import batchfit as bf
from batchfit import distributed
from batchfit.callbacks import BackupAndRestore, LambdaCallback
from batchfit.layers import Normalization
from batchfit.models import Model
from batchfit.preprocessing.image import ImageDataGenerator


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(192, 5)).astype(np.float32)
    x[:, 0] = np.arange(192)  # sample ids: the network ignores this column
    y = (x[:, 1:] @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]
    return x, y.astype(np.float32)


class Net(nn.Module):
    """A small MLP that records which sample ids it trained on."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        self.seen: list[int] = []
        self.inference_batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.seen.extend(int(i) for i in x[:, 0].tolist())
        else:
            self.inference_batches += 1
        return self.body(x[:, 1:])


def build() -> Model:
    torch.manual_seed(0)
    model = Model(Net())
    model.compile(bf.optimizers.SGD(learning_rate=0.05, momentum=0.9), "mse", metrics=["mae"])
    return model


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    x, y = make_data()
    model = build()
    rank = distributed.rank()
    assert distributed.world_size() == 2, "run me with torchrun --nproc_per_node=2"
    train = bf.data.arrays(x, y, batch_size=16, shuffle=True, seed=7)
    if mode == "train":
        seen_per_epoch = []
        record = LambdaCallback(
            on_epoch_end=lambda e, logs: seen_per_epoch.append(list(model.module.seen))
        )
        history = model.fit(train, epochs=2, callbacks=[record], verbose=0)
        loss, mae = model.evaluate(x[:100], y[:100], batch_size=8, verbose=0)
        before = model.module.inference_batches
        predictions = model.predict(x[:100], batch_size=8, verbose=0)
        predicted_batches = model.module.inference_batches - before
        written = model.predict(x[:100], batch_size=8, verbose=0, output=str(out / "preds.parquet"))
        norm = Normalization()
        norm.adapt(bf.data.arrays(x[:, 1:], batch_size=10))
        images = np.random.default_rng(1).random((50, 4, 4, 3)).astype(np.float32)
        datagen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
        datagen.fit(images)
        result = {
            "seen": seen_per_epoch,
            "history": history.history,
            "evaluate": [loss, mae],
            "predictions": predictions.ravel().tolist(),
            "predicted_batches": predicted_batches,
            "written": written,
            "norm_mean": norm.mean.numpy().ravel().tolist(),
            "norm_var": norm.variance.numpy().ravel().tolist(),
            "image_mean": np.asarray(datagen.mean).ravel().tolist(),
            "image_std": np.asarray(datagen.std).ravel().tolist(),
        }
        (out / f"rank{rank}.json").write_text(json.dumps(result))
    else:
        kill_at = int(os.environ.get("KILL_AT", "0"))
        batches = {"n": 0}

        def maybe_die(batch: int, logs: object) -> None:
            batches["n"] += 1
            if rank == 1 and batches["n"] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        model.fit(
            train,
            epochs=3,
            verbose=0,
            callbacks=[
                BackupAndRestore(out / "backup", save_freq=2),
                LambdaCallback(on_train_batch_end=maybe_die),
            ],
        )
    if rank == 0:
        np.savez(
            out / "weights.npz", *[w.detach().numpy() for w in model.module.state_dict().values()]
        )


if __name__ == "__main__":
    main()
    # gloo's C++ threads sometimes abort the interpreter's teardown (exit -6, also
    # without batchfit): end here once the work and its files are done
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
