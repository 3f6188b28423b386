"""`CategoryEncoding` and `Hashing`, and the one/multi-hot encoder the lookup layers share."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from batchfit.layers._base import Layer, register_layer
from batchfit.layers._hashes import hash_buckets
from batchfit.layers._symbolic import is_symbolic

__all__ = ["CategoryEncoding", "Hashing", "encode_categorical"]


def check_mode(layer: str, output_mode: Any, allowed: tuple[str, ...]) -> str:
    """Keras' output mode (its deprecated spellings mapped), or a clear error."""
    mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
    if mode not in allowed:
        raise ValueError(
            f"{layer}: output_mode must be one of {', '.join(map(repr, allowed))}, "
            f"got {output_mode!r}"
        )
    return str(mode)


def refuse_sparse(layer: str, sparse: Any) -> None:
    if sparse:
        raise ValueError(
            f"{layer}: sparse=True is not supported (Keras offers it only on the TensorFlow "
            "backend); the output is a dense torch tensor"
        )


def whole(layer: str, key: str, value: Any, minimum: int) -> int:
    """`value` as an int >= `minimum`, or an error naming the layer and argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer}: {key} must be a whole number >= {minimum}, got {value!r:.60}")
    return int(value)


def encode_categorical(
    indices: torch.Tensor,
    output_mode: str,
    depth: int,
    count_weights: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Keras' `encode_categorical_inputs`: int64 indices -> one/multi-hot or counts (float32).

    `one_hot` encodes each element (a last axis of size 1 is replaced by the
    depth); `multi_hot` and `count` reduce the last axis, so a 1-D input is one
    sample. Elements where `keep` is False (masked tokens) are left out.
    """
    if output_mode == "int":
        return indices
    if indices.dim() == 0:
        indices = indices.reshape(1)
        keep = None if keep is None else keep.reshape(1)
    if output_mode == "one_hot":
        if indices.dim() > 1 and indices.shape[-1] == 1:
            indices = indices.squeeze(-1)
            keep = None if keep is None else keep.squeeze(-1)
        rows_shape = tuple(indices.shape)
        flat = indices.reshape(-1, 1)
        keep = None if keep is None else keep.reshape(-1, 1)
    else:
        rows_shape = tuple(indices.shape[:-1])
        flat = indices.reshape(-1, indices.shape[-1]) if indices.numel() else indices.reshape(0, 1)
        keep = None if keep is None else keep.reshape(flat.shape)
    rows = flat.shape[0]
    offsets = flat + torch.arange(rows, device=flat.device).unsqueeze(1) * depth
    weights = None
    if count_weights is not None:
        weights = count_weights.to(flat.device, torch.float32).reshape(flat.shape)
    if keep is not None:
        offsets = offsets[keep]
        weights = None if weights is None else weights[keep]
    flat_offsets = offsets.reshape(-1)
    ones = torch.ones(flat_offsets.shape, dtype=torch.float32, device=flat_offsets.device)
    # scatter_add rather than bincount: it also runs on the meta device (load_model's dry run)
    counts = torch.zeros(rows * depth, dtype=torch.float32, device=flat_offsets.device)
    counts.scatter_add_(0, flat_offsets, ones if weights is None else weights.reshape(-1))
    out = counts.reshape(*rows_shape, depth).to(torch.float32)
    return out.clamp_(max=1.0) if output_mode in ("multi_hot", "one_hot") else out


#: the largest output depth / table a config read from a file may ask for (an output row
#: of this many floats is allocated per sample)
CONFIG_DEPTH_LIMIT = 2**24


def bounded(layer: str, key: str, value: Any) -> None:
    """Refuse a size from a config that would allocate more than `CONFIG_DEPTH_LIMIT`."""
    if (
        isinstance(value, (int, np.integer))
        and not isinstance(value, bool)
        and value > CONFIG_DEPTH_LIMIT
    ):
        raise ValueError(
            f"{layer}: {key}={value} is larger than the {CONFIG_DEPTH_LIMIT:,} a saved "
            "config may ask for; refusing to build it"
        )


def check_range(layer: str, indices: torch.Tensor, depth: int, what: str) -> None:
    """Values outside `[0, depth)` are an error (reads two numbers: one host sync)."""
    if indices.numel() == 0 or indices.device.type == "meta":
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= depth:
        bad = low if low < 0 else high
        raise ValueError(
            f"{layer}: input values must be in the range 0 <= values < {what}={depth}, got {bad}"
        )


def to_numpy(x: Any) -> np.ndarray:
    """Layer input (array, nested list, tensor) as a NumPy array (strings stay objects)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    arr = np.asarray(x)
    return arr


@register_layer
class CategoryEncoding(Layer):
    """Encode integer category ids as one-hot, multi-hot or count vectors (Keras' layer).

    Args:
        num_tokens: number of categories; inputs must lie in `[0, num_tokens)`.
        output_mode: `"multi_hot"` (default), `"one_hot"` or `"count"`.
        sparse: only False (dense output).

    Call with `count_weights` (same shape as the input) in `"count"` mode to sum
    weights instead of ones. Output: float32; `one_hot` of `(batch,)` or
    `(batch, 1)` gives `(batch, num_tokens)`, `multi_hot`/`count` reduce the
    last axis.

    Example:
        >>> CategoryEncoding(num_tokens=4, output_mode="one_hot")(np.array([3, 2, 0, 1]))
    """

    def __init__(
        self,
        num_tokens: int | None = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or "CategoryEncoding"
        self.num_tokens = whole(name, "num_tokens", num_tokens, 1)
        self.output_mode = check_mode(name, output_mode, ("one_hot", "multi_hot", "count"))
        refuse_sparse(name, sparse)
        super().__init__(**kwargs)

    def forward(self, x: Any, count_weights: Any = None) -> torch.Tensor:
        return self.call(x, count_weights)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], (list, tuple)):
            args = (torch.as_tensor(np.asarray(args[0])), *args[1:])
        return super().__call__(*args, **kwargs)

    def call(self, x: Any, count_weights: Any = None) -> torch.Tensor:
        indices = x if isinstance(x, torch.Tensor) else torch.as_tensor(to_numpy(x))
        if indices.is_floating_point() or indices.dtype == torch.bool:
            indices = indices.long()
        indices = indices.long()
        if count_weights is not None:
            if self.output_mode != "count":
                raise ValueError(
                    f"{self.name}: count_weights is only used when output_mode='count', "
                    f"got output_mode={self.output_mode!r}"
                )
            count_weights = torch.as_tensor(to_numpy(count_weights), dtype=torch.float32)
            if tuple(count_weights.shape) != tuple(indices.shape):
                raise ValueError(
                    f"{self.name}: count_weights of shape {tuple(count_weights.shape)} must "
                    f"match the input's {tuple(indices.shape)}"
                )
        check_range(self.name, indices, self.num_tokens, "num_tokens")
        return encode_categorical(indices, self.output_mode, self.num_tokens, count_weights)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CategoryEncoding:
        bounded(str(config.get("name", cls.__name__)), "num_tokens", config.get("num_tokens"))
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"num_tokens": self.num_tokens, "output_mode": self.output_mode, "sparse": False}
        )
        return config


def salt_pair(layer: str, salt: Any) -> tuple[int, int] | None:
    if salt is None:
        return None

    def ok(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0

    if ok(salt):
        return int(salt), int(salt)
    if isinstance(salt, (list, tuple)) and len(salt) == 2 and all(ok(v) for v in salt):
        return int(salt[0]), int(salt[1])
    raise ValueError(
        f"{layer}: salt must be a non-negative integer or a pair of them, got {salt!r:.60}"
    )


@register_layer
class Hashing(Layer):
    """Hash values into `num_bins` buckets, as Keras' `Hashing` (same bins as Keras).

    Strings are hashed with FarmHash Fingerprint64, or SipHash-2-4 keyed by
    `salt`; integers hash their decimal text and floats are truncated to
    integers first, as Keras does (see NOTE [ Keras' string hashes ]).

    Args:
        num_bins: number of buckets, the mask's bin 0 included when `mask_value` is set.
        mask_value: a value sent to bin 0 (other values then use bins 1..num_bins-1).
        salt: an integer or two; selects the keyed SipHash.
        output_mode: `"int"` (default), `"one_hot"`, `"multi_hot"` or `"count"`.
        sparse: only False.

    Example:
        >>> Hashing(num_bins=3)(np.array([["A"], ["B"], ["C"], ["D"], ["E"]]))
        # [[1], [0], [1], [1], [2]], as in Keras' docstring
    """

    def __init__(
        self,
        num_bins: int | None = None,
        mask_value: Any = None,
        salt: Any = None,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or "Hashing"
        self.num_bins = whole(name, "num_bins", num_bins, 1)
        if mask_value is not None and not isinstance(mask_value, (str, int, np.integer)):
            raise ValueError(
                f"{name}: mask_value must be a string or an integer, got {mask_value!r:.60}"
            )
        self.mask_value = mask_value.item() if isinstance(mask_value, np.integer) else mask_value
        self.salt = salt_pair(name, salt)
        self.output_mode = check_mode(name, output_mode, ("int", "one_hot", "multi_hot", "count"))
        refuse_sparse(name, sparse)
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)

    def forward(self, x: Any) -> torch.Tensor:
        return self.call(x)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and not isinstance(args[0], torch.Tensor) and not is_symbolic(args[0]):
            return self.call(args[0])  # strings cannot be tensors: skip the tensor path
        return super().__call__(*args, **kwargs)

    def call(self, x: Any) -> torch.Tensor:
        device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
        arr = to_numpy(x)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.int64)
        bins = self.num_bins
        masked = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            masked = arr == self.mask_value
        flat = arr.reshape(-1)
        if flat.dtype.kind in "iub":
            uniques, inverse = np.unique(flat, return_inverse=True)
            hashed = hash_buckets(uniques.tolist(), bins, self.salt)[inverse]
        else:
            hashed = hash_buckets(flat.tolist(), bins, self.salt)
        hashed = hashed.reshape(arr.shape)
        if masked is not None:
            hashed = np.where(masked, 0, hashed + 1)
        indices = torch.as_tensor(hashed, dtype=torch.int64).to(device)
        return encode_categorical(indices, self.output_mode, self.num_bins)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Hashing:
        bounded(str(config.get("name", cls.__name__)), "num_bins", config.get("num_bins"))
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "num_bins": self.num_bins,
                "salt": None if self.salt is None else list(self.salt),
                "mask_value": self.mask_value,
                "output_mode": self.output_mode,
                "sparse": False,
            }
        )
        return config
