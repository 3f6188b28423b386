"""Background prefetch: run an iterator in a thread, hand items over a bounded queue.

Reading and parsing (pyarrow, polars, NumPy) release the GIL, so a producer
thread overlaps them with the training step. The queue bounds memory to
`depth` items. `close()` stops the thread promptly whether the consumer
finished, stopped early, or the producer is blocked on a full queue; a
producer error is re-raised in the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Prefetcher"]

T = TypeVar("T")
_ITEM, _DONE, _ERROR = 0, 1, 2
_POLL_SECONDS = 0.05


class Prefetcher(Generic[T]):
    """Iterate `make_iterator()` in a daemon thread, `depth` items ahead.

    Args:
        make_iterator: builds the iterator; called inside the thread so that
            opening files also overlaps with the consumer.
        depth: items buffered ahead (at least 1).
        name: thread name, to spot it in a debugger.
    """

    def __init__(self, make_iterator: Callable[[], Iterator[T]], depth: int, name: str) -> None:
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._make_iterator = make_iterator
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = self._make_iterator()
            for item in iterator:
                if not self._put((_ITEM, item)):
                    return
            self._put((_DONE, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._put((_ERROR, error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # closes files held by generator pipelines

    def _put(self, message: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the prefetch thread stopped without a result") from None
                continue
            if kind == _DONE:
                return
            if kind == _ERROR:
                raise value
            yield value

    def close(self, timeout: float = 30.0) -> None:
        """Stop the producer and wait for its thread to end."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
