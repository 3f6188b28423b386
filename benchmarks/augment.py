"""Images/s of `ImageDataGenerator.flow` on the seed 002 configuration, side by side.

Contenders (each guarded: missing libraries are skipped):
  batchfit            flow(), default CPU backend (OpenCV warps in a thread pool)
  batchfit-torch      flow(), backend="torch" (one batched grid_sample per batch)
  torch-grid_sample   a plain batched affine_grid/grid_sample loop (the baseline)
  keras-legacy        keras' legacy ImageDataGenerator.flow (KERAS_BACKEND=torch)
  albumentations      Affine + HorizontalFlip + Normalize per image

Rounds interleave the contenders (the machine is shared and noisy) and the
table reports medians and ratios to batchfit. Every contender gets the same
thread count (torch, OpenCV, and a thread pool for albumentations).

    .venv/bin/python benchmarks/augment.py --threads 1
    .venv/bin/python benchmarks/augment.py --fit      # datagen.fit peak RSS vs N
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch

from batchfit.data import Source
from batchfit.preprocessing.image import ImageDataGenerator

_FIT_SAMPLE = 200  # images each contender computes its normalisation statistics on

SEED_002 = dict(
    featurewise_center=True,
    featurewise_std_normalization=True,
    rotation_range=20,
    width_shift_range=0.2,
    height_shift_range=0.2,
    horizontal_flip=True,
)


def _batchfit(x: np.ndarray, y: np.ndarray, bs: int, backend: str | None) -> Iterator[int]:
    gen = ImageDataGenerator(**SEED_002, backend=backend).fit(x[:_FIT_SAMPLE])
    return (len(xb) for xb, _ in gen.flow(x, y, batch_size=bs, seed=0))


def _grid_sample(x: np.ndarray, y: np.ndarray, bs: int, threads: int) -> Iterator[int]:
    """The plain batched torch baseline: random affine per image, one grid_sample per batch."""
    del threads
    mean = torch.as_tensor(x[:_FIT_SAMPLE].mean(axis=(0, 1, 2)))
    std = torch.as_tensor(x[:_FIT_SAMPLE].std(axis=(0, 1, 2)))
    return _grid_sample_batches(x, bs, mean, std)


def _grid_sample_batches(
    x: np.ndarray, bs: int, mean: torch.Tensor, std: torch.Tensor
) -> Iterator[int]:
    gen = torch.Generator().manual_seed(0)
    n = len(x)
    order = torch.randperm(n, generator=gen).numpy()
    for start in range(0, n, bs):
        idx = order[start : start + bs]
        xb = torch.from_numpy(x[idx]).permute(0, 3, 1, 2)
        m = len(idx)
        angle = (torch.rand(m, generator=gen) * 2 - 1) * np.deg2rad(20)
        shift = (torch.rand(m, 2, generator=gen) * 2 - 1) * 0.4  # 0.2 of the size, in [-1, 1] units
        flip = torch.where(torch.rand(m, generator=gen) < 0.5, -1.0, 1.0)
        theta = torch.zeros(m, 2, 3)
        theta[:, 0, 0] = torch.cos(angle) * flip
        theta[:, 0, 1] = -torch.sin(angle)
        theta[:, 1, 0] = torch.sin(angle) * flip
        theta[:, 1, 1] = torch.cos(angle)
        theta[:, :, 2] = shift
        grid = torch.nn.functional.affine_grid(theta, list(xb.shape), align_corners=False)
        out = torch.nn.functional.grid_sample(xb, grid, padding_mode="border", align_corners=False)
        out = ((out.permute(0, 2, 3, 1) - mean) / std).contiguous().numpy()
        yield len(out)


def _keras(x: np.ndarray, y: np.ndarray, bs: int, threads: int) -> Iterator[int]:
    del threads
    from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator

    gen = KerasGenerator(**SEED_002)
    gen.fit(x[:_FIT_SAMPLE])
    it = gen.flow(x, y, batch_size=bs, seed=0)
    return (len(it[i][0]) for i in range(len(it)))


def _albumentations(x: np.ndarray, y: np.ndarray, bs: int, threads: int) -> Iterator[int]:
    import albumentations as A
    import cv2

    mean = x[:_FIT_SAMPLE].mean(axis=(0, 1, 2))
    std = x[:_FIT_SAMPLE].std(axis=(0, 1, 2))
    aug = A.Compose(
        [
            A.Affine(
                rotate=(-20, 20),
                translate_percent=(-0.2, 0.2),
                border_mode=cv2.BORDER_REPLICATE,
                p=1.0,
            ),
            A.HorizontalFlip(p=0.5),
            A.Normalize(mean=mean, std=std, max_pixel_value=1.0),
        ]
    )
    order = np.random.default_rng(0).permutation(len(x))
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def one(i: int) -> np.ndarray:
        return aug(image=x[i])["image"]

    def batches() -> Iterator[int]:
        for start in range(0, len(x), bs):
            idx = order[start : start + bs]
            images = list(pool.map(one, idx)) if pool else [one(i) for i in idx]
            yield len(np.stack(images))

    return batches()


def _measure(run: Callable[[], Iterator[int]], max_seconds: float) -> float:
    batches = run()  # set-up (fitting statistics, building pipelines) is not timed
    start = time.perf_counter()
    seen = 0
    for count in batches:
        seen += count
        if time.perf_counter() - start > max_seconds:
            break
    return seen / (time.perf_counter() - start)


def _contenders(threads: int) -> dict[str, Callable[..., Iterator[int]]]:
    found: dict[str, Callable[..., Iterator[int]]] = {
        "batchfit": lambda x, y, bs: _batchfit(x, y, bs, None),
        "batchfit-torch": lambda x, y, bs: _batchfit(x, y, bs, "torch"),
        "torch-grid_sample": lambda x, y, bs: _grid_sample(x, y, bs, threads),
    }
    try:
        import keras  # noqa: F401
        import scipy  # noqa: F401

        found["keras-legacy"] = lambda x, y, bs: _keras(x, y, bs, threads)
    except ImportError:
        print("keras/scipy not installed: skipping keras-legacy")
    try:
        import albumentations  # noqa: F401

        found["albumentations"] = lambda x, y, bs: _albumentations(x, y, bs, threads)
    except ImportError:
        print("albumentations not installed: skipping it")
    return found


def run_flow(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    try:
        import cv2

        cv2.setNumThreads(args.threads)
    except ImportError:
        pass
    contenders = _contenders(args.threads)
    print(f"threads={args.threads} rounds={args.rounds} max {args.max_seconds}s per measurement")
    for size, count in ((32, args.n32), (224, args.n224)):
        x = (np.random.default_rng(0).random((count, size, size, 3)) * 255).astype(np.float32)
        y = np.random.default_rng(1).integers(0, 10, count)
        for bs in (32, 256):
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(args.rounds):
                for name, fn in contenders.items():
                    rates[name].append(
                        _measure(lambda fn=fn, x=x, y=y, bs=bs: fn(x, y, bs), args.max_seconds)
                    )
            base = statistics.median(rates["batchfit"])
            print(f"\n{size}x{size}x3, {count} images, batch {bs}")
            print(f"  {'contender':<20}{'images/s':>12}{'batchfit / it':>16}")
            for name, values in rates.items():
                median = statistics.median(values)
                print(f"  {name:<20}{median:>12,.0f}{base / median:>16.2f}")


class _RandomImages(Source):
    """N random 32x32x3 images made chunk by chunk, so the data is never all in memory."""

    def __init__(self, n: int, chunk: int = 500) -> None:
        super().__init__()
        self.n, self.chunk = n, chunk

    def _iter_epoch(self, epoch: int, skip_batches: int):  # type: ignore[no-untyped-def]
        for b in range(skip_batches, -(-self.n // self.chunk)):
            rows = min(self.chunk, self.n - b * self.chunk)
            rng = np.random.default_rng((epoch, b))
            yield ((rng.random((rows, 32, 32, 3)) * 255).astype(np.float32),)


def fit_child(n: int) -> None:
    start = time.perf_counter()
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    gen.fit(_RandomImages(n))
    took = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"fit over {n:>6} images: {took:6.2f} s, {n / took:>9,.0f} images/s, peak RSS {rss:6.0f} MB"
    )


def run_fit() -> None:
    for n in (10_000, 50_000):
        subprocess.run([sys.executable, __file__, "--fit-child", str(n)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=4.0)
    parser.add_argument("--n32", type=int, default=10_000)
    parser.add_argument("--n224", type=int, default=2_000)
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--fit-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fit_child:
        fit_child(args.fit_child)
    elif args.fit:
        run_fit()
    else:
        run_flow(args)


if __name__ == "__main__":
    main()
