"""Sequence layers against NumPy implementations of Keras' documented formulas.

Each reference below is written from Keras 3's layer docs and cell formulas
(`keras/src/layers/rnn/{lstm,gru,simple_rnn}.py`, `multi_head_attention.py`,
`attention.py`, `layer_normalization.py`), in Keras' weight layout, and is
fed the arrays `get_weights()` returns.

Comparison with real Keras (recorded, not run here): Keras 3.15.1 on torch
2.13.0 (`KERAS_BACKEND=torch /work/keras-venv/bin/python`), each layer built,
given seeded U(-0.5, 0.5) weights with `set_weights`, run on seeded normal
inputs; the same arrays through batchfit's layers (`set_weights` of Keras'
arrays, unchanged). Max abs difference of every output: LSTM (sequences,
states, go_backwards, relu) <= 6e-8, GRU reset_after=True/False <= 6e-8,
SimpleRNN tanh/relu 0, Bidirectional LSTM concat / GRU sum <= 1.2e-7,
TimeDistributed(Dense) 0, LayerNormalization 0, MultiHeadAttention (scores,
value_dim/output_shape, attention_mask, use_causal_mask) <= 1.2e-7, Attention
(dot, use_scale, concat) 0, Embedding(mask_zero=True) into LSTM / GRU /
Bidirectional(LSTM) / SimpleRNN(go_backwards) <= 3e-8, into MultiHeadAttention
1.2e-7. Weight shapes and order equal Keras' in every case, and parameter
counts equal Keras' `count_params()` (the figures in `KERAS_PARAMS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import batchfit as keras
from batchfit import layers

RNG = np.random.default_rng(0)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


ACTS = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "sigmoid": _sigmoid}


def _rnn_ref(
    kind: str,
    x: np.ndarray,
    weights: list[np.ndarray],
    *,
    activation: str = "tanh",
    reset_after: bool = True,
    go_backwards: bool = False,
    mask: np.ndarray | None = None,
    zero_output_for_mask: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Keras' RNN loop over its cells, in Keras' layout; returns (sequence, final states)."""
    kernel, rec, bias = (w.astype(np.float64) for w in weights)
    x = x.astype(np.float64)
    act, sig = ACTS[activation], _sigmoid
    units = rec.shape[0]
    n, steps = x.shape[:2]
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    states = [np.zeros((n, units)), np.zeros((n, units))]
    previous = np.zeros((n, units))
    outputs = []
    for t in range(steps):
        xt, h = x[:, t], states[0]
        if kind == "simple":
            out = act(xt @ kernel + bias + h @ rec)
            new = [out, states[1]]
        elif kind == "lstm":
            z = xt @ kernel + h @ rec + bias
            i, f, c, o = np.split(z, 4, axis=-1)
            carry = sig(f) * states[1] + sig(i) * act(c)
            out = sig(o) * act(carry)
            new = [out, carry]
        else:  # gru, gates z, r, h
            wz, wr, wh = np.split(kernel, 3, axis=-1)
            uz, ur, uh = np.split(rec, 3, axis=-1)
            if reset_after:
                bz, br, bh = np.split(bias[0], 3)
                rz, rr, rh = np.split(bias[1], 3)
                z = sig(xt @ wz + bz + h @ uz + rz)
                r = sig(xt @ wr + br + h @ ur + rr)
                hh = act(xt @ wh + bh + r * (h @ uh + rh))
            else:
                bz, br, bh = np.split(bias, 3)
                z = sig(xt @ wz + bz + h @ uz)
                r = sig(xt @ wr + br + h @ ur)
                hh = act(xt @ wh + bh + (r * h) @ uh)
            out = z * h + (1 - z) * hh
            new = [out, states[1]]
        if mask is not None:
            keep = mask[:, t, None]
            out = np.where(keep, out, 0.0 if zero_output_for_mask else previous)
            new = [np.where(keep, a, b) for a, b in zip(new, states)]
        outputs.append(out)
        previous, states = out, new
    return np.stack(outputs, 1), states


def _random_weights(layer: layers.Layer, rng: np.random.Generator) -> list[np.ndarray]:
    weights = [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    return weights


def _np(y: Any) -> np.ndarray:
    return y.detach().numpy()


RNN_CASES = [
    ("lstm", layers.LSTM, {}),
    ("lstm", layers.LSTM, {"go_backwards": True}),
    ("lstm", layers.LSTM, {"activation": "relu"}),  # the per-step loop
    ("gru", layers.GRU, {}),
    ("gru", layers.GRU, {"reset_after": False}),  # the per-step loop
    ("gru", layers.GRU, {"go_backwards": True, "activation": "relu"}),
    ("simple", layers.SimpleRNN, {}),
    ("simple", layers.SimpleRNN, {"activation": "relu", "go_backwards": True}),
]


@pytest.mark.parametrize(("kind", "cls", "options"), RNN_CASES)
def test_recurrent_layers_compute_keras_cells(kind: str, cls: Any, options: dict) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    layer = cls(5, return_sequences=True, return_state=True, **options)
    layer(torch.as_tensor(x))
    weights = _random_weights(layer, rng)
    seq, *states = layer(torch.as_tensor(x))
    ref_options = {k: v for k, v in options.items()}
    want_seq, want_states = _rnn_ref(kind, x, weights, **ref_options)
    np.testing.assert_allclose(_np(seq), want_seq, atol=1e-5)
    count = 2 if kind == "lstm" else 1
    assert len(states) == count
    for got, want in zip(states, want_states[:count]):
        np.testing.assert_allclose(_np(got), want, atol=1e-5)
    last = cls(5, **options)
    last(torch.as_tensor(x))
    last.set_weights(weights)
    np.testing.assert_allclose(_np(last(torch.as_tensor(x))), want_seq[:, -1], atol=1e-5)


@pytest.mark.parametrize(("kind", "cls", "options"), RNN_CASES[:1] + RNN_CASES[3:4])
def test_recurrent_gradients_match_finite_differences_of_the_reference(
    kind: str, cls: Any, options: dict
) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    layer = cls(3, **options)
    layer(torch.as_tensor(x))
    weights = _random_weights(layer, rng)
    layer(torch.as_tensor(x)).sum().backward()
    # d(sum of outputs)/d(kernel) in Keras' layout, from the layer's torch gradients
    grads = [p.grad.numpy() for p in layer.parameters()]  # type: ignore[union-attr]
    keras_layout = layer.get_weights
    saved = [p.detach().clone() for p in layer.parameters()]
    with torch.no_grad():
        for p, g in zip(layer.parameters(), grads):
            p.copy_(torch.as_tensor(g))
    grad_kernel, grad_rec, grad_bias = keras_layout()
    with torch.no_grad():
        for p, s in zip(layer.parameters(), saved):
            p.copy_(s)
    for which, grad in ((0, grad_kernel), (1, grad_rec), (2, grad_bias)):
        for index in [tuple(rng.integers(0, d) for d in grad.shape) for _ in range(4)]:
            eps = 1e-4
            plus = [w.astype(np.float64) for w in weights]
            minus = [w.astype(np.float64) for w in weights]
            plus[which][index] += eps
            minus[which][index] -= eps
            numeric = (
                _rnn_ref(kind, x, plus)[0][:, -1].sum() - _rnn_ref(kind, x, minus)[0][:, -1].sum()
            ) / (2 * eps)
            assert grad[index] == pytest.approx(numeric, abs=1e-4), (which, index)


def test_fused_kernel_and_loop_agree_including_gradients() -> None:
    x = torch.randn(4, 7, 3)
    for cls in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        layer = cls(5, return_sequences=True)
        layer(x)
        fused = layer(x)
        fused.sum().backward()
        fused_grads = [p.grad.clone() for p in layer.parameters()]  # type: ignore[union-attr]
        layer.zero_grad()
        looped, _ = layer._loop(x, [torch.zeros(4, 5)] * layer.state_count, None)
        looped.sum().backward()
        torch.testing.assert_close(looped, fused, atol=1e-6, rtol=0)
        for got, want in zip(layer.parameters(), fused_grads):
            torch.testing.assert_close(got.grad, want, atol=1e-5, rtol=0)


#: `count_params()` and output shapes of the same layers in Keras 3.15.1 (torch backend)
KERAS_PARAMS = [
    (lambda: layers.LSTM(16), (10, 4), 1344, (None, 16)),
    (lambda: layers.GRU(16), (10, 4), 1056, (None, 16)),
    (lambda: layers.GRU(16, reset_after=False), (10, 4), 1008, (None, 16)),
    (lambda: layers.SimpleRNN(16), (10, 4), 336, (None, 16)),
    (lambda: layers.Bidirectional(layers.LSTM(16)), (10, 4), 2688, (None, 32)),
    (lambda: layers.Embedding(100, 8), (10,), 800, (None, 10, 8)),
    (lambda: layers.LayerNormalization(), (10, 4), 8, (None, 10, 4)),
]


@pytest.mark.parametrize(("make", "shape", "params", "out_shape"), KERAS_PARAMS)
def test_parameter_counts_and_symbolic_shapes_equal_keras(
    make: Any, shape: tuple, params: int, out_shape: tuple
) -> None:
    layer = make()
    y = layer(keras.Input(shape))
    assert y.shape == out_shape
    assert sum(p.numel() for p in layer.parameters()) == params


def test_weight_shapes_and_order_are_keras() -> None:
    x = torch.zeros(2, 6, 4)
    expected = {
        layers.LSTM(5): [(4, 20), (5, 20), (20,)],
        layers.GRU(5): [(4, 15), (5, 15), (2, 15)],
        layers.GRU(5, reset_after=False): [(4, 15), (5, 15), (15,)],
        layers.SimpleRNN(5): [(4, 5), (5, 5), (5,)],
        layers.Bidirectional(layers.LSTM(5)): [(4, 20), (5, 20), (20,)] * 2,
        layers.TimeDistributed(layers.Dense(3)): [(4, 3), (3,)],
        layers.LayerNormalization(): [(4,), (4,)],
    }
    for layer, shapes in expected.items():
        layer(x)
        assert [w.shape for w in layer.get_weights()] == shapes, layer.name
    mha = layers.MultiHeadAttention(3, 2, value_dim=5, output_shape=7)
    mha(torch.zeros(2, 5, 6), torch.zeros(2, 7, 3), torch.zeros(2, 7, 4))
    assert [w.shape for w in mha.get_weights()] == [
        (6, 3, 2), (3, 2), (4, 3, 2), (3, 2), (3, 3, 5), (3, 5), (3, 5, 7), (7,),
    ]  # fmt: skip
    assert layers.LSTM(3).get_config()["unit_forget_bias"] is True
    lstm = layers.LSTM(3)
    lstm(x)
    np.testing.assert_array_equal(lstm.get_weights()[2], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


def test_set_weights_rejects_shapes_in_the_wrong_layout() -> None:
    layer = layers.GRU(5)
    layer(torch.zeros(1, 2, 4))
    wrong = [np.zeros((15, 4)), np.zeros((5, 15)), np.zeros((2, 15))]
    with pytest.raises(ValueError, match=r"weight 0: expected shape \(4, 15\)"):
        layer.set_weights(wrong)


def test_bidirectional_merges_forward_and_reversed_backward() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    for mode in ("concat", "sum", "mul", "ave", None):
        layer = layers.Bidirectional(layers.GRU(4, return_sequences=True), merge_mode=mode)
        layer(torch.as_tensor(x))
        weights = _random_weights(layer, rng)
        fw = _rnn_ref("gru", x, weights[:3])[0]
        bw = _rnn_ref("gru", x, weights[3:], go_backwards=True)[0][:, ::-1]
        want: Any = {
            "concat": np.concatenate([fw, bw], -1),
            "sum": fw + bw,
            "mul": fw * bw,
            "ave": (fw + bw) / 2,
            None: None,
        }[mode]
        got = layer(torch.as_tensor(x))
        if mode is None:
            np.testing.assert_allclose(_np(got[0]), fw, atol=1e-5)
            np.testing.assert_allclose(_np(got[1]), bw, atol=1e-5)
        else:
            np.testing.assert_allclose(_np(got), want, atol=1e-5)
    states = layers.Bidirectional(layers.LSTM(4, return_state=True))(torch.as_tensor(x))
    assert [tuple(s.shape) for s in states] == [(2, 8)] + [(2, 4)] * 4


def test_embedding_mask_zero_carries_the_last_valid_state_through_rnns() -> None:
    rng = np.random.default_rng(4)
    ids = rng.integers(1, 20, size=(4, 7))
    ids[0, 5:] = 0  # padded at the end
    ids[1, :3] = 0  # padded at the start (pad_sequences' default)
    ids[2, 2] = 0  # a hole
    for kind, rnn, options in [
        ("lstm", layers.LSTM(5), {}),
        ("gru", layers.GRU(5, return_sequences=True), {}),
        (
            "simple",
            layers.SimpleRNN(5, go_backwards=True, return_sequences=True),
            {"go_backwards": True},
        ),
    ]:
        model = keras.Sequential(
            [keras.Input((7,), dtype="int64"), layers.Embedding(20, 4, mask_zero=True), rnn]
        )
        weights = [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]
        model.set_weights(weights)
        vectors = weights[0][ids]
        seq, _ = _rnn_ref(kind, vectors, weights[1:], mask=ids != 0, **options)
        got = _np(model(torch.as_tensor(ids)))
        want = seq if rnn.return_sequences else seq[:, -1]
        np.testing.assert_allclose(got, want, atol=1e-5)
        unmasked, _ = _rnn_ref(kind, vectors, weights[1:])
        assert not np.allclose(got, unmasked if rnn.return_sequences else unmasked[:, -1])


def test_bidirectional_zeroes_masked_outputs_and_masking_layer_masks() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    x[0, 3:] = 0.0
    layer = layers.Bidirectional(layers.LSTM(4, return_sequences=True))
    masking = layers.Masking(0.0)
    layer(masking(torch.as_tensor(x)))
    weights = _random_weights(layer, rng)
    mask = (x != 0).any(-1)
    fw = _rnn_ref("lstm", x, weights[:3], mask=mask, zero_output_for_mask=True)[0]
    bw = _rnn_ref("lstm", x, weights[3:], mask=mask, go_backwards=True, zero_output_for_mask=True)
    want = np.concatenate([fw, bw[0][:, ::-1]], -1)
    got = layer(masking(torch.as_tensor(x)))
    np.testing.assert_allclose(_np(got), want, atol=1e-5)
    assert np.all(_np(got)[0, 3:] == 0.0)
    np.testing.assert_array_equal(got._keras_mask.numpy(), mask)


def test_dropout_uses_one_input_mask_per_sequence() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    layer = layers.LSTM(5, dropout=0.5, return_sequences=True)
    layer(torch.as_tensor(x))
    weights = _random_weights(layer, rng)
    layer.train()
    torch.manual_seed(11)
    drop = torch.nn.functional.dropout(torch.ones(3, 4), 0.5, True).numpy()
    torch.manual_seed(11)
    got = _np(layer(torch.as_tensor(x)))
    np.testing.assert_allclose(got, _rnn_ref("lstm", x * drop[:, None, :], weights)[0], atol=1e-5)
    layer.eval()
    np.testing.assert_allclose(
        _np(layer(torch.as_tensor(x))), _rnn_ref("lstm", x, weights)[0], atol=1e-5
    )


def test_recurrent_dropout_masks_only_the_state_feeding_the_recurrence() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    layer = layers.GRU(5, recurrent_dropout=0.4, return_sequences=True)
    layer(torch.as_tensor(x))
    kernel, rec, bias = (w.astype(np.float64) for w in _random_weights(layer, rng))
    layer.train()
    torch.manual_seed(12)
    drop = torch.nn.functional.dropout(torch.ones(3, 5), 0.4, True).numpy()
    torch.manual_seed(12)
    got = _np(layer(torch.as_tensor(x)))
    h = np.zeros((3, 5))
    wz, wr, wh = np.split(kernel, 3, axis=-1)
    uz, ur, uh = np.split(rec, 3, axis=-1)
    bz, br, bh = np.split(bias[0], 3)
    rz, rr, rh = np.split(bias[1], 3)
    for t in range(6):
        hd = h * drop
        z = _sigmoid(x[:, t] @ wz + bz + hd @ uz + rz)
        r = _sigmoid(x[:, t] @ wr + br + hd @ ur + rr)
        hh = np.tanh(x[:, t] @ wh + bh + r * (hd @ uh + rh))
        h = z * h + (1 - z) * hh
        np.testing.assert_allclose(got[:, t], h, atol=1e-5)


def test_initial_state_and_stateful_errors() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    layer = layers.SimpleRNN(3)
    layer(torch.as_tensor(x))
    kernel, rec, bias = _random_weights(layer, rng)
    h0 = rng.normal(size=(2, 3)).astype(np.float32)
    h = h0.astype(np.float64)
    for t in range(4):
        h = np.tanh(x[:, t] @ kernel + bias + h @ rec)
    got = layer(torch.as_tensor(x), initial_state=[torch.as_tensor(h0)])
    np.testing.assert_allclose(_np(got), h, atol=1e-5)
    with pytest.raises(ValueError, match=r"initial_state must be 1 tensor\(s\) of shape \(2, 3\)"):
        layer(torch.as_tensor(x), initial_state=[torch.zeros(2, 4)])
    with pytest.raises(ValueError, match="stateful=True is not supported"):
        layers.LSTM(4, stateful=True)
    with pytest.raises(ValueError, match=r"expected sequences \(batch, timesteps, features\)"):
        layers.GRU(4)(torch.zeros(2, 3))


def test_embedding_looks_up_rows_and_names_bad_ids() -> None:
    layer = layers.Embedding(10, 3)
    table = layer.get_weights()[0]
    assert table.shape == (10, 3) and np.abs(table).max() <= 0.05  # Keras' 'uniform'
    ids = np.array([[1, 2, 9], [0, 0, 4]])
    np.testing.assert_array_equal(_np(layer(torch.as_tensor(ids))), table[ids])
    np.testing.assert_array_equal(_np(layer(torch.as_tensor(ids, dtype=torch.float32))), table[ids])
    with pytest.raises(
        IndexError, match=r"ids must be in \[0, 10\) \(input_dim\), got ids from 0 to 12"
    ):
        layer(torch.tensor([[0, 12]]))
    assert layers.Embedding(10, 3, input_length=5).get_config()["input_length"] == 5


def test_layer_normalization_uses_keras_epsilon() -> None:
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(2, 3, 6)) * 0.02).astype(np.float32)  # small variance: epsilon shows
    layer = layers.LayerNormalization()
    layer(torch.as_tensor(x))
    gamma, beta = _random_weights(layer, rng)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    want = gamma * (x - mean) / np.sqrt(var + 1e-3) + beta
    np.testing.assert_allclose(_np(layer(torch.as_tensor(x))), want, atol=1e-5)
    with pytest.raises(ValueError, match="only the last axis"):
        layers.LayerNormalization(axis=1)(torch.as_tensor(x))


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _mha_ref(
    q: np.ndarray, v: np.ndarray, k: np.ndarray, w: list[np.ndarray], key_dim: int, mask: Any
) -> Any:
    query = np.einsum("btd,dhk->bthk", q, w[0]) + w[1]
    key = np.einsum("bsd,dhk->bshk", k, w[2]) + w[3]
    value = np.einsum("bsd,dhk->bshk", v, w[4]) + w[5]
    scores = np.einsum("bthk,bshk->bhts", query / np.sqrt(key_dim), key)
    if mask is not None:
        scores = np.where(mask[:, None], scores, -1e9)
    probs = _softmax(scores)
    heads = np.einsum("bhts,bshk->bthk", probs, value)
    return np.einsum("bthk,hko->bto", heads, w[6]) + w[7], probs


def test_multi_head_attention_matches_the_formula_with_masks() -> None:
    rng = np.random.default_rng(10)
    q = rng.normal(size=(2, 5, 6)).astype(np.float32)
    v = rng.normal(size=(2, 7, 3)).astype(np.float32)
    k = rng.normal(size=(2, 7, 4)).astype(np.float32)
    layer = layers.MultiHeadAttention(3, 2, value_dim=5, output_shape=7)
    args = [torch.as_tensor(a) for a in (q, v, k)]
    layer(*args)
    weights = _random_weights(layer, rng)
    mask = rng.uniform(size=(2, 5, 7)) > 0.3
    for given in (None, mask):
        out, scores = layer(
            *args,
            attention_mask=None if given is None else torch.as_tensor(given),
            return_attention_scores=True,
        )
        want_out, want_scores = _mha_ref(q, v, k, weights, 2, given)
        np.testing.assert_allclose(_np(out), want_out, atol=1e-5)
        np.testing.assert_allclose(_np(scores), want_scores, atol=1e-6)
    self_attention = layers.MultiHeadAttention(2, 4)
    self_attention(args[0], args[0])
    weights = _random_weights(self_attention, rng)
    causal = np.broadcast_to(np.tril(np.ones((5, 5), bool)), (2, 5, 5))
    got = self_attention(args[0], args[0], use_causal_mask=True)
    np.testing.assert_allclose(_np(got), _mha_ref(q, q, q, weights, 4, causal)[0], atol=1e-5)
    y = layers.MultiHeadAttention(2, 4)(keras.Input((10, 6)), keras.Input((8, 3)))
    assert y.shape == (None, 10, 6)


def test_attention_layer_matches_luong_formula() -> None:
    rng = np.random.default_rng(11)
    q = rng.normal(size=(2, 5, 4)).astype(np.float32)
    v = rng.normal(size=(2, 7, 4)).astype(np.float32)
    k = rng.normal(size=(2, 7, 4)).astype(np.float32)
    q_mask = rng.uniform(size=(2, 5)) > 0.3
    v_mask = rng.uniform(size=(2, 7)) > 0.3
    plain = layers.Attention()
    out, weights = plain([torch.as_tensor(q), torch.as_tensor(v)], return_attention_scores=True)
    probs = _softmax(q @ v.transpose(0, 2, 1))
    np.testing.assert_allclose(_np(weights), probs, atol=1e-6)
    np.testing.assert_allclose(_np(out), probs @ v, atol=1e-5)
    scaled = layers.Attention(use_scale=True)
    scaled.set_weights([np.array(0.7, np.float32)])
    got = scaled(
        [torch.as_tensor(a) for a in (q, v, k)],
        mask=[torch.as_tensor(q_mask), torch.as_tensor(v_mask)],
    )
    scores = 0.7 * q @ k.transpose(0, 2, 1) - 1e9 * ~v_mask[:, None, :]
    np.testing.assert_allclose(_np(got), (_softmax(scores) @ v) * q_mask[..., None], atol=1e-5)
    concat = layers.Attention(use_scale=True, score_mode="concat")
    concat.set_weights([np.array(0.5, np.float32), np.array(1.5, np.float32)])
    scores = 1.5 * np.tanh(0.5 * (q[:, :, None, :] + v[:, None, :, :])).sum(-1)
    got = concat([torch.as_tensor(q), torch.as_tensor(v)])
    np.testing.assert_allclose(_np(got), _softmax(scores) @ v, atol=1e-5)


def test_time_distributed_applies_the_layer_per_step() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    layer = layers.TimeDistributed(layers.Dense(3, activation="relu"))
    layer(torch.as_tensor(x))
    kernel, bias = _random_weights(layer, rng)
    np.testing.assert_allclose(
        _np(layer(torch.as_tensor(x))), np.maximum(x @ kernel + bias, 0), atol=1e-5
    )
    assert layers.TimeDistributed(layers.Dense(3))(keras.Input((5, 4))).shape == (None, 5, 3)


def test_functional_sequence_model_trains_saves_and_reloads(tmp_path: Any) -> None:
    rng = np.random.default_rng(13)
    ids = rng.integers(0, 30, size=(64, 9))
    y = (ids[:, :3].sum(1) > 45).astype(np.float32)
    inputs = keras.Input((9,), dtype="int64")
    x = layers.Embedding(30, 8, mask_zero=True)(inputs)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True))(x)
    x = layers.LayerNormalization()(x)
    x = layers.MultiHeadAttention(2, 4)(x, x)
    x = layers.GRU(5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, device="cpu")
    model.compile("adam", "binary_crossentropy")
    history = model.fit(ids, y, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = str(tmp_path / "seq.safetensors")
    model.save(path)
    loaded = keras.models.load_model(path, device="cpu")
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    rebuilt = keras.models.model_from_json(model.to_json())
    assert rebuilt.count_params() == model.count_params()


def test_fit_from_the_same_weights_gives_keras_loss_history() -> None:
    """Masked Embedding -> Bidirectional(LSTM) -> GRU -> SimpleRNN trained with SGD.

    Keras' history was obtained by running this same construction (same seeded
    data and weights, `shuffle=False`) under Keras 3.15.1 with the torch 2.13.0
    backend: [0.6204262, 0.5840497, 0.5740179].
    """
    rng = np.random.default_rng(21)
    x = rng.integers(0, 50, size=(64, 12))
    x[:8, :4] = 0
    y = (np.isin(x, np.arange(1, 10)).sum(1) > 2).astype("float32")
    inputs = keras.Input(shape=(12,), dtype="int32")
    h = layers.Embedding(50, 6, mask_zero=True)(inputs)
    h = layers.Bidirectional(layers.LSTM(5, return_sequences=True))(h)
    h = layers.GRU(4, return_sequences=True)(h)
    h = layers.SimpleRNN(3)(h)
    outputs = layers.Dense(1, activation="sigmoid")(h)
    model = keras.Model(inputs, outputs, device="cpu")
    wrng = np.random.default_rng(22)
    model.set_weights(
        [wrng.uniform(-0.4, 0.4, w.shape).astype("float32") for w in model.get_weights()]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.3), loss="binary_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        history.history["loss"], [0.6204262, 0.5840497, 0.5740179], atol=2e-6
    )


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU, layers.SimpleRNN])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("return_state", [False, True])  # an LSTM's states: the packed run
def test_padding_masks_take_the_fused_kernel_with_keras_results(
    cls: Any, go_backwards: bool, zero_output_for_mask: bool, return_state: bool
) -> None:
    kind = {layers.LSTM: "lstm", layers.GRU: "gru", layers.SimpleRNN: "simple"}[cls]
    rng = np.random.default_rng(14)
    x = rng.normal(size=(5, 8, 3)).astype(np.float32)
    mask = np.ones((5, 8), bool)
    mask[0, 5:] = False  # padding after (pad_sequences(padding="post"))
    mask[1, :6] = False  # padding before (pad_sequences' default)
    mask[2, :2] = mask[2, 7:] = False  # both
    layer = cls(
        4,
        return_sequences=True,
        return_state=return_state,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    layer(torch.as_tensor(x))
    weights = _random_weights(layer, rng)
    taken: list[Any] = []
    fused_masked = layer._fused_masked
    layer._fused_masked = lambda *a: taken.append(fused_masked(*a)) or taken[-1]  # type: ignore[method-assign]
    xt = torch.tensor(x, requires_grad=True)
    result = layer(xt, mask=torch.as_tensor(mask))
    seq, *states = result if return_state else [result]
    assert len(states) == (layer.state_count if return_state else 0)
    assert len(taken) == 1 and taken[0] is not None  # the fused path ran, not the loop
    want_seq, want_states = _rnn_ref(
        kind,
        x,
        weights,
        mask=mask,
        go_backwards=go_backwards,
        zero_output_for_mask=zero_output_for_mask,
    )
    np.testing.assert_allclose(_np(seq), want_seq, atol=1e-5)
    for got, want in zip(states, want_states):
        np.testing.assert_allclose(_np(got), want, atol=1e-5)
    (seq.sum() + sum(s.sum() for s in states)).backward()
    fused_grads = [xt.grad.clone(), *(p.grad.clone() for p in layer.parameters())]  # type: ignore[union-attr]
    layer.zero_grad()
    xt.grad = None
    flipped = xt.flip(1) if go_backwards else xt
    flipped_mask = torch.as_tensor(mask).flip(1) if go_backwards else torch.as_tensor(mask)
    looped, loop_states = layer._loop(
        flipped, [torch.zeros(5, 4)] * layer.state_count, flipped_mask
    )
    (looped.sum() + sum(s.sum() for s in loop_states[: len(states)])).backward()
    loop_grads = [xt.grad, *(p.grad for p in layer.parameters())]
    for got, want in zip(fused_grads, loop_grads):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
