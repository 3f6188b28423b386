"""The metric protocol: state tensors kept as sums on the device.

A metric's state is a few tensors (`states()`); `update_state` adds to them
without reading them back, `result()` divides. Nothing here syncs with the
host: the loop turns results into floats only when someone reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["Mean", "MeanMetricWrapper", "Metric", "RootMeanSquaredError", "squared_error"]


def squared_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    return (y_pred - y_true) ** 2


class Metric:
    """Base metric: state tensors plus `update_state`, `result`, `reset_state`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._states: dict[str, torch.Tensor] = {}

    def add_state(self, name: str, shape: tuple[int, ...] = ()) -> torch.Tensor:
        t = torch.zeros(shape, dtype=torch.float64)
        self._states[name] = t
        return t

    def states(self) -> dict[str, torch.Tensor]:
        """The sums that make the result; adding two metrics' states merges them."""
        return self._states

    def to(self, device: torch.device) -> Metric:
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self._states = {k: v.to(device, dtype) for k, v in self._states.items()}
        return self

    def reset_state(self) -> None:
        for t in self._states.values():
            t.zero_()

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        raise NotImplementedError

    def result(self) -> torch.Tensor:
        raise NotImplementedError

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        """This batch's value alone; the running state is left as it was."""
        saved = {k: v.clone() for k, v in self.states().items()}
        self.reset_state()
        self.update_state(y_true, y_pred, sample_weight)
        value = self.result()
        for key, tensor in self.states().items():
            tensor.copy_(saved[key])
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Mean(Metric):
    """Weighted mean of values: states `total` and `count`.

    Unweighted counts are known on the host, so they accumulate in a Python
    number and join the `count` tensor only when the state is read: one
    device op less per batch.
    """

    def __init__(self, name: str = "mean") -> None:
        super().__init__(name)
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

    def update_values(self, values: torch.Tensor, sample_weight: torch.Tensor | None) -> None:
        states = self._states
        if sample_weight is None:
            states["total"].add_(values.sum())
            self._host_count += values.numel()
        else:
            w = sample_weight.reshape(values.shape[:1] + (1,) * (values.dim() - 1))
            w = w.expand_as(values)
            states["total"].add_((values * w).sum())
            states["count"].add_(w.sum())

    def add_mean(self, mean: torch.Tensor, count: int) -> None:
        """Add a batch given as its mean over `count` samples (one device op)."""
        self._states["total"].add_(mean, alpha=count)
        self._host_count += count

    def update_state(self, values: torch.Tensor, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.update_values(values.detach(), kwargs.get("sample_weight"))

    def result(self) -> torch.Tensor:
        s = self.states()
        return s["total"] / s["count"].clamp_min(1e-12)


class MeanMetricWrapper(Mean):
    """The mean of `fn(y_true, y_pred)` over samples (and the last axis)."""

    def __init__(
        self,
        fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        name: str,
        reshape_targets: bool = True,
    ) -> None:
        super().__init__(name)
        self.fn = fn
        self.reshape_targets = reshape_targets

    def update_state(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> None:
        if (
            self.reshape_targets
            and y_true.shape != y_pred.shape
            and y_true.dim() == y_pred.dim() - 1
            and y_pred.shape[-1] == 1
        ):
            y_true = y_true.unsqueeze(-1)
        values = self.fn(y_true, y_pred)
        if sample_weight is not None:
            if values.dtype == torch.bool:
                values = values.to(y_pred.dtype)
            if values.dim() > 1:
                values = values.mean(dim=-1)
        self.update_values(values, sample_weight)

    def batch_result(
        self, y_true: torch.Tensor, y_pred: torch.Tensor, sample_weight: torch.Tensor | None
    ) -> torch.Tensor:
        if sample_weight is not None or type(self).result is not MeanMetricWrapper.result:
            return super().batch_result(y_true, y_pred, sample_weight)
        if self.reshape_targets and y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        values = self.fn(y_true, y_pred)
        return values.sum() / values.numel()


class RootMeanSquaredError(MeanMetricWrapper):
    """sqrt of the mean squared error over everything seen."""

    def __init__(self, name: str = "root_mean_squared_error") -> None:
        super().__init__(squared_error, name)

    def result(self) -> torch.Tensor:
        return super().result().sqrt()
