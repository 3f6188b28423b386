"""`Normalization`: Keras' feature-wise standardisation layer, with a streaming `adapt`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from batchfit.layers._base import Layer, Shape, register_layer
from batchfit.transforms._stats import Moments, for_this_rank, merge_ranks

__all__ = ["Normalization"]

_EPSILON = 1e-7  # Keras' backend.epsilon(): floor of the std


@register_layer
class Normalization(Layer):
    """Shift and scale inputs to mean 0 and variance 1 per feature: `(x - mean) / sqrt(var)`.

    The statistics come from `mean`/`variance` or from `adapt(data)`, one
    streamed pass over arrays or any batch source (a CSV larger than memory
    included). They are buffers, so they save and load with the model.

    Args:
        axis: axis (or axes) that keep separate statistics; -1 is per feature,
            None one scalar mean/variance over everything.
        mean: mean to use instead of `adapt`.
        variance: variance to use instead of `adapt`.
        invert: undo a normalisation instead: `x * sqrt(var) + mean`.

    Example:
        >>> norm = Normalization()
        >>> norm.adapt(batchfit.data.csv("houses.csv", target="price", batch_size=4096))
        >>> model = Sequential([norm, Dense(64, activation="relu"), Dense(1)])
    """

    #: Keras counts `count` among the layer's (non-trainable) weights
    _int_weights = ("count",)

    def __init__(
        self,
        axis: int | Sequence[int] | None = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        **kwargs: Any,
    ) -> None:
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: give both mean and variance, or neither")
        self.axis: tuple[int, ...] = (
            ()
            if axis is None
            else (
                (int(axis),) if isinstance(axis, (int, np.integer)) else tuple(int(a) for a in axis)
            )
        )
        self.invert = bool(invert)
        self._init_mean = None if mean is None else np.asarray(mean, np.float64)
        self._init_variance = None if variance is None else np.asarray(variance, np.float64)
        super().__init__(**kwargs)
        self.register_buffer("mean", torch.zeros(()), persistent=True)
        self.register_buffer("variance", torch.ones(()), persistent=True)
        self.register_buffer("count", torch.zeros((), dtype=torch.int64), persistent=True)
        self.adapted = False
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    # -- shapes -----------------------------------------------------------------------
    def _keep_axes(self, ndim: int) -> tuple[int, ...]:
        keep = []
        for a in self.axis:
            positive = a + ndim if a < 0 else a
            if not 0 < positive < ndim:
                raise ValueError(
                    f"Normalization axis {a} is invalid for inputs of rank {ndim} "
                    "(the batch axis 0 cannot keep statistics)"
                )
            keep.append(positive)
        return tuple(sorted(set(keep)))

    def _stat_shape(self, input_shape: Shape) -> tuple[int, ...]:
        keep = self._keep_axes(len(input_shape))
        shape = []
        for d, size in enumerate(input_shape):
            if d in keep:
                if size is None:
                    raise ValueError(
                        f"Normalization axis {d} needs a known size, got {input_shape}"
                    )
                shape.append(int(size))
            else:
                shape.append(1)
        return tuple(shape)

    def build(self, input_shape: Shape) -> None:
        shape = self._stat_shape(input_shape)
        if self._init_mean is not None and self._init_variance is not None:
            mean = (
                np.broadcast_to(self._init_mean, shape)
                if self._init_mean.ndim <= len(shape)
                else None
            )
            variance = np.broadcast_to(self._init_variance, shape)
            if mean is None:
                raise ValueError(
                    f"Normalization mean of shape {self._init_mean.shape} does not fit {shape}"
                )
            self.mean = torch.as_tensor(np.array(mean), dtype=torch.float32)
            self.variance = torch.as_tensor(np.array(variance), dtype=torch.float32)
        elif tuple(self.mean.shape) != shape:
            self.mean = torch.zeros(shape)
            self.variance = torch.ones(shape)
        super().build(input_shape)

    # -- statistics -------------------------------------------------------------------
    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Compute mean and variance over `data` in one streamed pass (float64 sums).

        Args:
            data: an array/tensor/DataFrame, or any iterable of batches (a
                `batchfit.data` source: the first element of each tuple is used;
                a dict of named columns is stacked in its key order).
            batch_size: rows reduced at a time for in-memory data.
            steps: stop after this many batches of an iterable.
        """
        if self._init_mean is not None:
            raise ValueError(
                "Normalization was given mean and variance; adapt() would replace them"
            )
        stats: Moments | None = None
        keep: tuple[int, ...] = ()
        shape: tuple[int, ...] = ()
        data, split = for_this_rank(data)  # under torchrun each rank reads a part
        for step, chunk in enumerate(_chunks(data, batch_size or 4096)):
            if steps is not None and step >= steps:
                break
            if stats is None:
                shape = self._stat_shape((None, *chunk.shape[1:]))
                keep = self._keep_axes(chunk.ndim)
                stats = Moments.empty(int(np.prod(shape)))
            elif chunk.ndim != len(shape) or any(chunk.shape[a] != shape[a] for a in keep):
                raise ValueError(f"adapt(): batch of shape {chunk.shape} does not match {shape}")
            moved = np.moveaxis(chunk, keep, range(chunk.ndim - len(keep), chunk.ndim))
            stats.update(moved.reshape(-1, int(np.prod(shape))))
        if split:
            from batchfit import distributed

            stats = merge_ranks(stats)
            # a rank whose part was empty learns the layout from the others
            shape, keep = next(
                (sk for sk in distributed.gather_objects((shape, keep) if shape else None) if sk),
                (shape, keep),
            )
        if stats is None or stats.count == 0:
            raise ValueError("adapt() got no data")
        if not self.built:
            self.build((None, *[s if i in keep else None for i, s in enumerate(shape)][1:]))
        with torch.no_grad():
            self.mean = torch.as_tensor(stats.mean.reshape(shape), dtype=torch.float32)
            self.variance = torch.as_tensor(stats.variance.reshape(shape), dtype=torch.float32)
            self.count = torch.tensor(stats.count, dtype=torch.int64)
        self.adapted = True

    def call(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype) if x.is_floating_point() else self.mean
        std = torch.clamp(torch.sqrt(self.variance), min=_EPSILON)
        x = x.to(mean.dtype)
        if self.invert:
            return mean + x * std
        return (x - mean) / std

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        axis: Any = (
            None if not self.axis else (self.axis[0] if len(self.axis) == 1 else list(self.axis))
        )
        config.update({"axis": axis, "invert": self.invert})
        if self._init_mean is not None and self._init_variance is not None:
            config["mean"] = self._init_mean.tolist()
            config["variance"] = self._init_variance.tolist()
        return config

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any) -> None:
        # Adapted statistics have their data's shape, unknown to a fresh layer: take it.
        for name in ("mean", "variance", "count"):
            value = state_dict.get(prefix + name)
            if value is not None and tuple(value.shape) != tuple(getattr(self, name).shape):
                setattr(self, name, torch.empty_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args)


def _chunks(data: Any, batch_size: int) -> Any:
    if isinstance(data, torch.Tensor):
        data = data.detach().cpu().numpy()
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        data = data.to_numpy(dtype=np.float64)
    if isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise ValueError("adapt() needs data with a batch dimension, got a scalar")
        arr = data if data.ndim > 1 else data[:, None]
        for start in range(0, len(arr), batch_size):
            yield np.asarray(arr[start : start + batch_size], np.float64)
        return
    for batch in data:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(x, Mapping):
            x = np.stack([np.asarray(v, np.float64).reshape(len(v)) for v in x.values()], axis=1)
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        arr = np.asarray(x, np.float64)
        yield arr if arr.ndim > 1 else arr[:, None]
