"""The ranks of `batchfit` under torchrun: printing once, failing together, adding counts.

See NOTE [ The command under torchrun ] in `batchfit.cli.fit`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["OtherRankFailed", "agree", "on_main", "say", "sum_over_ranks"]

T = TypeVar("T")


def say(message: str) -> None:
    """Print on rank 0 (the only process under torchrun that prints)."""
    from batchfit import distributed

    if distributed.is_main():
        print(message, flush=True)


class OtherRankFailed(Exception):
    """This rank stops because another rank failed and reports why (exit code 1, no message)."""


def agree(fn: Callable[[], T]) -> T:
    """`fn()` on every rank; when it fails on any rank, it fails on all.

    The lowest failing rank raises its own error (printed once) and the others
    raise `OtherRankFailed`, so every rank leaves together and none waits in a
    collective for one that has gone. One process: just `fn()`.
    """
    from batchfit import distributed

    error: Exception | None = None
    try:
        result = fn()
    except Exception as e:
        error = e
    if distributed.is_distributed():
        failed = distributed.gather_objects(error is not None)
        if any(failed):
            if error is not None and failed.index(True) == distributed.rank():
                raise error
            raise OtherRankFailed from error
    if error is not None:
        raise error
    return result


def on_main(fn: Callable[[], T]) -> T:
    """`fn()` on rank 0 only; every rank returns its result (or fails with it)."""
    from batchfit import distributed

    if not distributed.is_distributed():
        return fn()
    outcome: tuple[bool, Any] | None = None
    error: Exception | None = None
    if distributed.is_main():
        try:
            outcome = (True, fn())
        except Exception as e:
            error, outcome = e, (False, None)
    ok, result = distributed.gather_objects(outcome)[0]
    if not ok:
        if error is not None:
            raise error
        raise OtherRankFailed
    return result


def sum_over_ranks(value: int | None) -> int | None:
    """`value` added over the ranks (None when any rank has none); one process: `value`."""
    from batchfit import distributed

    if not distributed.is_distributed():
        return value
    values = distributed.gather_objects(value)
    return None if any(v is None for v in values) else sum(values)
