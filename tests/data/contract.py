"""Reusable contract checks for batch sources (NOTE [ The source contract ]).

Usage from any test module in this directory (or with it on `sys.path`):

    from contract import check_resumable
    check_resumable(lambda: my_source(seed=0, batch_size=4))

`factory` must build a fresh, equivalent source on every call, as a resumed
process would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "assert_batches_equal",
    "assert_no_new_threads",
    "check_epochs_and_shards",
    "check_resumable",
    "epoch_batches",
    "rows_of",
]


def epoch_batches(source: Any, epoch: int = 0) -> list[Any]:
    """All batches of one epoch."""
    source.set_epoch(epoch)
    return list(source)


def _flat(batch: Any) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for part in batch:
        if isinstance(part, dict):
            out.extend(np.asarray(part[k]) for k in sorted(part))
        else:
            out.append(np.asarray(part))
    return out


def assert_batches_equal(got: Sequence[Any], expected: Sequence[Any], what: str = "") -> None:
    """Same number of batches, same parts, bit for bit."""
    assert len(got) == len(expected), f"{what}: {len(got)} batches, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        fa, fb = _flat(a), _flat(b)
        assert len(fa) == len(fb), f"{what}: batch {i} has {len(fa)} parts, expected {len(fb)}"
        for j, (pa, pb) in enumerate(zip(fa, fb, strict=True)):
            assert pa.shape == pb.shape, f"{what}: batch {i} part {j}: {pa.shape} vs {pb.shape}"
            assert pa.dtype == pb.dtype, f"{what}: batch {i} part {j}: {pa.dtype} vs {pb.dtype}"
            np.testing.assert_array_equal(pa, pb, err_msg=f"{what}: batch {i} part {j}")


def rows_of(batches: Iterable[Any], part: int = 0, column: int = 0) -> np.ndarray:
    """One column of one part across batches (e.g. a row-id feature)."""
    values = [np.asarray(b[part]).reshape(len(b[part]), -1)[:, column] for b in batches]
    return np.concatenate(values) if values else np.zeros(0)


def check_resumable(
    factory: Callable[[], Any], *, epoch: int = 1, stops: Sequence[int] | None = None
) -> None:
    """Stop mid-epoch, save the state, rebuild, load it: the rest matches a full run.

    Also checks that the state is JSON-friendly, that the source itself can be
    iterated again from where it stopped, and that the next epoch after a
    resumed one starts from its first batch.
    """
    reference = factory()
    full = epoch_batches(reference, epoch)
    next_epoch = epoch_batches(reference, epoch + 1)
    reference.close()
    n = len(full)
    assert n >= 2, f"the factory must give at least 2 batches per epoch, got {n}"
    for stop in sorted(set(stops or (1, n // 2, n - 1))):
        source = factory()
        source.set_epoch(epoch)
        iterator = iter(source)
        head = [next(iterator) for _ in range(stop)]
        state = json.loads(json.dumps(source.state_dict()))
        iterator.close()  # the consumer stops early
        assert_batches_equal(head, full[:stop], f"first {stop} batches")

        again = list(source)  # the same object continues from its position
        assert_batches_equal(again, full[stop:], f"same source continued after {stop}")
        source.close()

        fresh = factory()
        fresh.load_state_dict(state)
        rest = list(fresh)
        assert_batches_equal(rest, full[stop:], f"fresh source resumed after {stop}")
        fresh.set_epoch(epoch + 1)
        assert_batches_equal(list(fresh), next_epoch, f"epoch after the resumed one ({stop})")
        fresh.close()


def assert_no_new_threads(before: set[threading.Thread], timeout: float = 5.0) -> None:
    """Every thread started since `before` has ended (waits up to `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not extra, f"threads left running: {[t.name for t in extra]}"


def check_epochs_and_shards(
    factory: Callable[[], Any],
    ids_of: Callable[[Sequence[Any]], np.ndarray],
    expected_ids: np.ndarray,
    *,
    worlds: Sequence[int] = (2, 3),
) -> None:
    """An epoch repeats bit for bit, holds every row once, and its count is `len()`;
    shards of every world size are disjoint and together complete.

    `ids_of(batches)` names the rows of a list of batches (e.g. a row-id column).
    """
    source = factory()
    first, again = epoch_batches(source, 2), epoch_batches(source, 2)
    assert_batches_equal(again, first, "the same epoch twice")
    if source.num_batches is not None:
        assert len(first) == source.num_batches == len(source)
    np.testing.assert_array_equal(np.sort(ids_of(first)), np.sort(expected_ids))
    for world in worlds:
        parts = [ids_of(epoch_batches(source.shard(r, world), 1)) for r in range(world)]
        np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.sort(expected_ids))
    source.close()
