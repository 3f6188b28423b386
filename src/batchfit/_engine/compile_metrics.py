"""The loss tracker and the compiled metrics of one model, as one object (Keras' CompileMetrics).

Every value is a sum kept on the device (NOTE [ Lazy logs ] in `logs.py`):
`update` adds a batch without reading anything back, `results` divides, and
`states` are the tensors that a backup saves and that ranks add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from batchfit import losses as losses_module
from batchfit import metrics as metrics_module
from batchfit._engine.batches import TensorBatch
from batchfit._engine.outputs import OutputSpec

__all__ = ["CompileMetrics"]


class CompileMetrics:
    """`loss` plus the metrics given to `compile`, resolved on the first batch.

    Args:
        specs: what the user passed as `metrics` (names, Metric objects, callables,
            or `OutputSpec`s of a model with several outputs).
        device: where the sums live.
    """

    def __init__(self, specs: Sequence[Any], device: torch.device) -> None:
        self.specs = list(specs)
        self.loss_tracker = metrics_module.Mean("loss")
        self.loss_tracker.to(device)
        self.metrics: list[metrics_module.Metric] = []
        self.device = device

    def needs_predictions(self, loss: losses_module.Loss | None) -> bool:
        """Whether resolving a metric ('accuracy' without a telling loss) needs y_pred."""
        return any(
            spec.needs_batch(loss)
            if isinstance(spec, OutputSpec)
            else metrics_module.needs_batch_to_resolve(spec, loss)
            for spec in self.specs
        )

    def build(self, loss: losses_module.Loss | None, y_true: Any, y_pred: Any) -> None:
        """Resolve names to Metric objects, the Keras way (by loss, else by shapes)."""
        self.metrics = [
            (
                spec.resolve(loss, y_true, y_pred)
                if isinstance(spec, OutputSpec)
                else metrics_module.get(spec, loss, y_true, y_pred)
            ).to(self.device)
            for spec in self.specs
        ]

    @property
    def names(self) -> list[str]:
        return ["loss", *[m.name for m in self.metrics]]

    def update(self, loss: torch.Tensor, batch: TensorBatch, y_pred: Any) -> None:
        """Add one batch (the loss weighted by the batch's rows, as Keras)."""
        self.loss_tracker.add_mean(loss, batch.size)
        if batch.y is not None:
            for m in self.metrics:
                m.update_state(batch.y, y_pred, batch.sample_weight)

    def reset(self) -> None:
        self.loss_tracker.reset_state()
        for m in self.metrics:
            m.reset_state()

    def results(self) -> dict[str, torch.Tensor]:
        """Current values as 0-d tensors (no host sync)."""
        out = {"loss": self.loss_tracker.result()}
        for m in self.metrics:
            out[m.name] = m.result()
        return out

    def batch_results(
        self, loss: torch.Tensor | float, batch: TensorBatch, y_pred: Any
    ) -> dict[str, float]:
        """One batch's loss and metrics as floats, leaving the running sums alone."""
        out = {"loss": loss if isinstance(loss, float) else loss.item()}
        if batch.y is not None:
            for m in self.metrics:
                out[m.name] = m.batch_result(batch.y, y_pred, batch.sample_weight).item()
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
