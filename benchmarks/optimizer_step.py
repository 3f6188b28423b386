"""One optimizer update: batchfit's Keras rules against torch.optim, interleaved, as ratios.

batchfit computes Keras 3's update rules itself (optimizers/_rules.py, on torch's
`_foreach` kernels); this measures what that costs per step against torch's own
Adam/RMSprop/SGD (single-tensor and foreach forms) on the weights of a small MLP.

    .venv/bin/python benchmarks/optimizer_step.py --rounds 5 --steps 300
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from batchfit import optimizers

SHAPES = [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]


def _params() -> list[torch.Tensor]:
    torch.manual_seed(0)
    params = [torch.randn(s, requires_grad=True) for s in SHAPES]
    for p in params:
        p.grad = torch.randn_like(p)
    return params


def _makers() -> dict[str, dict[str, Callable[[list[torch.Tensor]], Callable[[], None]]]]:
    def ours(cls: type, **kw: object) -> Callable[[list[torch.Tensor]], Callable[[], None]]:
        def make(ps: list[torch.Tensor]) -> Callable[[], None]:
            opt = cls(**kw)
            opt.build(ps)
            return opt.step  # type: ignore[no-any-return]

        return make

    def theirs(cls: type, **kw: object) -> Callable[[list[torch.Tensor]], Callable[[], None]]:
        return lambda ps: cls(ps, **kw).step

    return {
        "adam": {
            "batchfit": ours(optimizers.Adam),
            "torch": theirs(torch.optim.Adam, lr=1e-3, eps=1e-7, foreach=False),
            "torch foreach": theirs(torch.optim.Adam, lr=1e-3, eps=1e-7, foreach=True),
        },
        "rmsprop": {
            "batchfit": ours(optimizers.RMSprop),
            "torch": theirs(torch.optim.RMSprop, lr=1e-3, alpha=0.9, eps=1e-7, foreach=False),
            "torch foreach": theirs(torch.optim.RMSprop, lr=1e-3, alpha=0.9, foreach=True),
        },
        "sgd momentum": {
            "batchfit": ours(optimizers.SGD, momentum=0.9),
            "torch": theirs(torch.optim.SGD, lr=0.01, momentum=0.9, foreach=False),
            "torch foreach": theirs(torch.optim.SGD, lr=0.01, momentum=0.9, foreach=True),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for rule, variants in _makers().items():
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):  # interleaved: each round runs every variant once
            for name, make in variants.items():
                step = make(_params())
                for _ in range(10):
                    step()
                start = time.perf_counter()
                for _ in range(args.steps):
                    step()
                times[name].append((time.perf_counter() - start) / args.steps * 1e6)
        base = statistics.median(times["batchfit"])
        cells = [
            f"{n} {statistics.median(t):.0f} us ({statistics.median(t) / base:.2f}x)"
            for n, t in times.items()
        ]
        print(f"{rule:13} " + " | ".join(cells))


if __name__ == "__main__":
    main()
