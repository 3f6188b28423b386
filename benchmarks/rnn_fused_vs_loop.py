"""Forward+backward time of batchfit's LSTM/GRU: torch's fused kernel vs the per-step loop.

Both paths compute Keras' formulas from the same weights (the loop is what
runs with a mask that has holes, recurrent dropout, or non-default
activations). "padded" rows pass a padding mask (a random-length suffix of
each sequence is valid, as after `pad_sequences`): the fused path runs packed. Rounds
interleave the two paths (the machine is shared and noisy); the table gives
medians and the loop/fused ratio.

    .venv/bin/python benchmarks/rnn_fused_vs_loop.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from batchfit import layers


def _time(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, args.steps, args.features)
    print(
        f"batch {args.batch}, {args.steps} steps, {args.features} features, {args.units} units, "
        f"{args.threads} thread(s); forward+backward, ms per batch (median of {args.rounds})"
    )
    # padding as pad_sequences leaves it: each sequence keeps a random-length suffix
    lengths = torch.randint(args.steps // 4, args.steps + 1, (args.batch,))
    padded = torch.arange(args.steps) >= (args.steps - lengths).unsqueeze(1)
    print(f"{'layer':16s} {'fused':>9s} {'loop':>9s} {'loop/fused':>11s}")
    for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        for mask in (None, padded):
            layer = cls(args.units, return_sequences=True)
            layer(x[:1])
            fused_path = layer._fused

            def step(layer: layers.Layer = layer, mask: torch.Tensor | None = mask) -> None:
                layer.zero_grad()
                layer(x, mask=mask).sum().backward()

            fused, loop = [], []
            for _ in range(args.rounds):
                layer._fused = fused_path  # type: ignore[method-assign]
                fused.append(_time(step, args.repeats))
                layer._fused = lambda *_: None  # type: ignore[method-assign]
                loop.append(_time(step, args.repeats))
            f, lo = statistics.median(fused) * 1e3, statistics.median(loop) * 1e3
            name = cls.__name__ + (" padded" if mask is not None else "")
            print(f"{name:16s} {f:9.2f} {lo:9.2f} {lo / f:11.2f}")


if __name__ == "__main__":
    main()
