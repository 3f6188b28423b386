"""What a source yields, made ready for the step: the one place batches are prepared.

NOTE [ Preparing a batch ]
A source yields `(x,)`, `(x, y)` or `(x, y, sample_weight)` of NumPy arrays,
tensors, or dicts/tuples of them. `BatchConverter.convert` unpacks it, folds
Keras' `class_weight` into the sample weights (float32, weights multiplied
after the cast, whichever caller it is), moves everything to the device with
the dtypes the loss needs, and counts the rows. `fit`, `evaluate`, `predict`
and the `*_on_batch` trio all go through it (via `Step.train_batch`, ...), so
the same raw batch always becomes the same tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from batchfit.optimizers import Optimizer

__all__ = [
    "BatchConverter",
    "TensorBatch",
    "batch_size_of",
    "class_weights_for",
    "detach",
    "first_rows",
    "move_optimizer_state",
    "to_numpy",
    "unpack",
]


@dataclass(slots=True)
class TensorBatch:
    """One batch on the device: inputs, targets, per-sample weights, and its row count."""

    x: Any
    y: Any
    sample_weight: torch.Tensor | None
    size: int


def unpack(batch: Any) -> tuple[Any, Any, Any]:
    """`(x, y, sample_weight)` from a batch of 1, 2 or 3 parts."""
    if isinstance(batch, tuple):
        n = len(batch)
        if n == 2:
            return batch[0], batch[1], None
        if n == 3:
            return batch
        if n == 1:
            return batch[0], None, None
    elif isinstance(batch, list):
        return unpack(tuple(batch))
    else:
        return batch, None, None
    raise ValueError(
        f"a batch must be (x,), (x, y) or (x, y, sample_weight); got {len(batch)} parts"
    )


def class_weights_for(y: Any, class_weight: Mapping[int, float]) -> np.ndarray:
    """Per-sample float32 weights from Keras' `class_weight` and the batch's labels."""
    labels = np.asarray(y.cpu() if hasattr(y, "cpu") else y)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(-1)
    else:
        labels = np.rint(labels.reshape(-1)).astype(np.int64)
    labels = labels.reshape(-1).astype(np.int64)
    classes = np.array(sorted(class_weight), dtype=np.int64)
    weights = np.array([class_weight[c] for c in classes], dtype=np.float32)
    where = np.searchsorted(classes, labels).clip(0, len(classes) - 1)
    missing = classes[where] != labels
    if missing.any():
        raise ValueError(
            f"class_weight has no weight for class {int(labels[missing][0])}; "
            f"it covers {classes.tolist()}"
        )
    return weights[where]


def _as_tensor(a: Any, device: torch.device) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a
    elif isinstance(a, np.ndarray):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"batches must hold numbers, got an array of dtype {a.dtype}")
        # torch refuses to share read-only memory (memmaps); copying is the safe path
        t = torch.from_numpy(a if a.flags.writeable else a.copy())
    else:
        arr = np.asarray(a)
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"batches must hold numbers, got {type(a).__name__} of dtype {arr.dtype}"
            )
        t = torch.from_numpy(arr)
    if t.device != device:
        t = t.to(device, non_blocking=True)
    return t


def inputs_to(x: Any, device: torch.device, cast_integers: bool) -> Any:
    """Inputs on `device`: floats as float32; integers kept (token ids) unless told."""
    if isinstance(x, Mapping):
        return {k: inputs_to(v, device, cast_integers) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(inputs_to(v, device, cast_integers) for v in x)
    t = _as_tensor(x, device)
    if t.dtype == torch.float32 or (
        not cast_integers and not t.is_floating_point() and t.dtype != torch.bool
    ):
        return t
    return t.float()


def batch_size_of(x: Any) -> int:
    """Rows in a batch's inputs (the first array of a dict or tuple)."""
    if isinstance(x, Mapping):
        return batch_size_of(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return batch_size_of(x[0])
    return int(x.shape[0])


class BatchConverter:
    """Turns raw batches into `TensorBatch`es for one compiled model (see NOTE above).

    Args:
        device: where the tensors go.
        sparse_targets: the loss takes integer class ids (cast to int64).
        structured_targets: the loss is per output; targets keep their structure.
        cast_integer_inputs: integer inputs become float32 (batchfit layers) or
            stay integers (a wrapped torch module may take token ids).
    """

    def __init__(
        self,
        device: torch.device,
        *,
        sparse_targets: bool = False,
        structured_targets: bool = False,
        cast_integer_inputs: bool = False,
    ) -> None:
        self.sparse_targets = sparse_targets
        self.structured_targets = structured_targets
        self.cast_integer_inputs = cast_integer_inputs
        #: the target dtype that needs no conversion: what the loss takes
        self._plain_target = np.dtype(np.int64 if sparse_targets else np.float32)
        self.device = device

    @property
    def device(self) -> torch.device:
        return self._device

    @device.setter
    def device(self, device: torch.device) -> None:
        self._device = device
        self._on_cpu = device.type == "cpu"

    def convert(
        self, raw: Any, class_weight: Mapping[int, float] | None = None, *, strict: bool = False
    ) -> TensorBatch:
        """`raw` (what a source yields) as tensors on the device.

        With `strict` (a batch the user handed over directly, `*_on_batch`), an
        empty batch and rows that do not line up are errors; a source's empty
        batch (every image unreadable, say) comes back with `size == 0`.
        """
        x, y, sw = unpack(raw)
        if class_weight is not None and y is not None:
            cw = class_weights_for(y, class_weight)
            sw = cw if sw is None else np.asarray(sw, dtype=np.float32) * cw
        # the common case, float32 features and ready targets on the CPU, costs two
        # zero-copy `from_numpy` calls (measured: ~9 us of Python less per batch)
        if (
            self._on_cpu
            and type(x) is np.ndarray
            and x.dtype == np.float32
            and x.flags.writeable
            and x.ndim
        ):
            xt: Any = torch.from_numpy(x)
            n = x.shape[0]
        else:
            xt = inputs_to(x, self.device, self.cast_integer_inputs)
            n = batch_size_of(xt)
        if (
            self._on_cpu
            and type(y) is np.ndarray
            and y.dtype == self._plain_target
            and y.flags.writeable
        ):
            yt: Any = torch.from_numpy(y)
        else:
            yt = self.targets(y)
        swt = None if sw is None else _as_tensor(sw, self.device).float().reshape(-1)
        if strict:
            _check_rows(n, yt, swt)
        return TensorBatch(xt, yt, swt, n)

    def targets(self, y: Any) -> Any:
        if y is None:
            return None
        if self.structured_targets and isinstance(y, (Mapping, list, tuple)):
            return inputs_to(y, self.device, False)  # each output's loss sets its dtype
        yt = _as_tensor(y, self.device)
        if self.sparse_targets:
            return yt if yt.dtype == torch.int64 else yt.long()
        return yt if yt.dtype == torch.float32 else yt.float()


def _check_rows(n: int, y: Any, sample_weight: torch.Tensor | None) -> None:
    if n == 0:
        raise ValueError("the batch is empty (0 samples)")
    if y is not None:
        ny = y.shape[0] if isinstance(y, torch.Tensor) else batch_size_of(y)
        if ny != n:
            raise ValueError(
                f"x and y must have the same number of samples, got {n} in x and {ny} in y"
            )
    if sample_weight is not None and sample_weight.shape[0] != n:
        raise ValueError(
            f"sample_weight has {sample_weight.shape[0]} entries for a batch of {n} samples"
        )


def detach(y: Any) -> Any:
    """Outputs cut from the autograd graph, keeping a dict or tuple structure."""
    if isinstance(y, torch.Tensor):
        return y.detach()
    if isinstance(y, Mapping):
        return {k: detach(v) for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        return type(y)(detach(v) for v in y)
    return y


def first_rows(x: Any) -> Any:
    """The first two rows of a batch's inputs or targets (to build shapes cheaply)."""
    if x is None:
        return None
    if isinstance(x, Mapping):
        return {k: first_rows(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(first_rows(v) for v in x)
    return x[:2]


def to_numpy(y: Any) -> Any:
    """Predictions as NumPy (floats as float32), keeping a dict or tuple structure."""
    if isinstance(y, torch.Tensor):
        return y.detach().float().cpu().numpy() if y.is_floating_point() else y.cpu().numpy()
    if isinstance(y, Mapping):
        return {k: to_numpy(v) for k, v in y.items()}
    if isinstance(y, (list, tuple)):
        return type(y)(to_numpy(v) for v in y)
    return y


def move_optimizer_state(optimizer: Optimizer | None, device: torch.device) -> None:
    """Move an optimizer's state tensors (moments, steps) to `device`."""
    if optimizer is None or optimizer.torch_optimizer is None:
        return
    for state in optimizer.torch_optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and not (key == "step" and value.dim() == 0):
                state[key] = value.to(device)
