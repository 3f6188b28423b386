"""`MultiHeadAttention` and `Attention` (Luong dot-product) with Keras' weights and masks.

Masks follow Keras: a boolean `attention_mask` `(B, T, S)` is True where a
query may attend; the `_keras_mask` of the query/value/key tensors (see NOTE
[ Masks ] in `_recurrent.py`) and `use_causal_mask=True` are combined with it.
Masked scores become -1e9 before the softmax, as Keras' masked softmax does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchfit import initializers
from batchfit.layers._base import Layer, Shape, register_layer
from batchfit.layers._recurrent import input_mask

__all__ = ["Attention", "MultiHeadAttention"]

_LARGE_NEGATIVE = -1e9


def _causal(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    steps, sources = query.shape[1], key.shape[1]
    return torch.ones(steps, sources, dtype=torch.bool, device=query.device).tril()


def _combine(*masks: torch.Tensor | None) -> torch.Tensor | None:
    result = None
    for m in masks:
        if m is not None:
            result = m.bool() if result is None else result & m.bool()
    return result


def _kernel(shape: tuple[int, ...], initializer: str) -> nn.Parameter:
    """An einsum kernel with Keras' fans: the leading axes count as the receptive field."""
    field = math.prod(shape[:-2])
    kernel = torch.empty(shape)
    initializers.get(initializer)(kernel, shape[-2] * field, shape[-1] * field)
    return nn.Parameter(kernel)


@register_layer
class MultiHeadAttention(Layer):
    """Multi-head attention as Keras' (Vaswani 2017), weights in Keras' layout.

    Weights, in order: query kernel `(query_dim, num_heads, key_dim)` and bias
    `(num_heads, key_dim)`, the same for key and value (`value_dim`), then the
    output kernel `(num_heads, value_dim, output_dim)` and bias `(output_dim,)`.

    Args:
        num_heads: attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default `key_dim`).
        dropout: dropout on the attention probabilities while training.
        use_bias: biases on the four projections.
        output_shape: last dimension of the output (default: the query's).

    Call: `layer(query, value, key=None, attention_mask=None,
    return_attention_scores=False, training=None, use_causal_mask=False)`;
    with `return_attention_scores` the result is `(output, scores)`, scores
    `(B, num_heads, T, S)` before dropout.
    """

    output_kernel: nn.Parameter  # made at the first call, with the other projections

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: Any = None,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if attention_axes not in (None, 1, (1,), [1]):
            raise ValueError(
                f"{self.name}: only attention over the sequence axis is supported "
                f"(attention_axes=None), got {attention_axes!r}"
            )
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError(f"{self.name}: output_shape must be one int, got {output_shape}")
            output_shape = output_shape[0]
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{self.name}: dropout must be in [0, 1), got {dropout}")
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = use_bias
        self.output_shape = None if output_shape is None else int(output_shape)  # type: ignore[arg-type]
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        del seed  # dropout draws from torch's generator, which resume saves

    def build(self, input_shape: Shape) -> None:
        """Weights need the value's shape too: they are made at the first call."""

    def _build(self, query: torch.Tensor, value: torch.Tensor, key: torch.Tensor) -> None:
        heads = self.num_heads
        out_dim = self.output_shape or query.shape[-1]
        specs = [
            ("query", (query.shape[-1], heads, self.key_dim), (heads, self.key_dim)),
            ("key", (key.shape[-1], heads, self.key_dim), (heads, self.key_dim)),
            ("value", (value.shape[-1], heads, self.value_dim), (heads, self.value_dim)),
            ("output", (heads, self.value_dim, out_dim), (out_dim,)),
        ]
        for name, kernel_shape, bias_shape in specs:
            setattr(self, f"{name}_kernel", _kernel(kernel_shape, self.kernel_initializer))
            if self.use_bias:
                setattr(self, f"{name}_bias", nn.Parameter(torch.zeros(bias_shape)))
        super().build((None, *query.shape[1:]))
        self.to(query.device)

    def _project(self, x: torch.Tensor, name: str) -> torch.Tensor:
        kernel: torch.Tensor = getattr(self, f"{name}_kernel")
        y = x @ kernel.reshape(kernel.shape[0], -1)
        y = y.reshape(*x.shape[:-1], kernel.shape[1], kernel.shape[2])
        bias: torch.Tensor | None = getattr(self, f"{name}_bias", None)
        return y if bias is None else y + bias

    def forward(  # type: ignore[override]
        self,
        query: torch.Tensor,
        value: torch.Tensor,
        key: torch.Tensor | None = None,
        query_mask: torch.Tensor | None = None,
        value_mask: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_attention_scores: bool = False,
        training: bool | None = None,
        use_causal_mask: bool = False,
    ) -> Any:
        del training
        key = value if key is None else key
        for what, t in (("query", query), ("value", value), ("key", key)):
            if t.dim() != 3:
                raise ValueError(
                    f"{self.name}: expected {what} of shape (batch, steps, features), got "
                    f"{tuple(t.shape)}"
                )
        if not self.built:
            self._build(query, value, key)
        q_mask = input_mask(query, query_mask)
        v_mask = input_mask(value, value_mask)
        k_mask = input_mask(key, key_mask)
        mask = _combine(
            q_mask.unsqueeze(-1) if q_mask is not None else None,
            v_mask.unsqueeze(-2) if v_mask is not None else None,
            k_mask.unsqueeze(-2) if k_mask is not None else None,
            _causal(query, key) if use_causal_mask else None,
            attention_mask,
        )
        q = self._project(query, "query") * (1.0 / math.sqrt(float(self.key_dim)))
        k = self._project(key, "key")
        v = self._project(value, "value")
        scores = torch.einsum("aecd,abcd->acbe", k, q)  # (B, heads, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(-3), _LARGE_NEGATIVE)
        scores = scores.softmax(-1)
        dropped = F.dropout(scores, self.dropout, self.training) if self.dropout else scores
        heads = torch.einsum("acbe,aecd->abcd", dropped, v)  # (B, T, heads, value_dim)
        out = heads.flatten(-2) @ self.output_kernel.reshape(-1, self.output_kernel.shape[-1])
        bias: torch.Tensor | None = getattr(self, "output_bias", None)
        if bias is not None:
            out = out + bias
        return (out, scores) if return_attention_scores else out

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }


@register_layer
class Attention(Layer):
    """Dot-product (Luong) attention over `[query, value]` or `[query, value, key]`.

    `scores = query @ key^T` (times a learned `scale` if `use_scale`), or with
    `score_mode='concat'` `concat_score_weight * sum(tanh(scale*(q + k)))`;
    the output is `softmax(scores) @ value`, zeroed at masked query steps.

    Args:
        use_scale: learn a scalar `scale` (initially 1).
        score_mode: 'dot' or 'concat'.
        dropout: dropout on the attention probabilities while training.
    """

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"{self.name}: score_mode must be 'dot' or 'concat', got {score_mode!r}"
            )
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.scale: nn.Parameter | None = None
        self.concat_score_weight: nn.Parameter | None = None
        del seed
        self.build((None,))

    def build(self, input_shape: Shape) -> None:
        if not self.built:
            if self.use_scale:
                self.scale = nn.Parameter(torch.tensor(1.0))
            if self.score_mode == "concat":
                self.concat_score_weight = nn.Parameter(torch.tensor(1.0))
        super().build(input_shape)

    def forward(  # type: ignore[override]
        self,
        inputs: Sequence[torch.Tensor],
        mask: Sequence[torch.Tensor | None] | None = None,
        training: bool | None = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        del training
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (2, 3):
            raise ValueError(
                f"{self.name}: expects a list [query, value] or [query, value, key], got "
                f"{type(inputs).__name__}"
            )
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) == 3 else value
        masks = list(mask) if mask is not None else [None, None]
        q_mask = input_mask(query, masks[0])
        v_mask = input_mask(value, masks[1] if len(masks) > 1 else None)
        if self.score_mode == "dot":
            scores = query @ key.transpose(-1, -2)
            if self.scale is not None:
                scores = scores * self.scale
        else:
            summed = query.unsqueeze(-2) + key.unsqueeze(-3)
            if self.scale is not None:
                summed = summed * self.scale
            scores = self.concat_score_weight * summed.tanh().sum(-1)
        scores_mask = _combine(
            v_mask.unsqueeze(-2) if v_mask is not None else None,
            _causal(query, key) if use_causal_mask else None,
        )
        if scores_mask is not None:
            scores = scores - 1e9 * (~scores_mask).to(scores.dtype)
        weights = scores.softmax(-1)
        dropped = F.dropout(weights, self.dropout, self.training) if self.dropout else weights
        result = dropped @ value
        if q_mask is not None:
            result = result * q_mask.unsqueeze(-1).to(result.dtype)
        return (result, weights) if return_attention_scores else result

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
        }
