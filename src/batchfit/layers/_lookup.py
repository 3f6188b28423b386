"""`StringLookup` and `IntegerLookup`: Keras' vocabulary layers, adapted in one streamed pass.

The shared machinery (vocabulary, adapt, OOV, config checks) is `IndexLookup`
in `_index_lookup.py`; see NOTE [ Adapting a vocabulary ] there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from batchfit.layers._base import register_layer
from batchfit.layers._encoding import to_numpy
from batchfit.layers._index_lookup import IndexLookup

__all__ = ["IntegerLookup", "StringLookup"]


@register_layer
class StringLookup(IndexLookup):
    """Map strings to indices of a vocabulary (Keras' `StringLookup`), or back with `invert`.

    Index 0 is the OOV token `"[UNK]"` (after the mask token, if any, in
    `"int"` mode); the vocabulary follows. Inputs are NumPy arrays of str /
    object dtype or (nested) lists; outputs are torch tensors (int64 for
    `"int"`, float32 otherwise); `invert=True` returns a NumPy array of str.
    Strings cannot be torch tensors, so use the layer in the data pipeline,
    before the model (as Keras' docs recommend for non-TensorFlow backends).

    Args:
        max_tokens: cap on the vocabulary size, special tokens included.
        num_oov_indices: OOV slots; with more than one, unknown strings are hashed
            (FarmHash Fingerprint64, or SipHash keyed by `salt`) into them as Keras.
        mask_token: a token mapped to 0 ("int") or left out of the encoding.
        oov_token: the token returned for OOV indices by `invert`.
        vocabulary: list/array of strings or a text file; else call `adapt`.
        idf_weights: per-token weights for `"tf_idf"` with a given vocabulary.
        invert: map indices back to strings.
        output_mode: `"int"`, `"one_hot"`, `"multi_hot"`, `"count"` or `"tf_idf"`.
        pad_to_max_tokens: make the encoding `max_tokens` wide.
        sparse: only False.
        encoding: text encoding of bytes inputs.

    Example:
        >>> layer = StringLookup(vocabulary=["a", "b", "c", "d"])
        >>> layer(np.array([["a", "c", "d"], ["d", "z", "b"]]))  # [[1, 3, 4], [4, 0, 2]]
    """

    _token_name = "string"

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: str | None = None,
        oov_token: str = "[UNK]",
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        encoding: str = "utf-8",
        salt: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(encoding, str):
            raise ValueError(f"StringLookup: encoding must be a string, got {encoding!r:.40}")
        self.encoding = encoding
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(
            max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights,
            invert, output_mode, pad_to_max_tokens, sparse, salt=salt, **kwargs,
        )  # fmt: skip

    def _token(self, value: Any, layer: str, key: str) -> Any:
        if value is None and key in ("mask_token", "oov_token"):
            return None
        if isinstance(value, bytes):
            return value.decode(self.encoding)
        if isinstance(value, np.str_):
            return str(value)
        if not isinstance(value, str):
            missing = value is None or (isinstance(value, float) and value != value)
            hint = " (a missing value: fill it, e.g. with mask_token or '')" if missing else ""
            raise ValueError(
                f"{layer}: {key} must hold strings, got {type(value).__name__} {value!r:.40}{hint}"
            )
        return value

    def _check_batch(self, arr: np.ndarray) -> np.ndarray:
        if arr.dtype.kind == "S":
            return np.char.decode(arr, self.encoding).astype(object)
        if arr.dtype.kind not in "UO":
            raise ValueError(
                f"{self.name}: expected strings, got an array of dtype {arr.dtype}; "
                "IntegerLookup maps integers"
            )
        return arr

    def _lookup(self, x: Any) -> tuple[torch.Tensor, torch.device]:
        if isinstance(x, torch.Tensor):
            raise ValueError(
                f"{self.name}: expected strings (a NumPy array or a list), got a torch tensor "
                f"of dtype {x.dtype}; use IntegerLookup for integers"
            )
        arr = self._check_batch(to_numpy(x))
        flat = arr.reshape(-1)
        table = self._table
        values = flat.tolist()
        if flat.dtype.kind == "O" and any(isinstance(v, bytes) for v in values[:1]):
            values = [v.decode(self.encoding) if isinstance(v, bytes) else v for v in values]
        indices = np.fromiter((table.get(v, -1) for v in values), np.int64, len(values))
        indices = self._resolve_oov(indices, np.asarray(values, dtype=object))
        return torch.from_numpy(indices.reshape(arr.shape)), torch.device("cpu")

    def _invert(self, x: Any) -> np.ndarray:
        idx = to_numpy(x).astype(np.int64)
        vocab = np.asarray([*self.get_vocabulary(), self.oov_token], dtype=object)
        idx = np.where((idx < 0) | (idx >= len(vocab) - 1), len(vocab) - 1, idx)
        return vocab[idx]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["encoding"] = self.encoding
        return config


@register_layer
class IntegerLookup(IndexLookup):
    """Map integers to indices of a vocabulary (Keras' `IntegerLookup`), or back with `invert`.

    Takes int arrays, lists or torch tensors (looked up on the tensor's device
    by a sorted search) and returns torch tensors (int64 for `"int"`, float32
    otherwise). Arguments as `StringLookup`; `oov_token` defaults to -1 and,
    with several OOV slots, unknown values go to `value % num_oov_indices`
    (`oov_method="floormod"`) or a FarmHash of their text (`"farmhash"`).

    Example:
        >>> layer = IntegerLookup(vocabulary=[12, 36, 1138, 42])
        >>> layer(np.array([[12, 1138, 42], [42, 1000, 36]]))  # [[1, 3, 4], [4, 0, 2]]
    """

    _token_name = "integer"

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: int | None = None,
        oov_token: int = -1,
        vocabulary: Any = None,
        vocabulary_dtype: str = "int64",
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        oov_method: str = "floormod",
        salt: Any = None,
        **kwargs: Any,
    ) -> None:
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(
                "IntegerLookup: vocabulary_dtype must be 'int64' or 'int32', "
                f"got {vocabulary_dtype!r}"
            )
        self.vocabulary_dtype = vocabulary_dtype
        super().__init__(
            max_tokens, num_oov_indices, mask_token, oov_token, vocabulary, idf_weights,
            invert, output_mode, pad_to_max_tokens, sparse, oov_method, salt, **kwargs,
        )  # fmt: skip

    def _token(self, value: Any, layer: str, key: str) -> Any:
        if value is None and key in ("mask_token", "oov_token"):
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(
                f"{layer}: {key} must hold integers, got {type(value).__name__} {value!r:.40}"
            )
        return int(value)

    def _token_from_text(self, line: str) -> Any:
        return int(line)

    def _check_batch(self, arr: np.ndarray) -> np.ndarray:
        if arr.dtype.kind not in "iuf":
            raise ValueError(
                f"{self.name}: expected integers, got an array of dtype {arr.dtype}; "
                "StringLookup maps strings"
            )
        return arr

    def _sorted_table(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._sorted is None or self._sorted[0].device != device:
            keys = torch.tensor(list(self._table), dtype=torch.int64)
            values = torch.tensor(list(self._table.values()), dtype=torch.int64)
            order = torch.argsort(keys)
            self._sorted = (keys[order].to(device), values[order].to(device))
        return self._sorted

    def _lookup(self, x: Any) -> tuple[torch.Tensor, torch.device]:
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(self._check_batch(to_numpy(x)))
        # a Sequential hands integer inputs over as float32 (exact below 2**24): truncate
        t = t.long()
        keys, values = self._sorted_table(t.device)
        pos = torch.searchsorted(keys, t).clamp_(max=len(keys) - 1)
        found = keys[pos] == t
        indices = torch.where(found, values[pos], torch.full_like(t, -1))
        if t.device.type == "meta":
            return torch.where(found, indices, torch.zeros_like(t)), t.device
        if self.num_oov_indices != 1 or self.mask_token is not None:
            if not bool(found.all()):  # host sync only when something is out of vocabulary
                flat = indices.cpu().numpy().reshape(-1).copy()
                flat = self._resolve_oov(flat, t.cpu().numpy().reshape(-1))
                indices = torch.from_numpy(flat.reshape(tuple(t.shape))).to(t.device)
        else:
            indices = torch.where(found, indices, torch.full_like(t, self._oov_start()))
        return indices, t.device

    def _invert(self, x: Any) -> torch.Tensor:
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(to_numpy(x))
        oov = self.oov_token if self.oov_token is not None else -1
        vocab = torch.tensor([*self.get_vocabulary(), oov], dtype=torch.int64, device=t.device)
        t = t.long()
        t = torch.where((t < 0) | (t >= len(vocab) - 1), torch.full_like(t, len(vocab) - 1), t)
        return vocab[t]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"vocabulary_dtype": self.vocabulary_dtype, "oov_method": self.oov_method})
        return config
