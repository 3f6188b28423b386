"""`Progbar`: Keras 3's text progress bar, used by `fit`'s progress line and hand loops.

The line is Keras' own (`keras/src/utils/progbar.py`):

    32/32 ━━━━━━━━━━━━━━━━━━━━ 1s 3ms/step - accuracy: 0.9000 - loss: 4.5749e-06

It is written whole, never cut to the terminal's width (the terminal wraps a
long line, so validation metrics stay readable; a 0x0 terminal changes
nothing), redrawn in place on a terminal and, elsewhere, written once when the
bar finishes, so that logs hold one line per epoch rather than a line per redraw.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Progbar", "format_value"]

_BOLD, _GREEN, _GREY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


def format_value(value: float, *, signed: bool = True) -> str:
    """Keras' number format: 4 decimals, or scientific below 1e-3 (`4.5749e-06`).

    `signed=False` is Keras' verbose=2 rule, which compares the value itself (so a
    negative value prints in scientific form there)."""
    small = abs(value) <= 1e-3 if signed else value <= 1e-3
    return f"{value:.4e}" if small else f"{value:.4f}"


def _format_time(per_unit: float, unit_name: str) -> str:
    if per_unit >= 1 or per_unit == 0:
        return f" {per_unit:.0f}s/{unit_name}"
    if per_unit >= 1e-3:
        return f" {per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {per_unit * 1e6:.0f}us/{unit_name}"


def _format_eta(eta: float) -> str:
    if eta > 3600:
        return f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
    if eta > 60:
        return f"{int(eta // 60)}:{int(eta % 60):02d}"
    return f"{int(eta)}s"


class Progbar:
    """A progress bar with running means of named values (Keras' `keras.utils.Progbar`).

    Args:
        target: total number of steps, or None if unknown.
        width: bar width in characters.
        verbose: 0 silent, 1 a live bar, 2 one line at the end.
        interval: minimum seconds between redraws.
        stateful_metrics: names whose values are shown as given, not averaged.
        unit_name: what a step is called ('step').
        file: where to write (default `sys.stdout` at each write).

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
        stateless_metrics: Iterable[str] | None = None,
    ) -> None:
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        #: with neither set, every value is averaged, as in Keras
        self.stateful_metrics = None if stateful_metrics is None else set(stateful_metrics)
        self.stateless_metrics = None if stateless_metrics is None else set(stateless_metrics)
        self.unit_name = unit_name
        self.file = file
        self._values: dict[str, list[float]] = {}  # name -> [weighted sum, count]
        self._seen = 0
        self._start = time.time()
        self._after_first: float | None = None
        self._last_draw = 0.0
        self._prev_width = 0

    def _out(self) -> Any:
        return self.file if self.file is not None else sys.stdout

    @property
    def dynamic(self) -> bool:
        """Redraw in place (a terminal) or write the finished line only (a file, a pipe)."""
        isatty = getattr(self._out(), "isatty", None)
        try:
            return bool(isatty and isatty())
        except ValueError:  # a closed stream
            return False

    def due(self, finalize: bool = False) -> bool:
        """Whether an update now would draw: lets a caller skip reading its values."""
        if self.verbose == 0:
            return False
        if finalize:
            return True
        return self.verbose == 1 and self.dynamic and time.time() - self._last_draw >= self.interval

    def _stateless(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        if self.stateless_metrics is not None:
            return name in self.stateless_metrics
        return True

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
            if not self._stateless(name) or finalize:
                self._values[name] = [v, 1.0]
            else:
                steps = max(current - self._seen, 1)
                total = self._values.setdefault(name, [0.0, 0.0])
                total[0] += v * steps
                total[1] += steps
        self._seen = current
        now = time.time()
        per_step = self._step_duration(current, now)
        if not self.due(finalize):
            return
        self._last_draw = now
        out = self._out()
        if self.verbose == 1:
            out.write(self._live_line(current, now, per_step, finalize))
        elif self.target is not None and self.target > 0:
            out.write(self._final_line(current, now, per_step))
        out.flush()

    def add(self, n: int, values: Sequence[tuple[str, Any]] | None = None) -> None:
        """Advance by `n` steps."""
        self.update(self._seen + n, values)

    def _step_duration(self, current: int, now: float) -> float:
        if not current:
            return 0.0
        if self._after_first is not None and current > 1:
            per_step = (now - self._after_first) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._after_first = now
        return per_step

    def _metrics(self, signed: bool = True) -> str:
        return "".join(
            f" - {name}: {format_value(total / max(1.0, count), signed=signed)}"
            for name, (total, count) in self._values.items()
        )

    def _live_line(self, current: int, now: float, per_step: float, finalize: bool) -> str:
        dynamic = self.dynamic
        bold, green, grey, reset = (_BOLD, _GREEN, _GREY, _RESET) if dynamic else ("",) * 4
        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            done = int(self.width * current / self.target)
            bar = f"{bold}{current:>{digits}}/{self.target}{reset} "
            if done > 0:
                bar += f"{green}{'━' * done}{reset}"
            bar += f"{grey}{'━' * (self.width - done)}{reset}"
            visible = len(f"{current:>{digits}}/{self.target} ") + self.width
        else:
            bar = f"{current:7d}/Unknown"
            visible = len(bar)
        if self.target is not None and self.target > 0 and not finalize:
            clock = _format_eta(per_step * (self.target - current))
        else:
            clock = f"{now - self._start:.0f}s"
        info = f" {bold}{clock}{reset}{_format_time(per_step, self.unit_name)}{self._metrics()}"
        width = visible + len(f" {clock}{_format_time(per_step, self.unit_name)}{self._metrics()}")
        start = "\r" if dynamic else ""
        pad = " " * max(self._prev_width - width, 0) if dynamic else ""
        self._prev_width = width
        return f"{start}{bar}{info}{pad}" + ("\n" if finalize else "")

    def _final_line(self, current: int, now: float, per_step: float) -> str:
        assert self.target is not None
        digits = int(math.log10(self.target)) + 1
        head = f"{current:>{digits}}/{self.target} - {now - self._start:.0f}s"
        return f"{head} -{_format_time(per_step, self.unit_name)}{self._metrics(signed=False)}\n"
