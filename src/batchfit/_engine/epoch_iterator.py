"""The batches of each epoch of `fit`, and where the reading stands (Keras' EpochIterator)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from batchfit import distributed
from batchfit.data import Source, num_batches
from batchfit.data._fingerprint import describe_change

__all__ = ["ChangedDataError", "EpochIterator"]

_UNSET = object()


class ChangedDataError(ValueError):
    """The data a backup was taken on has changed; resuming would train on other rows."""


_SKIP_COUNTERS = ("bad_rows_skipped", "nan_rows_skipped")


class EpochIterator:
    """The batches of each epoch: the whole source, or `steps_per_epoch` of it.

    With `steps_per_epoch`, the source is read as one stream: an epoch of
    `fit` takes that many batches and the next one continues where it
    stopped. As in Keras 3 (`trainers/epoch_iterator.py`), a pass over the
    data never wraps around inside an epoch: when it runs out, the epoch ends
    early with Keras' "ran out of data" warning, and the next epoch starts the
    source's next pass. (So 5 batches of arrays with `steps_per_epoch=7` train
    5 batches an epoch, as Keras does, not 7 of a cycled stream.)
    """

    def __init__(self, source: Source, steps_per_epoch: int | None) -> None:
        self.source = source
        self.steps_per_epoch = steps_per_epoch
        self._open: Iterator[Any] | None = None
        #: the source's own epoch when it is read as a stream (None until first opened)
        self._source_epoch: int | None = None
        self._fingerprint: object = _UNSET

    @property
    def steps(self) -> int | None:
        """Batches in one epoch of `fit`, when known."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        return num_batches(self.source)

    def batches(self, epoch: int, start: int) -> Iterator[Any]:
        """The batches of `epoch` after the first `start` (already taken before a resume)."""
        if self.steps_per_epoch is None:
            self.source.set_epoch(epoch)
            yield from self.source
            return
        taken = start
        while taken < self.steps_per_epoch:
            fresh = self._open is None
            if self._open is None:
                if self._source_epoch is None:
                    self._source_epoch = epoch
                self.source.set_epoch(self._source_epoch)
                self._open = iter(self.source)
            got = False
            for batch in self._open:
                got = True
                yield batch
                taken += 1
                if taken == self.steps_per_epoch:
                    return
            self._open = None
            self._source_epoch = epoch if self._source_epoch is None else self._source_epoch + 1
            if fresh and not got:
                raise ValueError("the data source yielded no batches")
            if got or fresh:
                warnings.warn(
                    f"Your input ran out of data; interrupting the epoch after {taken} of "
                    f"steps_per_epoch={self.steps_per_epoch} batches (as Keras does). The next "
                    "epoch starts a new pass over the data; make steps_per_epoch at most the "
                    "batches in one pass to train that many every epoch.",
                    stacklevel=2,
                )
                return
            # spent exactly at the previous epoch's end: this epoch starts the next pass

    def fingerprint(self) -> dict[str, Any] | None:
        """The source's fingerprint, taken once (NOTE [ Data fingerprints ] in data/)."""
        if self._fingerprint is _UNSET:
            self._fingerprint = self.source.fingerprint()
        return self._fingerprint  # type: ignore[return-value]

    def state_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.state_dict(),
            "source_epoch": self._source_epoch,
            "fingerprint": self.fingerprint(),
        }

    def load_state_dict(self, state: Mapping[str, Any], check_data: bool = True) -> None:
        """Resume the reading where `state` says; refuse if the data changed since then.

        Raises:
            ChangedDataError: the source's data is not what the backup was taken on
                (unless `check_data` is False).
        """
        saved = state.get("fingerprint")
        if check_data and saved is not None:
            change = describe_change(saved, self.fingerprint())
            if change is not None:
                raise ChangedDataError(
                    f"cannot resume: {change}. The backup's position in the data would "
                    "point at other rows. Restore the data, start afresh (delete the backup), "
                    "or resume anyway with BackupAndRestore(..., check_data=False)"
                )
        self.source.load_state_dict(state["source"])
        saved = state.get("source_epoch")
        self._source_epoch = None if saved is None else int(saved)

    def close(self) -> None:
        """Release prefetch threads now rather than at garbage collection."""
        if self._open is not None:
            close = getattr(self._open, "close", None)
            if close is not None:
                close()
            self._open = None
        self.source.close()

    def skipped_rows(self) -> dict[str, float]:
        """Rows a source skipped this epoch (on_bad_rows/on_nan="skip"), summed over ranks."""
        source = self.source
        stats = getattr(source, "stats", None) or {}
        # only the counters of skipping the user asked for, so the history stays quiet otherwise
        keys = [
            key
            for key, option in zip(_SKIP_COUNTERS, ("on_bad_rows", "on_nan"))
            if key in stats and getattr(source, option, None) == "skip"
        ]
        if not keys:
            return {}
        counts = [float(stats[k]) for k in keys]
        if distributed.is_distributed():
            t = torch.tensor(counts, dtype=torch.float64, device=distributed.collective_device())
            distributed.all_reduce_sum_([t])
            counts = t.tolist()
        return dict(zip(keys, counts))
