"""Models with several outputs: a loss, a weight and metrics per output, as Keras.

NOTE [ Several outputs ]
A module may return a dict of tensors or a tuple/list of them. `compile` then
takes `loss={"price": "mse", "kind": "sparse_categorical_crossentropy"}` (or a
list in output order), `loss_weights` the same way, and `metrics` as a dict or
a list of lists (a flat list applies to every output). The step sees one
`Loss`: `MultiOutputLoss`, the weighted sum of the outputs' losses, so `fit`,
`train_on_batch`, accumulation, DDP and resume need nothing else. Targets come
in the same structure (a dict, or a tuple/list of arrays). The logs hold
`loss` (the weighted sum), `<output>_loss` per output and `<output>_<metric>`,
with outputs of a list named `output_1`, `output_2`, ... as Keras names
unnamed outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from batchfit import losses as losses_module
from batchfit import metrics as metrics_module

__all__ = [
    "MultiOutputLoss",
    "OutputLoss",
    "OutputMetric",
    "OutputSpec",
    "compile_outputs",
    "is_structured",
]

Key = str | int


def is_structured(spec: Any) -> bool:
    """Whether a `loss` argument names a loss per output (and is not one loss's config)."""
    if isinstance(spec, Mapping):
        return "class_name" not in spec or spec.get("class_name") == "MultiOutputLoss"
    return isinstance(spec, (list, tuple))


def _output_name(key: Key) -> str:
    return key if isinstance(key, str) else f"output_{key + 1}"


def _pick(values: Any, key: Key, what: str) -> Any:
    """The entry of `values` for one output, or an error naming what is missing."""
    if isinstance(key, str):
        if not isinstance(values, Mapping):
            raise ValueError(
                f"the loss is given per output name, so the {what} must be a dict with key "
                f"{key!r}; got {type(values).__name__}"
            )
        if key not in values:
            raise ValueError(
                f"the {what} have no entry {key!r} (the loss names outputs "
                f"{key!r}, ...); got keys {sorted(map(str, values))}"
            )
        return values[key]
    if not isinstance(values, (list, tuple)):
        raise ValueError(
            f"the loss is a list (one per output), so the {what} must be a tuple or list; "
            f"got {type(values).__name__}"
        )
    if key >= len(values):
        raise ValueError(
            f"the loss has an entry for output {key + 1}, the {what} only {len(values)}"
        )
    return values[key]


def _as_target(loss: losses_module.Loss, y: torch.Tensor) -> torch.Tensor:
    if loss.sparse_targets:
        return y if y.dtype == torch.int64 else y.long()
    return y if y.dtype == torch.float32 else y.float()


class MultiOutputLoss(losses_module.Loss):
    """The weighted sum of one loss per output; keeps each output's last value for the logs."""

    name = "loss"
    elementwise = False

    def __init__(self, parts: Mapping[Key, losses_module.Loss], weights: Mapping[Key, float]):
        super().__init__()
        self.parts = dict(parts)
        self.weights = {key: float(weights.get(key, 1.0)) for key in self.parts}
        self.last: dict[Key, torch.Tensor] = {}

    def __call__(
        self, y_true: Any, y_pred: Any, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        total: torch.Tensor | None = None
        for key, loss in self.parts.items():
            target = _as_target(loss, _pick(y_true, key, "targets"))
            try:
                value = loss(target, _pick(y_pred, key, "model's outputs"), sample_weight)
            except ValueError as err:
                raise ValueError(f"output {_output_name(key)!r}: {err}") from None
            self.last[key] = value.detach()
            weighted = value * self.weights[key] if self.weights[key] != 1.0 else value
            total = weighted if total is None else total + weighted
        assert total is not None  # compile refuses an empty structure
        return total

    def get_config(self) -> dict[str, Any]:
        return {
            "class_name": "MultiOutputLoss",
            "by_name": all(isinstance(k, str) for k in self.parts),
            "losses": [[k, loss.get_config()] for k, loss in self.parts.items()],
            "weights": [[k, w] for k, w in self.weights.items()],
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MultiOutputLoss:
        parts = {k: losses_module.get(c) for k, c in config["losses"]}
        return cls(parts, dict((k, w) for k, w in config["weights"]))


class OutputLoss(metrics_module.Mean):
    """`<output>_loss` in the logs: the mean of one output's (unweighted) loss."""

    def __init__(self, loss: MultiOutputLoss, key: Key) -> None:
        super().__init__(f"{_output_name(key)}_loss")
        self._loss, self._key = loss, key

    def update_state(
        self, y_true: Any, y_pred: Any, sample_weight: torch.Tensor | None = None
    ) -> None:
        del y_true, sample_weight
        rows = _pick(y_pred, self._key, "model's outputs").shape[0]
        self.add_mean(self._loss.last[self._key], rows)


class OutputSpec:
    """A metric spec for one output, resolved (e.g. 'accuracy') at the first batch."""

    def __init__(self, key: Key, spec: Any) -> None:
        self.key, self.spec = key, spec

    @property
    def name(self) -> str:
        inner = self.spec if isinstance(self.spec, str) else getattr(self.spec, "name", "metric")
        return f"{_output_name(self.key)}_{inner}"

    def resolve(self, loss: losses_module.Loss | None, y_true: Any, y_pred: Any) -> OutputMetric:
        part = loss.parts.get(self.key) if isinstance(loss, MultiOutputLoss) else None
        yt = None if y_true is None else _pick(y_true, self.key, "targets")
        yp = None if y_pred is None else _pick(y_pred, self.key, "model's outputs")
        inner = metrics_module.get(self.spec, part, yt, yp)
        return OutputMetric(inner, self.key, part)

    def needs_batch(self, loss: losses_module.Loss | None) -> bool:
        part = loss.parts.get(self.key) if isinstance(loss, MultiOutputLoss) else None
        return metrics_module.needs_batch_to_resolve(self.spec, part)


class OutputMetric(metrics_module.Metric):
    """A metric of one output: it sees that output's targets and predictions only."""

    def __init__(
        self, inner: metrics_module.Metric, key: Key, loss: losses_module.Loss | None
    ) -> None:
        super().__init__(f"{_output_name(key)}_{inner.name}")
        self.inner, self._key, self._loss = inner, key, loss

    def to(self, device: torch.device) -> OutputMetric:
        self.inner.to(device)
        return self

    def states(self) -> dict[str, torch.Tensor]:
        return self.inner.states()

    def reset_state(self) -> None:
        self.inner.reset_state()

    def update_state(
        self, y_true: Any, y_pred: Any, sample_weight: torch.Tensor | None = None
    ) -> None:
        target = _pick(y_true, self._key, "targets")
        if self._loss is not None:
            target = _as_target(self._loss, target)
        self.inner.update_state(target, _pick(y_pred, self._key, "model's outputs"), sample_weight)

    def result(self) -> torch.Tensor:
        return self.inner.result()


def compile_outputs(
    loss: Any, loss_weights: Any, metrics: Any
) -> tuple[MultiOutputLoss, list[Any], Any]:
    """The loss, metric specs and JSON-friendly metric names of a several-output compile."""
    if isinstance(loss, Mapping) and loss.get("class_name") == "MultiOutputLoss":
        multi = MultiOutputLoss.from_config(loss)
    else:
        keys: list[Key] = list(loss) if isinstance(loss, Mapping) else list(range(len(loss)))
        if not keys:
            raise ValueError("loss is an empty dict/list: give at least one output's loss")
        specs = loss if isinstance(loss, Mapping) else dict(enumerate(loss))
        parts = {}
        for key in keys:
            try:
                parts[key] = losses_module.get(specs[key])
            except (ValueError, TypeError) as err:
                raise type(err)(f"loss of output {_output_name(key)!r}: {err}") from None
        multi = MultiOutputLoss(parts, _weights(keys, loss_weights))
    keys = list(multi.parts)
    per_output = _metrics_per_output(keys, metrics)
    specs_out: list[Any] = [OutputLoss(multi, key) for key in keys]
    for key in keys:
        for spec in per_output[key]:
            if isinstance(spec, str) and spec.lower() not in metrics_module.names():
                raise ValueError(
                    f"unknown metric {spec!r} for output {_output_name(key)!r}; "
                    f"valid names: {', '.join(metrics_module.names())}"
                )
            specs_out.append(OutputSpec(key, spec))
    names = {k: [s for s in per_output[k] if isinstance(s, str)] for k in keys}
    saved: Any = names if all(isinstance(k, str) for k in keys) else [names[k] for k in keys]
    return multi, specs_out, saved


def _weights(keys: Sequence[Key], loss_weights: Any) -> dict[Key, float]:
    if loss_weights is None:
        return {}
    if isinstance(loss_weights, Mapping):
        unknown = sorted(set(map(str, loss_weights)) - set(map(str, keys)))
        if unknown:
            raise ValueError(f"loss_weights names outputs {unknown} that the loss does not have")
        return {k: float(loss_weights[k]) for k in keys if k in loss_weights}
    weights = list(loss_weights)
    if len(weights) != len(keys):
        raise ValueError(f"loss_weights has {len(weights)} entries for {len(keys)} outputs")
    return {k: float(w) for k, w in zip(keys, weights, strict=True)}


def _metrics_per_output(keys: Sequence[Key], metrics: Any) -> dict[Key, list[Any]]:
    if metrics is None:
        return {k: [] for k in keys}
    if isinstance(metrics, str):
        metrics = [metrics]
    if isinstance(metrics, Mapping):
        unknown = sorted(set(map(str, metrics)) - set(map(str, keys)))
        if unknown:
            raise ValueError(f"metrics names outputs {unknown} that the loss does not have")
        return {k: _as_list(metrics.get(k)) for k in keys}
    metrics = list(metrics)
    if metrics and all(isinstance(m, (list, tuple)) or m is None for m in metrics):
        if len(metrics) != len(keys):
            raise ValueError(f"metrics has {len(metrics)} lists for {len(keys)} outputs")
        return {k: _as_list(m) for k, m in zip(keys, metrics, strict=True)}
    return {k: list(metrics) for k in keys}  # a flat list: every output gets each metric


def _as_list(spec: Any) -> list[Any]:
    if spec is None:
        return []
    return [spec] if isinstance(spec, str) or not isinstance(spec, (list, tuple)) else list(spec)
