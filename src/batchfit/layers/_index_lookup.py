"""The index-lookup machinery `StringLookup` and `IntegerLookup` share (Keras' `IndexLookup`).

NOTE [ Adapting a vocabulary ]
`adapt` counts tokens batch by batch into a dict (memory: one entry per
distinct token, never the rows), then orders the vocabulary as Keras'
`IndexLookup.finalize_state` does: by descending count, ties by descending
token (Keras `np.lexsort((tokens, counts))[::-1]`), drops the mask and OOV
tokens, and keeps the first `max_tokens - <special slots>`. Counts are sums,
so parts merge by addition: under torchrun each rank counts its shard and the
tables are summed in rank order (`merge_counts`). The vocabulary lives in the
config (as Keras does for a given vocabulary), so `model.save`/`load_model`
restore it with no pickle.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import torch

from batchfit.layers._adapt_data import TokenCounts, adapt_batches
from batchfit.layers._base import Layer
from batchfit.layers._encoding import (
    CONFIG_DEPTH_LIMIT,
    bounded,
    check_mode,
    encode_categorical,
    refuse_sparse,
    salt_pair,
    to_numpy,
    whole,
)
from batchfit.layers._hashes import hash_buckets
from batchfit.layers._symbolic import is_symbolic

__all__ = ["IndexLookup"]

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
_MASKED = -2  # looked-up index of a mask token before the output mode decides


class IndexLookup(Layer):
    """Shared lookup machinery (Keras' `IndexLookup`); subclasses fix the token type."""

    _token_name = "token"

    def __init__(
        self,
        max_tokens: int | None,
        num_oov_indices: int,
        mask_token: Any,
        oov_token: Any,
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        oov_method: str = "floormod",
        salt: Any = None,
        vocabulary_size: int | None = None,
        has_input_vocabulary: bool | None = None,
        **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or type(self).__name__
        if max_tokens is not None and whole(name, "max_tokens", max_tokens, 0) <= 1:
            raise ValueError(f"{name}: max_tokens must be greater than 1, got {max_tokens}")
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.num_oov_indices = whole(name, "num_oov_indices", num_oov_indices, 0)
        self.output_mode = check_mode(name, output_mode, _MODES)
        refuse_sparse(name, sparse)
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{name}: pad_to_max_tokens=True needs max_tokens")
        if invert and self.output_mode != "int":
            raise ValueError(
                f"{name}: invert=True needs output_mode='int', got {self.output_mode!r}"
            )
        if idf_weights is not None and self.output_mode != "tf_idf":
            raise ValueError(f"{name}: idf_weights are only used with output_mode='tf_idf'")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(
                f"{name}: oov_method must be 'floormod' or 'farmhash', got {oov_method!r}"
            )
        if vocabulary_size is not None:
            whole(name, "vocabulary_size", vocabulary_size, 0)
        self.mask_token = self._token(mask_token, name, "mask_token")
        self.oov_token = self._token(oov_token, name, "oov_token")
        self.invert = bool(invert)
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.oov_method = oov_method
        self.salt = salt_pair(name, salt)
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        self._tokens: list[Any] = []
        self._table: dict[Any, int] = {}
        self._idf: np.ndarray | None = None
        self._sorted: tuple[torch.Tensor, torch.Tensor] | None = None
        self._has_input_vocabulary = (
            vocabulary is not None if has_input_vocabulary is None else bool(has_input_vocabulary)
        )
        if self.output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError(f"{name}: output_mode='tf_idf' with a vocabulary needs idf_weights")
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # -- token type (subclasses) ------------------------------------------------------
    def _token(self, value: Any, layer: str, key: str) -> Any:
        raise NotImplementedError

    def _check_batch(self, arr: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _token_from_text(self, line: str) -> Any:
        return line

    # -- vocabulary -------------------------------------------------------------------
    def _oov_start(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self) -> int:
        return self._oov_start() + self.num_oov_indices

    def _special_tokens(self) -> list[Any]:
        return [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices

    def vocabulary_size(self) -> int:
        """Size of the vocabulary, mask and OOV slots included (the one-hot depth)."""
        return self._token_start() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[Any]:
        """The vocabulary in index order (a token's position is its index)."""
        if not include_special_tokens:
            return list(self._tokens)
        return self._special_tokens() + list(self._tokens)

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Replace the vocabulary (and, for `"tf_idf"`, the IDF weights), as Keras'.

        `vocabulary` is a list/array/tensor of tokens or a text file path (one
        token a line); it may start with the special tokens in Keras' order.
        """
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{self.name}: idf_weights must be set if output_mode is 'tf_idf'")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"{self.name}: idf_weights are only used with output_mode='tf_idf'")
        if isinstance(vocabulary, str):
            with open(vocabulary, encoding="utf-8") as f:
                lines = f.read().splitlines()
            while lines and lines[-1] == "":
                lines.pop()
            vocabulary = [self._token_from_text(line) for line in lines]
        if isinstance(vocabulary, torch.Tensor):
            vocabulary = vocabulary.tolist()
        if isinstance(vocabulary, np.ndarray):
            vocabulary = vocabulary.reshape(-1).tolist()
        if not isinstance(vocabulary, (list, tuple)):
            raise ValueError(
                f"{self.name}: vocabulary must be a list of {self._token_name}s, got "
                f"{type(vocabulary).__name__}"
            )
        tokens = [self._token(v, self.name, "vocabulary") for v in vocabulary]
        if not tokens:
            raise ValueError(f"{self.name}: cannot set an empty vocabulary")
        special = self._special_tokens()
        found_special = tokens[: len(special)] == special
        if found_special:
            tokens = tokens[len(special) :]
        repeated = [t for t, c in Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(f"{self.name}: the vocabulary repeats {repeated[:10]}")
        if self.mask_token is not None and self.mask_token in tokens:
            raise ValueError(
                f"{self.name}: the mask token {self.mask_token!r} may only come first in the "
                f"vocabulary, in this order: {special}"
            )
        if self.invert and self.oov_token is not None and self.oov_token in tokens:
            raise ValueError(
                f"{self.name}: the OOV token {self.oov_token!r} may only come at the start of "
                f"the vocabulary, in this order: {special}"
            )
        size = self._token_start() + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(
                f"{self.name}: a vocabulary of {size} (special tokens included) is larger "
                f"than max_tokens={self.max_tokens}"
            )
        idf = None
        if idf_weights is not None:
            weights = np.asarray(to_numpy(idf_weights), dtype=np.float64)
            if weights.ndim != 1 or len(weights) != len(vocabulary):
                raise ValueError(
                    f"{self.name}: idf_weights must be 1-D and as long as the vocabulary "
                    f"({len(vocabulary)}), got shape {weights.shape}"
                )
            front = 0 if found_special else self._token_start()
            idf = np.concatenate([np.full(front, weights.mean()), weights]).astype(np.float32)
        self._set_tokens(tokens, idf)

    def _set_tokens(self, tokens: list[Any], idf: np.ndarray | None) -> None:
        start = self._token_start()
        self._tokens = tokens
        self._table = {t: start + i for i, t in enumerate(tokens)}
        if self.mask_token is not None:
            self._table[self.mask_token] = _MASKED
        self._sorted = None
        if idf is not None and self.pad_to_max_tokens and self.max_tokens is not None:
            idf = np.pad(idf, (0, self.max_tokens - len(idf)))
        self._idf = idf

    # -- adapt ------------------------------------------------------------------------
    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learn the vocabulary from `data` in one streamed pass (NOTE [ Adapting a vocabulary ]).

        Args:
            data: an array or (nested) list of tokens, an iterable of batches, or a
                `batchfit.data` source (the x of each batch; a dict of one column).
            batch_size: rows counted at a time for in-memory data.
            steps: stop after this many batches of an iterable.
        """
        if self._has_input_vocabulary:
            raise ValueError(
                f"{self.name}: cannot adapt a layer built with a vocabulary; "
                "use set_vocabulary() or a layer without one"
            )
        from batchfit.transforms._stats import for_this_rank

        tf_idf = self.output_mode == "tf_idf"
        counts, documents = TokenCounts(), TokenCounts()
        num_documents = 0
        data, split = for_this_rank(data)
        for step, (arr, in_memory) in enumerate(adapt_batches(data, batch_size, self.name)):
            if steps is not None and step >= steps:
                break
            arr = self._check_batch(arr)
            if arr.ndim == 0:
                arr = arr.reshape(1, 1)
            elif arr.ndim == 1 and not in_memory:
                arr = arr[None, :]  # Keras: a 1-D batch of an iterable is one document
            counts.add(arr.reshape(-1))
            if tf_idf:
                rows = arr.reshape(arr.shape[0], -1)
                documents.add_distinct_per_row(rows)
                num_documents += rows.shape[0]
        if split:
            from batchfit import distributed

            parts = distributed.gather_objects(
                (counts.as_dict(), documents.as_dict(), num_documents)
            )
            counts, documents = TokenCounts(), TokenCounts()
            for part in parts:  # rank order
                counts.merge(part[0])
                documents.merge(part[1])
            num_documents = sum(p[2] for p in parts)
        self._finalize(counts, documents, num_documents)

    def _finalize(self, counts: TokenCounts, documents: TokenCounts, num_documents: int) -> None:
        specials = [t for t in (self.mask_token, self.oov_token) if t is not None]
        limit = None if self.max_tokens is None else self.max_tokens - self._token_start()
        tokens = counts.keras_order(specials, limit, self._check_tokens)
        if not tokens:
            raise ValueError(f"{self.name}.adapt() got no data")
        idf = None
        if self.output_mode == "tf_idf":
            dc = documents.lookup(tokens).astype(np.float64)
            weights = np.log(1 + num_documents / (1 + dc)).astype(np.float32)
            idf = np.concatenate(
                [np.full(self._token_start(), weights.mean(), np.float32), weights]
            )
        self._set_tokens(tokens, idf)

    def _check_tokens(self, tokens: list[Any]) -> list[Any]:
        """Adapted tokens as the layer's token type (a clear error on anything else)."""
        return [self._token(t, self.name, "adapt data") for t in tokens]

    # -- call -------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and not isinstance(args[0], torch.Tensor) and not is_symbolic(args[0]):
            return self.call(args[0])  # strings cannot be tensors: skip the tensor path
        return super().__call__(*args, **kwargs)

    def forward(self, x: Any) -> Any:
        return self.call(x)

    def _require_vocabulary(self) -> None:
        if not self._tokens:
            raise ValueError(
                f"{self.name}: the layer has no vocabulary: call adapt(data) or pass "
                "vocabulary=[...] before using it"
            )

    def call(self, x: Any) -> Any:
        self._require_vocabulary()
        if self.invert:
            return self._invert(x)
        indices, device = self._lookup(x)
        keep = None
        if self.mask_token is not None:
            masked = indices == _MASKED
            if self.output_mode == "int":
                indices = torch.where(masked, torch.zeros_like(indices), indices)
            else:
                keep = ~masked
        indices = indices.to(device)
        if self.output_mode == "int":
            return indices
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        assert depth is not None
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        out = encode_categorical(
            indices, mode, depth, keep=None if keep is None else keep.to(device)
        )
        if self.output_mode == "tf_idf":
            assert self._idf is not None
            out = out * torch.as_tensor(self._idf, device=out.device)
        return out

    def _oov_buckets(self, values: list[Any]) -> np.ndarray:
        if isinstance(values[0], str) or self.oov_method == "farmhash":
            return hash_buckets(values, self.num_oov_indices, self.salt)
        return np.mod(np.asarray(values, dtype=np.int64), self.num_oov_indices)

    def _resolve_oov(self, indices: np.ndarray, flat: np.ndarray) -> np.ndarray:
        missing = indices == -1
        if not missing.any():
            return indices
        if self.num_oov_indices == 0:
            bad = flat[missing][:5].tolist()
            raise ValueError(
                f"{self.name}: with num_oov_indices=0 every input must be in the vocabulary, "
                f"found {bad}; set num_oov_indices=1"
            )
        if self.num_oov_indices == 1:
            indices[missing] = self._oov_start()
        else:
            indices[missing] = self._oov_buckets(flat[missing].tolist()) + self._oov_start()
        return indices

    def _lookup(self, x: Any) -> tuple[torch.Tensor, torch.device]:
        raise NotImplementedError

    def _invert(self, x: Any) -> Any:
        raise NotImplementedError

    # -- config -----------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        vocabulary = self.get_vocabulary() if self._tokens else None
        idf = None
        if self._idf is not None and vocabulary is not None:
            idf = self._idf[: len(vocabulary)].tolist()
        config.update(
            {
                "invert": self.invert,
                "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices,
                "oov_token": self.oov_token,
                "mask_token": self.mask_token,
                "output_mode": self.output_mode,
                "sparse": False,
                "pad_to_max_tokens": self.pad_to_max_tokens,
                "vocabulary": vocabulary,
                "idf_weights": idf,
                "vocabulary_size": self.vocabulary_size() if self._tokens else None,
                "salt": None if self.salt is None else list(self.salt),
            }
        )
        if not self._has_input_vocabulary:
            config["has_input_vocabulary"] = False  # adapted: may be adapted again
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """A layer from a config, its sizes and vocabulary checked before anything is built."""
        layer = str(config.get("name", cls.__name__))
        for key in ("max_tokens", "num_oov_indices", "vocabulary_size"):
            value = config.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(
                    f"{layer}: config key {key!r} must be a whole number >= 0, got {value!r:.60}"
                )
            bounded(layer, key, value)
        for key in ("vocabulary", "idf_weights"):
            value = config.get(key)
            if value is not None and not isinstance(value, list):
                raise ValueError(
                    f"{layer}: config key {key!r} must be a list, got {type(value).__name__}"
                )
            if isinstance(value, list) and len(value) > CONFIG_DEPTH_LIMIT:
                raise ValueError(
                    f"{layer}: config key {key!r} holds {len(value):,} entries, too many"
                )
        weights = config.get("idf_weights") or []
        if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise ValueError(f"{layer}: config key 'idf_weights' must hold numbers")
        if weights and not all(math.isfinite(w) for w in weights):
            raise ValueError(f"{layer}: config key 'idf_weights' must hold finite numbers")
        return cls(**config)
