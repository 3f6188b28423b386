"""The one thread pool for per-image CPU work, shared by `data/` and `transforms/`.

Image sources decode in it and augmentation warps in it (both release the
GIL), so one knob, `torch.set_num_threads`, rules every path. It lives in
`data/`, the lower layer; `transforms/` imports it from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["executor", "num_threads", "parallel_chunks"]

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def num_threads() -> int:
    """Threads used for per-image CPU work: torch's setting, so one knob rules both paths."""
    import torch

    return max(1, int(torch.get_num_threads()))


def executor(threads: int | None = None) -> ThreadPoolExecutor:
    """The shared pool, with `threads` workers (default `num_threads()`)."""
    global _pool, _pool_size
    threads = num_threads() if threads is None else threads
    if _pool is None or _pool_size != threads:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="batchfit-augment")
        _pool_size = threads
    return _pool


def parallel_chunks(n: int, work: Callable[[int, int], None], threads: int | None = None) -> None:
    """Run `work(start, stop)` over contiguous chunks of `range(n)` in the shared pool.

    Chunks rather than single images keep the per-task overhead (and the GIL
    hand-offs) negligible for small images such as 32x32.
    """
    threads = num_threads() if threads is None else max(1, threads)
    if threads == 1 or n < 2:
        work(0, n)
        return
    bounds = np.linspace(0, n, min(threads, n) + 1).astype(int)
    futures = [
        executor(threads).submit(work, int(a), int(b))
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    for f in futures:
        f.result()
