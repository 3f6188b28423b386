"""Keras' recurrent layers `SimpleRNN`, `LSTM` and `GRU` (batch-major `(N, T, F)`).

NOTE [ Recurrent weights: Keras layout outside, torch layout inside ]
Parameters are stored as torch's fused kernels want them (`(gates*units, in)`,
torch's gate order) and `get_weights()`/`set_weights()` convert to Keras'
layout and order: kernel `(in, gates*units)`, recurrent kernel
`(units, gates*units)`, bias. LSTM gates are i, f, c, o in both libraries;
GRU gates are z, r, h in Keras and r, z, n in torch, so those blocks are
swapped at the boundary. Keras' LSTM and SimpleRNN have one bias where torch
adds two (input and recurrent), so the recurrent one is passed as zeros. The
math is then identical, and a forward pass takes torch's fused kernel
(`torch.lstm`/`torch.gru`/`torch.rnn_tanh`) when the activations are
Keras' defaults (tanh/sigmoid), there is no recurrent dropout, and the mask
(if any) is padding, one block of valid steps per sequence (run packed, see
`_fused_masked`); otherwise a per-step loop of Keras' cell formulas runs
(2.3x to 14x slower on CPU, see benchmarks/rnn_fused_vs_loop.py).

NOTE [ Masks ]
As in Keras 3, a mask travels as the `_keras_mask` attribute of a tensor: an
`Embedding(mask_zero=True)` or `Masking` layer sets it, and a recurrent layer
reads it from its input (or takes `mask=`). At a masked step the state is
carried over unchanged and the output repeats the previous one (zeros with
`zero_output_for_mask=True`, which `Bidirectional` sets for
`return_sequences`), so the last output is the output at the last valid
step; `return_sequences=True` passes the mask on. `Bidirectional`,
`MultiHeadAttention` and `Attention` honour it too. Other layers ignore it,
and an operation that makes a new tensor (e.g. `Dropout`) drops it, where
Keras would pass it on. A mask with holes takes the per-step loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from batchfit import activations, constraints, initializers
from batchfit.layers._base import (
    Layer,
    Regularized,
    Shape,
    _serialize_regularizer,
    attach_constraint,
    losses_used,
    register_layer,
)

__all__ = ["GRU", "LSTM", "SimpleRNN"]

Activation = str | Callable[[torch.Tensor], torch.Tensor] | None


def input_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """The explicit `mask`, else the `_keras_mask` carried by `x` (see NOTE [ Masks ])."""
    return mask if mask is not None else getattr(x, "_keras_mask", None)


def with_mask(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        y._keras_mask = mask  # type: ignore[attr-defined]
    return y


def _dropout_mask(like: torch.Tensor, rate: float) -> torch.Tensor:
    """One Keras dropout mask per sequence (the same for every step): 0 or 1/(1-rate)."""
    return F.dropout(torch.ones_like(like), rate, True)


class _RNN(Regularized, Layer):
    """Shared machinery of the recurrent layers: shapes, states, masks, the loop.

    Keras' `kernel_regularizer`, `recurrent_regularizer`, `bias_regularizer`,
    `activity_regularizer` and the three `*_constraint`s are taken by all three; a
    penalty or constraint sees the kernels in Keras' `(in, gates*units)` layout
    (GRU's gate blocks in torch's order r, z, n, which changes nothing for Keras'
    L1/L2 sums and norm constraints: they treat every column alike).
    """

    _keras_kernel = staticmethod(torch.t)

    gates = 1
    state_count = 1

    def __init__(
        self,
        units: int,
        activation: Activation = "tanh",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from batchfit import regularizers

        self._set_regularizers(kernel_regularizer, bias_regularizer, activity_regularizer)
        self._set_constraints(kernel_constraint, bias_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        if self.recurrent_regularizer is not None:
            losses_used[0] = True
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"{self.name}: units must be a positive integer, got {units!r}")
        if stateful:
            raise ValueError(
                f"{self.name}: stateful=True is not supported (states are not kept between "
                "batches); use stateful=False, or pass initial_state= to each call"
            )
        for what, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{self.name}: {what} must be in [0, 1), got {rate}")
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.unroll = unroll  # the math is the same either way
        self.zero_output_for_mask = zero_output_for_mask
        self.kernel: nn.Parameter = None  # type: ignore[assignment]  # made by build()
        self.recurrent_kernel: nn.Parameter = None  # type: ignore[assignment]
        self.bias: nn.Parameter | None = None
        if self.declared_input_shape is not None:
            self.build((None, *self.declared_input_shape))

    # -- weights --------------------------------------------------------------------
    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def build(self, input_shape: Shape) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"{self.name}: expected sequences (batch, timesteps, features) with known "
                f"features, got input shape {tuple(input_shape)}"
            )
        features, width = int(input_shape[-1]), self.gates * self.units
        kernel = torch.empty(width, features)
        initializers.get(self.kernel_initializer)(kernel, features, width)
        recurrent = torch.empty(width, self.units)
        initializers.get(self.recurrent_initializer)(recurrent, self.units, width)
        self.kernel = nn.Parameter(kernel)
        self.recurrent_kernel = nn.Parameter(recurrent)
        if self.use_bias:
            bias = torch.empty(self._bias_shape())
            initializers.get(self.bias_initializer)(bias, features, width)
            self.bias = nn.Parameter(self._init_bias(bias))
        self._register_weight_penalties()
        attach_constraint(self.recurrent_kernel, self.recurrent_constraint, self._keras_kernel)
        super().build(input_shape)

    def _init_bias(self, bias: torch.Tensor) -> torch.Tensor:
        return bias

    def _to_keras(self, w: np.ndarray, gate_axis: int) -> np.ndarray:
        return w  # torch's gate order is Keras' except in GRU

    def get_weights(self) -> list[np.ndarray]:
        """Kernel `(in, gates*units)`, recurrent kernel `(units, gates*units)`, bias (Keras')."""
        weights = super().get_weights()
        if not weights:
            return weights
        out = [np.ascontiguousarray(self._to_keras(w.T, 1)) for w in weights[:2]]
        if self.use_bias:
            out.append(np.ascontiguousarray(self._to_keras(weights[2], -1)))
        return out

    def set_weights(self, weights: Sequence[Any]) -> None:
        weights = [np.asarray(w) for w in weights]
        if self.built and len(weights) == len(self.weights):
            expected = [tuple(w.shape) for w in self.get_weights()]
            for i, (w, shape) in enumerate(zip(weights, expected)):
                if tuple(w.shape) != shape:
                    raise ValueError(
                        f"layer {self.name!r} weight {i}: expected shape {shape} (Keras layout), "
                        f"got {tuple(w.shape)}"
                    )
            weights = [self._to_keras(w, 1).T for w in weights[:2]] + [
                self._to_keras(w, -1) for w in weights[2:]
            ]
        super().set_weights(weights)

    # -- running --------------------------------------------------------------------
    def _fused(
        self, x: torch.Tensor, states: list[torch.Tensor], batch_sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        return None  # a layer with a fused torch kernel overrides this

    def _fused_masked(
        self, x: torch.Tensor, states: list[torch.Tensor], mask: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        """The fused kernel on masks that keep one block of steps per sequence (padding).

        Each sequence's valid block is moved to the front. When the states to
        return are outputs (GRU, SimpleRNN, or no `return_state`), the kernel runs
        over the whole length and the last valid output is picked (the steps after
        it are discarded, so they change nothing, gradients included); an LSTM's
        carry is only in the kernel's final state, so with `return_state` it runs
        packed (slower on CPU). Outputs go back to their places; before the block
        they are zeros (Keras' first "previous output"), after it the last valid
        output (zeros with `zero_output_for_mask`). Masks with holes take the
        loop. Host sync: reads the lengths.
        """
        steps = x.shape[1]
        lengths = mask.sum(1)
        starts = mask.to(torch.uint8).argmax(1)
        positions = torch.arange(steps, device=x.device)
        offset = positions - starts.unsqueeze(1)
        block = (offset >= 0) & (offset < lengths.unsqueeze(1))
        if steps == 0 or not bool(torch.equal(block, mask)) or bool((lengths == 0).any()):
            return None
        index = (positions + starts.unsqueeze(1)).clamp(max=steps - 1)
        front = x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        if self.state_count == 1 or not self.return_state:
            result = self._fused(front, states)
            if result is None:
                return None
            out = result[0]
            last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[-1])
            final = [out.gather(1, last).squeeze(1)]  # an LSTM's carry is not returned here
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                front, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            order, unorder = packed.sorted_indices, packed.unsorted_indices
            if order is None or unorder is None:
                return None
            result = self._fused(packed.data, [s[order] for s in states], packed.batch_sizes)
            if result is None:
                return None
            final = [s[unorder] for s in result[1]]
            out, _ = nn.utils.rnn.pad_packed_sequence(
                packed._replace(data=result[0]), batch_first=True, total_length=steps
            )
        back = out.gather(1, offset.clamp(0, steps - 1).unsqueeze(-1).expand_as(out))
        after = offset >= lengths.unsqueeze(1)
        fill = torch.zeros_like(final[0]) if self.zero_output_for_mask else final[0]
        sequence = torch.where(block.unsqueeze(-1), back, 0.0)
        sequence = torch.where(after.unsqueeze(-1), fill.unsqueeze(1), sequence)
        return sequence, final

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """`x @ kernel + input bias` for every step at once."""
        return F.linear(x, self.kernel, self._input_bias())

    def _input_bias(self) -> torch.Tensor | None:
        return self.bias

    def _step(
        self, projected: torch.Tensor, states: list[torch.Tensor], h_rec: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def forward(  # type: ignore[override]
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        training: bool | None = None,
        initial_state: torch.Tensor | Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        del training  # Layer.__call__ has set the mode
        if not self.built:
            self.build((None, *inputs.shape[1:]))
            self.to(inputs.device)
        if inputs.dim() != 3:
            raise ValueError(
                f"{self.name}: expected sequences (batch, timesteps, features), got a tensor "
                f"of shape {tuple(inputs.shape)}"
            )
        mask = input_mask(inputs, mask)
        states = self._initial_states(inputs, initial_state)
        x = inputs.flip(1) if self.go_backwards else inputs
        if mask is not None:
            mask = mask.to(torch.bool)
            mask = mask.flip(1) if self.go_backwards else mask
        dropping = self.training and self.dropout > 0.0
        if dropping:
            x = x * _dropout_mask(x[:, 0], self.dropout).unsqueeze(1)
        fused = None
        if not (self.training and self.recurrent_dropout > 0.0):
            fused = self._fused(x, states) if mask is None else self._fused_masked(x, states, mask)
        sequence, states = fused if fused is not None else self._loop(x, states, mask)
        output = sequence if self.return_sequences else sequence[:, -1]
        if self.return_sequences:
            with_mask(output, mask.flip(1) if mask is not None and self.go_backwards else mask)
        if self.activity_regularizer is not None:  # on every output tensor, as Keras
            for tensor in (output, *states) if self.return_state else (output,):
                self._activity_penalty(tensor)
        return [output, *states] if self.return_state else output

    def _initial_states(
        self, x: torch.Tensor, initial_state: torch.Tensor | Sequence[torch.Tensor] | None
    ) -> list[torch.Tensor]:
        if initial_state is None:
            zeros = x.new_zeros(x.shape[0], self.units)
            return [zeros] * self.state_count
        given = [initial_state] if isinstance(initial_state, torch.Tensor) else list(initial_state)
        shape = (x.shape[0], self.units)
        if len(given) != self.state_count or any(tuple(s.shape) != shape for s in given):
            got = [tuple(s.shape) for s in given]
            raise ValueError(
                f"{self.name}: initial_state must be {self.state_count} tensor(s) of shape "
                f"{shape}, got {got}"
            )
        return [s.to(x.dtype) for s in given]

    def _loop(
        self, x: torch.Tensor, states: list[torch.Tensor], mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Keras' cell, one step at a time (masks, recurrent dropout, other activations)."""
        projected = self._project(x)
        rec_mask = None
        if self.training and self.recurrent_dropout > 0.0:
            rec_mask = _dropout_mask(states[0], self.recurrent_dropout)
        outputs = []
        zeros = previous = x.new_zeros(x.shape[0], self.units)
        for t in range(x.shape[1]):
            h_rec = states[0] if rec_mask is None else states[0] * rec_mask
            output, new_states = self._step(projected[:, t], states, h_rec)
            if mask is not None:
                keep = mask[:, t].unsqueeze(-1)
                output = torch.where(keep, output, zeros if self.zero_output_for_mask else previous)
                new_states = [torch.where(keep, n, s) for n, s in zip(new_states, states)]
            outputs.append(output)
            previous, states = output, new_states
        return torch.stack(outputs, 1), states

    def compute_output_shape(self, input_shape: Shape) -> Any:
        batch, steps = input_shape[0], input_shape[1]
        out: Any = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out, *[(batch, self.units)] * self.state_count]
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.name_of(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": False,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
            **self._regularizer_config(),
            "recurrent_regularizer": _serialize_regularizer(self.recurrent_regularizer, self.name),
            **self._constraint_config(),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
        }


def _default(fn: Callable[[torch.Tensor], torch.Tensor] | None, name: str) -> bool:
    return activations.name_of(fn) == name


@register_layer
class SimpleRNN(_RNN):
    """Fully connected RNN: `h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.

    Args:
        units: size of the output and state.
        activation: default tanh (tanh and relu take torch's fused kernel).
        dropout, recurrent_dropout: fractions dropped from inputs / the state
            feeding the recurrence, one mask per sequence (Keras' semantics).
        return_sequences, return_state, go_backwards: as in Keras.
    """

    def _fused(
        self, x: torch.Tensor, states: list[torch.Tensor], batch_sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        name = activations.name_of(self.activation)
        if name not in ("tanh", "relu"):
            return None
        params: list[torch.Tensor] = [self.kernel, self.recurrent_kernel]
        if self.bias is not None:
            params += [self.bias, torch.zeros_like(self.bias)]
        fn = torch.rnn_tanh if name == "tanh" else torch.rnn_relu
        h0 = states[0].unsqueeze(0)
        if batch_sizes is not None:  # packed: see _fused_masked
            seq, h = fn(x, batch_sizes, h0, params, self.use_bias, 1, 0.0, False, False)
        else:
            seq, h = fn(x, h0, params, self.use_bias, 1, 0.0, False, False, True)
        return seq, [h[0]]

    def _step(
        self, projected: torch.Tensor, states: list[torch.Tensor], h_rec: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = projected + h_rec @ self.recurrent_kernel.t()
        h = h if self.activation is None else self.activation(h)
        return h, [h]


@register_layer
class LSTM(_RNN):
    """Long short-term memory (Hochreiter 1997) with Keras' gates i, f, c, o.

    `c_t = f*c_{t-1} + i*activation(z_c)`, `h_t = o*activation(c_t)`, the gates
    through `recurrent_activation`. Weights as Keras: kernel `(in, 4*units)`,
    recurrent kernel `(units, 4*units)`, bias `(4*units,)`.

    Args:
        units: size of the output and states.
        activation: default tanh; recurrent_activation: default sigmoid.
        unit_forget_bias: start the forget-gate bias at 1 (Keras' default).
        dropout, recurrent_dropout, return_sequences, return_state, go_backwards: as Keras.
    """

    gates = 4
    state_count = 2

    def __init__(
        self,
        units: int,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        super().__init__(
            units,
            activation,
            use_bias,
            kernel_initializer,
            recurrent_initializer,
            bias_initializer,
            **kwargs,
        )

    def _init_bias(self, bias: torch.Tensor) -> torch.Tensor:
        if self.unit_forget_bias:
            bias[self.units : 2 * self.units] = 1.0
        return bias

    def _fused(
        self, x: torch.Tensor, states: list[torch.Tensor], batch_sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        defaults = _default(self.activation, "tanh") and _default(
            self.recurrent_activation, "sigmoid"
        )
        if not defaults:
            return None
        params: list[torch.Tensor] = [self.kernel, self.recurrent_kernel]
        if self.bias is not None:
            params += [self.bias, torch.zeros_like(self.bias)]
        hx = (states[0].unsqueeze(0), states[1].unsqueeze(0))
        if batch_sizes is not None:  # packed: see _fused_masked
            seq, h, c = torch.lstm(x, batch_sizes, hx, params, self.use_bias, 1, 0.0, False, False)
        else:
            seq, h, c = torch.lstm(x, hx, params, self.use_bias, 1, 0.0, False, False, True)
        return seq, [h[0], c[0]]

    def _step(
        self, projected: torch.Tensor, states: list[torch.Tensor], h_rec: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        z = projected + h_rec @ self.recurrent_kernel.t()
        zi, zf, zc, zo = z.chunk(4, -1)
        act = self.activation or (lambda v: v)
        gate = self.recurrent_activation or (lambda v: v)
        c = gate(zf) * states[1] + gate(zi) * act(zc)
        h = gate(zo) * act(c)
        return h, [h, c]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "recurrent_activation": activations.name_of(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }


@register_layer
class GRU(_RNN):
    """Gated recurrent unit (Cho 2014) with Keras' gates z, r, h.

    With `reset_after=True` (Keras' default, the form torch's fused GRU computes)
    `hh = activation(x@W_h + b_h + r*(h@U_h + b'_h))` and the bias has shape
    `(2, 3*units)` (input row, recurrent row); with `reset_after=False`
    `hh = activation(x@W_h + (r*h)@U_h + b_h)` and the bias is `(3*units,)`.
    `h_t = z*h_{t-1} + (1-z)*hh`.

    Args:
        units: size of the output and state.
        activation: default tanh; recurrent_activation: default sigmoid.
        reset_after: see above.
        dropout, recurrent_dropout, return_sequences, return_state, go_backwards: as Keras.
    """

    gates = 3

    def __init__(
        self,
        units: int,
        activation: Activation = "tanh",
        recurrent_activation: Activation = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after
        super().__init__(
            units,
            activation,
            use_bias,
            kernel_initializer,
            recurrent_initializer,
            bias_initializer,
            **kwargs,
        )

    def _bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _to_keras(self, w: np.ndarray, gate_axis: int) -> np.ndarray:
        """Swap the first two gate blocks: torch's r, z, n <-> Keras' z, r, h (its own inverse)."""
        first, second, third = np.split(w, 3, axis=gate_axis)
        return np.concatenate([second, first, third], axis=gate_axis)

    def _input_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def _fused(
        self, x: torch.Tensor, states: list[torch.Tensor], batch_sizes: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]] | None:
        defaults = _default(self.activation, "tanh") and _default(
            self.recurrent_activation, "sigmoid"
        )
        if not (self.reset_after and defaults):
            return None
        params: list[torch.Tensor] = [self.kernel, self.recurrent_kernel]
        if self.bias is not None:
            params += [self.bias[0], self.bias[1]]
        h0 = states[0].unsqueeze(0)
        if batch_sizes is not None:  # packed: see _fused_masked
            seq, h = torch.gru(x, batch_sizes, h0, params, self.use_bias, 1, 0.0, False, False)
        else:
            seq, h = torch.gru(x, h0, params, self.use_bias, 1, 0.0, False, False, True)
        return seq, [h[0]]

    def _step(
        self, projected: torch.Tensor, states: list[torch.Tensor], h_rec: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        act = self.activation or (lambda v: v)
        gate = self.recurrent_activation or (lambda v: v)
        xr, xz, xn = projected.chunk(3, -1)
        u_r, u_z, u_n = self.recurrent_kernel.chunk(3, 0)
        if self.reset_after:
            rec_bias = self.bias[1] if self.bias is not None else None
            hr, hz, hn = F.linear(h_rec, self.recurrent_kernel, rec_bias).chunk(3, -1)
            r, z = gate(xr + hr), gate(xz + hz)
            candidate = act(xn + r * hn)
        else:
            r = gate(xr + h_rec @ u_r.t())
            z = gate(xz + h_rec @ u_z.t())
            candidate = act(xn + (r * h_rec) @ u_n.t())
        h = z * states[0] + (1.0 - z) * candidate
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "recurrent_activation": activations.name_of(self.recurrent_activation),
            "reset_after": self.reset_after,
        }
