"""`Progbar`: Keras' text progress bar for hand-written loops."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Progbar"]


class Progbar:
    """A progress bar with running means of named values (Keras' `keras.utils.Progbar`).

    Args:
        target: total number of steps, or None if unknown.
        width: bar width in characters.
        verbose: 0 silent, 1 a live bar, 2 one line at the end.
        interval: minimum seconds between redraws.
        stateful_metrics: names whose values are shown as given, not averaged.
        unit_name: what a step is called ('step').

    Example:
        >>> bar = Progbar(100)
        >>> for i in range(100):
        ...     bar.update(i + 1, values=[("loss", 0.5)])
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
        file: Any = None,
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.stateful_metrics = set(stateful_metrics or ())
        self.unit_name = unit_name
        self.file = file
        self._sums: dict[str, list[float]] = {}  # name -> [weighted sum, count]
        self._seen = 0
        self._start = time.time()
        self._last_draw = 0.0

    def update(
        self,
        current: int,
        values: Sequence[tuple[str, Any]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Move to step `current`, adding `values` (name, value) to the running means."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            v = float(np.asarray(value))
            if name in self.stateful_metrics:
                self._sums[name] = [v, 1.0]
            else:
                steps = max(current - self._seen, 1)
                total = self._sums.setdefault(name, [0.0, 0.0])
                total[0] += v * steps
                total[1] += steps
        self._seen = current
        now = time.time()
        if self.verbose == 0 or (
            not finalize and (self.verbose == 2 or now - self._last_draw < self.interval)
        ):
            return
        self._last_draw = now
        out = self.file or sys.stdout
        line = self._line(current, now)
        out.write(("\r" if self.verbose == 1 else "") + line + ("\n" if finalize else ""))
        out.flush()

    def add(self, n: int, values: Sequence[tuple[str, Any]] | None = None) -> None:
        """Advance by `n` steps."""
        self.update(self._seen + n, values)

    def _line(self, current: int, now: float) -> str:
        if self.target is not None:
            digits = len(str(self.target))
            done = int(self.width * current / max(self.target, 1))
            bar = "=" * max(done - 1, 0) + (">" if current < self.target else "=") * (done > 0)
            head = f"{current:>{digits}}/{self.target} [{bar:<{self.width}}]"
        else:
            head = f"{current:>7}/Unknown"
        elapsed = now - self._start
        per_step = elapsed / max(current, 1)
        parts = [head, f"{elapsed:.0f}s {per_step * 1e3:.0f}ms/{self.unit_name}"]
        for name, (total, count) in self._sums.items():
            parts.append(f"{name}: {total / max(count, 1):.4f}")
        return " - ".join(parts)
