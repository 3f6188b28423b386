"""The loss tracker and the compiled metrics of one model, as one object (Keras' CompileMetrics).

Every value is a sum kept on the device (NOTE [ Lazy logs ] in `logs.py`):
`update` adds a batch without reading anything back, `results` divides, and
`states` are the tensors that a backup saves and that ranks add up.

NOTE [ Weighted and unweighted metrics ]
As in Keras 3, the metrics given to `compile(metrics=...)` ignore
`sample_weight` and `class_weight` (only the loss is weighted); those given to
`compile(weighted_metrics=...)` receive them. A weighted metric whose name is
already taken by an unweighted one is logged as `weighted_<name>`, and a
repeated name gets `_1`, `_2`, ... (Keras' `CompileMetrics.result`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from batchfit import losses as losses_module
from batchfit import metrics as metrics_module
from batchfit._engine import outputs
from batchfit._engine.batches import TensorBatch
from batchfit._engine.outputs import OutputSpec

__all__ = ["CompileMetrics", "Weighted", "weighted_specs"]


class Weighted:
    """A `weighted_metrics` entry: the metric receives the batch's sample weights."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec if isinstance(self.spec, str) else getattr(self.spec, "name", "metric")


def weighted_specs(weighted_metrics: Any, loss: Any = None, loss_weights: Any = None) -> list[Any]:
    """`compile(weighted_metrics=...)` as specs for `CompileMetrics` (per output if `loss` is)."""
    if not weighted_metrics:
        return []
    if outputs.is_structured(loss):
        _, specs, _ = outputs.compile_outputs(loss, loss_weights, weighted_metrics)
        return [Weighted(s) for s in specs if isinstance(s, outputs.OutputSpec)]
    if isinstance(weighted_metrics, str):
        weighted_metrics = [weighted_metrics]
    if not isinstance(weighted_metrics, (list, tuple)):
        raise ValueError(
            "weighted_metrics must be a list of metrics (names, Metric objects or "
            f"functions), got {type(weighted_metrics).__name__}"
        )
    for spec in weighted_metrics:
        if isinstance(spec, str) and not metrics_module.is_known(spec):
            raise ValueError(
                f"unknown metric {spec!r} in weighted_metrics; valid names: "
                f"{', '.join(metrics_module.names())}"
            )
    return [Weighted(s) for s in weighted_metrics]


def saved_specs(specs: Sequence[Any]) -> list[Any]:
    """What `save` records of compile's metrics: names, and configs of registered classes.

    A function or an unregistered class is not recorded: loading runs no code.
    """
    saved: list[Any] = []
    for spec in specs:
        spec = spec.spec if isinstance(spec, Weighted) else spec
        if isinstance(spec, str):
            saved.append(spec)
        elif isinstance(spec, metrics_module.Metric) and metrics_module.is_registered(spec):
            saved.append(metrics_module.serialize(spec))
    return saved


def _scalar(value: torch.Tensor) -> torch.Tensor:
    """A metric's value for the logs: a per-class result (F1Score(), Precision at several
    thresholds) is logged as its mean, the figure Keras' progress bar shows (Keras'
    History keeps the vector; `metric.result()` still returns it)."""
    return value if value.numel() == 1 else value.mean()


def _keras_names(metrics: Sequence[metrics_module.Metric], weighted: Sequence[bool]) -> list[str]:
    """The log names Keras 3 gives: `weighted_` before a taken weighted name, then `_1`, ..."""
    taken: dict[str, int] = {}
    out = []
    for metric, is_weighted in zip(metrics, weighted, strict=True):
        name = metric.name
        if name in taken and is_weighted:
            name = (
                f"weighted_{name}"
                if not isinstance(metric, outputs.OutputMetric)
                else (f"{name[: -len(metric.inner.name)]}weighted_{metric.inner.name}")
            )
        if name in taken:
            taken[name] += 1
            name = f"{name}_{taken[name] - 1}"
        else:
            taken[name] = 1
        out.append(name)
    return out


class CompileMetrics:
    """`loss` plus the metrics given to `compile`, resolved on the first batch.

    Args:
        specs: what the user passed as `metrics` (names, Metric objects, callables,
            or `OutputSpec`s of a model with several outputs), then the
            `weighted_metrics` wrapped in `Weighted` (see NOTE [ Weighted and
            unweighted metrics ]).
        device: where the sums live.
    """

    def __init__(self, specs: Sequence[Any], device: torch.device) -> None:
        self.specs = list(specs)
        self.loss_tracker = metrics_module.Mean("loss")
        self.loss_tracker.to(device)
        self.metrics: list[metrics_module.Metric] = []
        #: per metric: whether it receives sample weights (a `weighted_metrics` entry)
        self.weighted: list[bool] = []
        self._names: list[str] = []
        self.device = device

    def needs_predictions(self, loss: losses_module.Loss | None) -> bool:
        """Whether resolving a metric ('accuracy' without a telling loss) needs y_pred."""
        inner = [spec.spec if isinstance(spec, Weighted) else spec for spec in self.specs]
        return any(
            spec.needs_batch(loss)
            if isinstance(spec, OutputSpec)
            else metrics_module.needs_batch_to_resolve(spec, loss)
            for spec in inner
        )

    def build(self, loss: losses_module.Loss | None, y_true: Any, y_pred: Any) -> None:
        """Resolve names to Metric objects, the Keras way (by loss, else by shapes)."""
        self.weighted = [isinstance(spec, Weighted) for spec in self.specs]
        inner = [spec.spec if isinstance(spec, Weighted) else spec for spec in self.specs]
        self.metrics = [
            (
                spec.resolve(loss, y_true, y_pred)
                if isinstance(spec, OutputSpec)
                else metrics_module.get(spec, loss, y_true, y_pred)
            ).to(self.device)
            for spec in inner
        ]
        if isinstance(y_true, torch.Tensor):
            for metric in self.metrics:
                metric.build(y_true, y_pred)
        self._names = _keras_names(self.metrics, self.weighted)

    @property
    def names(self) -> list[str]:
        return ["loss", *self._names]

    def update(self, loss: torch.Tensor, batch: TensorBatch, y_pred: Any) -> None:
        """Add one batch (the loss weighted by the batch's rows, as Keras).

        Only `weighted_metrics` see the sample (and class) weights.
        """
        self.loss_tracker.add_mean(loss, batch.size)
        if batch.y is not None:
            for m, weighted in zip(self.metrics, self.weighted, strict=True):
                m.update_state(batch.y, y_pred, batch.sample_weight if weighted else None)

    def reset(self) -> None:
        self.loss_tracker.reset_state()
        for m in self.metrics:
            m.reset_state()

    def results(self) -> dict[str, torch.Tensor]:
        """Current values as 0-d tensors (no host sync)."""
        out = {"loss": self.loss_tracker.result()}
        for name, m in zip(self._names, self.metrics, strict=True):
            out[name] = _scalar(m.result())
        return out

    def batch_results(
        self, loss: torch.Tensor | float, batch: TensorBatch, y_pred: Any
    ) -> dict[str, float]:
        """One batch's loss and metrics as floats, leaving the running sums alone."""
        out = {"loss": loss if isinstance(loss, float) else loss.item()}
        if batch.y is not None:
            for name, m, weighted in zip(self._names, self.metrics, self.weighted, strict=True):
                weights = batch.sample_weight if weighted else None
                out[name] = _scalar(m.batch_result(batch.y, y_pred, weights)).item()
        return out

    def states(self) -> list[torch.Tensor]:
        """The sum tensors, in a fixed order (for backups and all-reduce)."""
        states = list(self.loss_tracker.states().values())
        for m in self.metrics:
            states.extend(m.states().values())
        return states

    def load_states(self, saved: Sequence[torch.Tensor]) -> None:
        own = self.states()
        if len(own) != len(saved):
            raise ValueError(
                f"the backup holds {len(saved)} metric states, the model has {len(own)}"
            )
        for mine, value in zip(own, saved):
            mine.copy_(value)

    def sync(self) -> None:
        """Add every rank's sums (see NOTE [ Distributed training ])."""
        from batchfit import distributed

        if distributed.is_distributed():
            distributed.all_reduce_sum_(self.states())

    def to(self, device: torch.device) -> None:
        self.device = device
        self.loss_tracker.to(device)
        for m in self.metrics:
            m.to(device)
