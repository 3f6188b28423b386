"""The metric protocol: state tensors kept as sums on the device.

A metric's state is a few tensors (`states()`); `update_state` adds to them
without reading them back, `result()` divides. Nothing here syncs with the
host: the loop turns results into floats only when someone reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "Mean",
    "MeanMetricWrapper",
    "Metric",
    "Sum",
    "as_tensor",
    "squared_error",
]


def squared_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    return (y_pred - y_true) ** 2


def as_tensor(value: Any, like: torch.Tensor | None = None) -> torch.Tensor:
    """`value` as a float tensor (NumPy arrays, lists and Python floats welcome)."""
    if isinstance(value, torch.Tensor):
        return value
    device = like.device if like is not None else None
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    return torch.as_tensor(value, dtype=dtype, device=device)


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


class Metric:
    """Base metric: state tensors plus `update_state`, `result`, `reset_state`.

    Args:
        name: the name in the logs (default: the class name in snake case).
        dtype: Keras' result dtype, kept for `get_config`; the sums are float64
            (float32 on MPS), so long runs do not lose counts.
    """

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or _snake_case(type(self).__name__)
        self.dtype = dtype if isinstance(dtype, str) or dtype is None else str(dtype)
        self._states: dict[str, torch.Tensor] = {}

    def add_state(self, name: str, shape: tuple[int, ...] = ()) -> torch.Tensor:
        t = torch.zeros(shape, dtype=torch.float64)
        self._states[name] = t
        return t

    def states(self) -> dict[str, torch.Tensor]:
        """The sums that make the result; adding two metrics' states merges them."""
        return self._states

    def build(self, y_true: Any, y_pred: Any) -> None:
        """Create states whose shape depends on the data (per class or output column).

        `compile` calls it with the first batch, so the list of states (saved in
        backups, added across ranks) is fixed before the first update; a
        standalone metric builds at its first `update_state`.
        """

    @property
    def variables(self) -> list[torch.Tensor]:
        """The state tensors (Keras' metric variables)."""
        return list(self.states().values())

    def to(self, device: torch.device) -> Metric:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self._states = {k: v.to(device, dtype) for k, v in self._states.items()}
        return self

    def reset_state(self) -> None:
        for t in self._states.values():
            t.zero_()

    def reset_states(self) -> None:
        """Keras 2's spelling of `reset_state`."""
        self.reset_state()

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        raise NotImplementedError

    def result(self) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Update with one batch and return the running result, as Keras' `metric(...)`."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments; `type(m)(**m.get_config())` makes the same metric."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        """This batch's value alone; the running state is left as it was."""
        saved = {k: v.clone() for k, v in self.states().items()}
        self.reset_state()
        self.update_state(y_true, y_pred, sample_weight)
        value = self.result()
        for key, tensor in self.states().items():
            if key in saved:
                tensor.copy_(saved[key])
            else:  # a state built by this batch (e.g. per output column)
                tensor.zero_()
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _weights_like(values: torch.Tensor, sample_weight: Any) -> torch.Tensor:
    """Sample weights broadcast over `values`' trailing axes (Keras' rank matching)."""
    w = as_tensor(sample_weight, values).to(values.dtype)
    while w.dim() > values.dim() and w.shape[-1] == 1:
        w = w.squeeze(-1)
    if w.dim() == 0:
        return w.expand_as(values)
    w = w.reshape(w.shape + (1,) * (values.dim() - w.dim()))
    return w.expand_as(values)


def _sample_weight(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`sample_weight` of a `(values, sample_weight=None)` call, given either way."""
    if len(args) > 1 or set(kwargs) - {"sample_weight"}:
        raise TypeError(
            "update_state takes (values, sample_weight=None), got "
            f"{len(args) + 1} positional arguments and keywords {sorted(kwargs)}"
        )
    return args[0] if args else kwargs.get("sample_weight")


class Mean(Metric):
    """Weighted mean of values: states `total` and `count`.

    Unweighted counts are known on the host, so they accumulate in a Python
    number and join the `count` tensor only when the state is read: one
    device op less per batch.
    """

    def __init__(self, name: str = "mean", dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.add_state("total")
        self.add_state("count")
        self._host_count = 0

    def _flush(self) -> None:
        if self._host_count:
            self._states["count"].add_(self._host_count)
            self._host_count = 0

    def states(self) -> dict[str, torch.Tensor]:
        self._flush()
        return self._states

    def reset_state(self) -> None:
        self._host_count = 0
        super().reset_state()

    def update_values(self, values: torch.Tensor, sample_weight: Any) -> None:
        """Add per-sample values (Keras: weights reduce values to the weights' rank)."""
        states = self._states
        if sample_weight is None:
            states["total"].add_(values.sum())
            self._host_count += values.numel()
        else:
            if values.dtype == torch.bool:
                values = values.float()
            w = as_tensor(sample_weight, values).to(values.dtype)
            while w.dim() > values.dim() and w.shape[-1] == 1:
                w = w.squeeze(-1)
            if w.dim() >= 1 and values.dim() > w.dim():
                values = values.mean(dim=tuple(range(w.dim(), values.dim())))
            w = _weights_like(values, w)
            # total/count is the weighted mean; Keras' per-sample averaging of both cancels
            states["total"].add_((values * w).sum())
            states["count"].add_(w.sum())

    def add_mean(self, mean: torch.Tensor, count: int) -> None:
        """Add a batch given as its mean over `count` samples (one device op)."""
        self._states["total"].add_(mean, alpha=count)
        self._host_count += count

    def update_state(self, values: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Add `values` (Keras' `update_state(values, sample_weight=None)`)."""
        self.update_values(as_tensor(values).detach(), _sample_weight(args, kwargs))

    def result(self) -> torch.Tensor:
        s = self.states()
        return s["total"] / s["count"].clamp_min(1e-12)


class Sum(Metric):
    """The (weighted) sum of values: state `total`."""

    def __init__(self, name: str = "sum", dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.add_state("total")

    def update_state(self, values: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Add `values` (Keras' `update_state(values, sample_weight=None)`)."""
        values = as_tensor(values).detach()
        sample_weight = _sample_weight(args, kwargs)
        if sample_weight is not None:
            if values.dtype == torch.bool:
                values = values.float()
            values = values * _weights_like(values, sample_weight)
        self._states["total"].add_(values.sum())

    def result(self) -> torch.Tensor:
        return self._states["total"].clone()


class MeanMetricWrapper(Mean):
    """The mean of `fn(y_true, y_pred, **kwargs)` over samples (and the last axis).

    Args:
        fn: a function of `(y_true, y_pred)` returning per-sample or
            per-element values (a tensor, or a Python float for the batch).
        name: the name in the logs.
        dtype: kept for `get_config`.
        reshape_targets: add a trailing 1 to targets of shape `(N,)` when the
            predictions are `(N, 1)`.
        **kwargs: passed to `fn`.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        dtype: Any = None,
        reshape_targets: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name or str(getattr(fn, "__name__", "metric")), dtype)
        self.fn = fn
        self.reshape_targets = reshape_targets
        self._fn_kwargs = kwargs

    def _values(self, y_true: Any, y_pred: Any) -> torch.Tensor:
        y_pred = as_tensor(y_pred)
        y_true = as_tensor(y_true, y_pred if not isinstance(y_true, torch.Tensor) else None)
        if (
            self.reshape_targets
            and y_true.shape != y_pred.shape
            and y_true.dim() == y_pred.dim() - 1
            and y_pred.shape[-1] == 1
        ):
            y_true = y_true.unsqueeze(-1)
        values = self.fn(y_true, y_pred, **self._fn_kwargs)
        if not isinstance(values, torch.Tensor):  # a Python float: the batch's value
            values = torch.tensor(float(values), device=y_pred.device)
        return values.detach()

    def update_state(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any = None,
    ) -> None:
        values = self._values(y_true, y_pred)
        if sample_weight is not None and values.dim() == 0:  # one value for the batch
            values = values.expand(as_tensor(sample_weight).shape[:1])
        if sample_weight is not None and values.dim() > 1:
            values = values.to(torch.float32) if values.dtype == torch.bool else values
            values = values.mean(dim=-1)
        self.update_values(values, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        if sample_weight is not None or type(self).result is not MeanMetricWrapper.result:
            return super().batch_result(y_true, y_pred, sample_weight)
        values = self._values(y_true, y_pred)
        return values.sum() / values.numel()
