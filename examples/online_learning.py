"""Online learning: a live stream of batches, with the learning rate set per batch.

Data arrives from a generator (think a message queue or a sensor) whose rule
drifts halfway through. The loop trains with `train_on_batch`, watches a
running loss, and controls the rate itself through
`model.optimizer.learning_rate`: a warm-up, then a cut when the loss is flat,
and a boost when the loss jumps (the drift).

python examples/online_learning.py [--batches 2000] [--batch-size 32]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import numpy as np
import torch

from batchfit.layers import Dense
from batchfit.models import Sequential


def live_stream(
    batches: int, batch_size: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless-looking feed of (x, y); the true weights change at the half-way point."""
    rng = np.random.default_rng(seed)
    before, after = rng.normal(size=(4, 1)), rng.normal(size=(4, 1))
    for i in range(batches):
        x = rng.normal(size=(batch_size, 4)).astype(np.float32)
        w = before if i < batches // 2 else after
        yield x, (x @ w + 0.05 * rng.normal(size=(batch_size, 1))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)

    model = Sequential([Dense(16, activation="tanh", input_dim=4), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    base_lr, warmup = 1e-2, 50
    running, best = None, float("inf")
    for step, (x, y) in enumerate(live_stream(args.batches, args.batch_size)):
        if step < warmup:  # per-batch control: linear warm-up
            model.optimizer.learning_rate = base_lr * (step + 1) / warmup
        loss = model.train_on_batch(x, y)
        running = loss if running is None else 0.95 * running + 0.05 * loss
        if step >= warmup:
            if running > 3 * best:  # the rule changed: learn fast again
                model.optimizer.learning_rate = base_lr
                best = running
                print(
                    f"batch {step}: loss jumped to {running:.4f}, learning rate back to {base_lr}"
                )
            elif step % 200 == 0 and running > 0.9 * best:  # flat: cut the rate
                model.optimizer.learning_rate = max(model.optimizer.learning_rate * 0.5, 1e-4)
            best = min(best, running)
        if step % 250 == 0 or step == args.batches - 1:
            print(
                f"batch {step}: running loss {running:.4f}, "
                f"learning rate {model.optimizer.learning_rate:.5f}"
            )
    print(f"final running loss {running:.4f} after {args.batches} batches")


if __name__ == "__main__":
    main()
