"""The `batchfit fit` progress display: rows per second, loss and ETA per epoch."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping
from typing import Any

from batchfit.callbacks import Callback
from batchfit.cli.split import RowSplit
from batchfit.distributed import say, sum_over_ranks

__all__ = ["RowProgress", "SkippedRows"]


class RowProgress(Callback):
    """Progress per epoch in rows: a live bar (rows/s, loss, ETA) on a terminal, lines otherwise.

    Rows come from the training `RowSplit`, which counts what it yields; the
    total is estimated from the files until the first epoch has counted it.
    Metrics are read only when the display refreshes (a host sync each time).
    Under torchrun every rank runs it (the epoch's row count is added across
    ranks) and rank 0 shows it; mid-epoch counts are rank 0's times the ranks.
    """

    def __init__(
        self, train: RowSplit, rows_estimate: int | None, live: bool, interval: float = 0.5
    ) -> None:
        super().__init__()
        self.train, self.rows_estimate, self.live, self.interval = (
            train,
            rows_estimate,
            live,
            interval,
        )
        self._bar: Any = None
        self._start = 0.0
        self._next = 0.0
        self._rows_last_epoch: int | None = None  # over every rank
        from batchfit import distributed

        self._show, self._ranks = distributed.is_main(), distributed.world_size()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._start = time.perf_counter()
        self._next = self._start + (self.interval if self.live else 30.0)
        total = self._rows_last_epoch or self.rows_estimate
        if self.live and self._show:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=f"Epoch {epoch + 1}/{self.params.get('epochs')}",
                unit="rows",
                unit_scale=True,
                ncols=min(shutil.get_terminal_size((100, 24)).columns or 100, 120),
                file=sys.stdout,
            )

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        now = time.perf_counter()
        if now < self._next or not self._show:
            return
        self._next = now + (self.interval if self.live else 30.0)
        rows = self.train.rows_this_epoch * self._ranks
        shown = {k: f"{v:.4g}" for k, v in (logs or {}).items()}  # host sync: reads metrics
        if self._bar is not None:
            self._bar.update(rows - self._bar.n)
            self._bar.set_postfix(shown, refresh=True)
        else:
            rate = rows / max(now - self._start, 1e-9)
            say(
                f"  {rows:,} rows, {rate:,.0f} rows/s, "
                + ", ".join(f"{k} {v}" for k, v in shown.items())
            )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        elapsed = time.perf_counter() - self._start
        rows = sum_over_ranks(self.train.rows_this_epoch) or 0  # every rank calls this
        self._rows_last_epoch = rows
        if self._bar is not None:
            self._bar.update(rows - self._bar.n)
            self._bar.close()
            self._bar = None
        values = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items())
        say(
            f"Epoch {epoch + 1}/{self.params.get('epochs')}: {rows:,} rows in {elapsed:.1f}s "
            f"({rows / max(elapsed, 1e-9):,.0f} rows/s) - {values}"
        )

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class SkippedRows(Callback):
    """Adds `skipped_rows` (bad, missing-target or incomplete rows this epoch) to the logs.

    Placed before `CSVLogger` and `History`, so the count lands in
    `history.csv` and the returned history. The counts are the training
    source's, added across ranks under torchrun (every rank runs it).
    """

    def __init__(self, train: RowSplit) -> None:
        super().__init__()
        self.train = train

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        stats = getattr(self.train.inner, "stats", {})
        mine = sum(v for k, v in stats.items() if k.endswith("_skipped"))
        if isinstance(logs, dict):
            logs["skipped_rows"] = float(sum_over_ranks(mine) or 0)
