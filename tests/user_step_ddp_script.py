"""Run under torchrun by tests/test_distributed.py: a subclassed model's own train_step.

    torchrun --standalone --nproc_per_node=2 tests/user_step_ddp_script.py OUT_DIR MODE
MODE 'even': 32 rows, batch 4 (4 batches per rank), the model's own train_step
(Keras' torch guide: backward, then `optimizer.apply`) and, for comparison, the
same network with the built-in step. MODE 'uneven': 33 rows, batch 4, so rank 0
holds 5 batches and rank 1 holds 4. Each rank writes OUT_DIR/rank{r}.json: the
final weights and the rows of each batch it trained on.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import numpy as np
import torch

import batchfit as keras
from batchfit import distributed, layers


def make_data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 4)).astype(np.float32)
    x[:, 0] = np.arange(rows)  # row ids, multiplied by a zero weight below
    y = (x[:, 1:] @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    return x, y


class Net(keras.Model):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden = layers.Dense(6, activation="tanh")
        self.out = layers.Dense(1)
        self.rows: list[list[int]] = []

    def call(self, inputs: torch.Tensor, training: Any = None) -> torch.Tensor:
        return self.out(self.hidden(inputs[:, 1:]))


class OwnStep(Net):
    """Keras' torch guide: zero_grad, forward, compute_loss, backward, optimizer.apply."""

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        self.rows.append([int(i) for i in x[:, 0].tolist()])
        self.zero_grad()
        loss = self.compute_loss(y=y, y_pred=self(x, training=True))
        loss.backward()
        weights = list(self.trainable_weights)
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in weights], weights)
        return {"loss": loss}


def build(kind: type[Net]) -> Net:
    torch.manual_seed(0)
    model = kind()
    model.compile(keras.optimizers.SGD(learning_rate=0.1, momentum=0.5), "mse")
    return model


def weights(model: Net) -> list[list[float]]:
    return [np.asarray(w).ravel().tolist() for w in model.get_weights()]


def main() -> None:
    out, mode = sys.argv[1], sys.argv[2]
    x, y = make_data(32 if mode == "even" else 33)
    own = build(OwnStep)  # joins the process group
    rank = distributed.rank()
    assert distributed.world_size() == 2, "run me with torchrun --nproc_per_node=2"
    logging.basicConfig(filename=os.path.join(out, f"log{rank}.txt"), level=logging.WARNING)
    own.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    result: dict[str, Any] = {"own": weights(own), "rows": own.rows}
    if mode == "even":
        builtin = build(Net)
        builtin.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
        result["builtin"] = weights(builtin)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # as ddp_script.py: gloo's threads may abort the interpreter's teardown
