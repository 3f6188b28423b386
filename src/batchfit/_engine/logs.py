"""Logs that become Python floats only when read (see NOTE [ Lazy logs ]).

NOTE [ Lazy logs ]
Reading a metric on a GPU waits for the device, so `fit` never reads one per
batch on its own account. Callbacks receive a `Logs` mapping whose values are
computed and turned into floats on first access; a callback that does not look
costs nothing, and one that looks pays one host sync.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

__all__ = ["Logs", "format_return", "resolve_verbose"]


class Logs(Mapping[str, float]):
    """A read-only mapping of metric name to float, computed on first access."""

    __slots__ = ("_compute", "_extra", "_values")

    def __init__(
        self,
        compute: Callable[[], Mapping[str, torch.Tensor | float]] | None = None,
        extra: Mapping[str, float] | None = None,
    ) -> None:
        self._compute = compute
        self._values: dict[str, float] | None = None
        self._extra = dict(extra or {})

    def _materialise(self) -> dict[str, float]:
        if self._values is None:
            raw = dict(self._compute()) if self._compute is not None else {}
            values = {k: _to_float(v) for k, v in raw.items()}
            values.update(self._extra)
            self._values = values
        return self._values

    def __getitem__(self, key: str) -> float:
        return self._materialise()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._materialise())

    def __len__(self) -> int:
        return len(self._materialise())

    def __setitem__(self, key: str, value: float) -> None:
        # Keras callbacks sometimes add entries (e.g. ReduceLROnPlateau adds 'learning_rate')
        self._materialise()[key] = value

    def __repr__(self) -> str:
        return f"Logs({self._materialise()!r})"


def _to_float(v: torch.Tensor | float) -> float:
    if isinstance(v, torch.Tensor):
        return float(v.item())
    return float(v)


def format_return(
    values: Mapping[str, float], return_dict: bool, names: Sequence[str] | None = None
) -> float | list[float] | dict[str, float]:
    """Keras' return convention: scalar loss alone, `[loss, *metrics]`, or a dict."""
    if return_dict:
        return dict(values)
    ordered = [values[n] for n in (names or list(values))]
    return ordered[0] if len(ordered) == 1 else ordered


def resolve_verbose(verbose: int | str) -> int:
    """Keras' 'auto': a live bar on a terminal, one line per epoch otherwise."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)
