"""Regression tests for problems found in review (each failed before its fix)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

import batchfit as bf
from batchfit.callbacks import LambdaCallback
from batchfit.layers import Dense
from batchfit.models import Model, Sequential


def _xy(n=48):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True).astype(np.float32)


def _model():
    model = Sequential([Dense(4, activation="relu", input_dim=3), Dense(1)])
    model.compile("sgd", "mse", metrics="mae")  # a single metric name, as Keras allows
    return model


def test_passes_cut_short_by_steps_start_from_the_top_each_time():
    x, y = _xy()
    model = _model()
    src = bf.data.arrays(x, y, batch_size=8)
    assert model.evaluate(src, steps=2, verbose=0) == model.evaluate(src, steps=2, verbose=0)
    np.testing.assert_array_equal(
        model.predict(src, steps=1, verbose=0), model.predict(src, steps=1, verbose=0)
    )
    model.optimizer.learning_rate = 0.0
    history = model.fit(
        x,
        y,
        epochs=3,
        validation_data=bf.data.arrays(x, y, batch_size=8),
        validation_steps=2,
        verbose=0,
    )
    assert len(set(history.history["val_loss"])) == 1


def test_integer_inputs_reach_an_embedding_unchanged():
    net = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 1))
    model = Model(net, device="cpu")
    model.compile("adam", "mse")
    tokens = np.random.default_rng(0).integers(0, 10, size=(16, 2))
    history = model.fit(tokens, np.ones((16, 1), np.float32), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_sequential_casts_integer_images_to_float():
    model = Sequential([Dense(1, input_dim=3)])
    model.compile("sgd", "mse")
    assert isinstance(model.train_on_batch(np.ones((4, 3), np.uint8), np.ones((4, 1))), float)


def test_a_list_of_batches_is_an_iterable_of_batches():
    x, y = _xy()
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 48, 16)]
    model = _model()
    model.fit(batches, epochs=2, verbose=0)
    assert model.optimizer.iterations == 6


def test_empty_batches_are_skipped_not_reported_as_nan():
    x, y = _xy()
    batches = [(x[:16], y[:16]), (x[:0], y[:0]), (x[16:32], y[16:32])]
    model = _model()
    history = model.fit(batches, epochs=1, verbose=0)
    assert model.optimizer.iterations == 2 and np.isfinite(history.history["loss"][0])


def test_a_wrapped_torch_optimizer_keeps_per_group_rates_through_a_state_round_trip():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    opt = torch.optim.SGD(
        [{"params": net[0].parameters(), "lr": 0.1}, {"params": net[1].parameters(), "lr": 0.001}]
    )
    model = Model(net, device="cpu")
    model.compile(opt, "mse")
    model.optimizer.load_state_dict(model.optimizer.state_dict())
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.001]


def test_lambda_callback_runs_every_batch_hook_it_is_given():
    x, y = _xy()
    calls = {"batch_end": 0, "test_batch_end": 0}
    cb = LambdaCallback(
        on_batch_end=lambda b, logs: calls.__setitem__("batch_end", calls["batch_end"] + 1),
        on_test_batch_end=lambda b, logs: calls.__setitem__(
            "test_batch_end", calls["test_batch_end"] + 1
        ),
    )
    _model().fit(x, y, batch_size=16, epochs=1, validation_data=(x, y), callbacks=[cb], verbose=0)
    assert calls == {"batch_end": 3, "test_batch_end": 3}


def test_a_small_csv_splits_over_two_ranks(tmp_path):
    lines = ["a,b,y"] + [f"{i},{i % 7},{i % 2}" for i in range(200)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    src = bf.data.csv(str(tmp_path / "d.csv"), target="y", batch_size=32)
    parts = [np.concatenate([b[0][:, 0] for b in src.shard(r, 2)]) for r in (0, 1)]
    assert len(parts[0]) > 0 and len(parts[1]) > 0
    assert sorted(np.concatenate(parts).tolist()) == list(range(200))


def test_class_weight_lookup_names_a_missing_class():
    x, _ = _xy()
    y = np.array([0, 1, 2] * 16)[:, None]
    model = Sequential([Dense(3, activation="softmax", input_dim=3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError, match=r"class_weight has no weight for class 2; it covers \[0, 1\]"
    ):
        model.fit(x, y, class_weight={0: 1.0, 1: 2.0}, verbose=0)


def test_evaluate_prints_its_values_unless_silent(capsys):
    x, y = _xy()
    model = _model()
    loss, mae = model.evaluate(x, y, batch_size=16, verbose=2)
    line = capsys.readouterr().out.strip()
    assert re.match(r"3/3 - \d+s - \d+(us|ms|s)/step - ", line), line
    assert line.endswith(f" - loss: {loss:.4f} - mae: {mae:.4f}")
    model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""


def test_model_to_moves_the_training_state_along():
    x, y = _xy()
    model = _model()
    model.train_on_batch(x, y)
    model.to("cpu")
    assert isinstance(model.train_on_batch(x, y), list)


def test_fit_reads_whole_epochs_even_after_the_user_peeked_at_a_batch():
    x, y = _xy()
    source = bf.data.arrays(x, y, batch_size=16)
    first = next(iter(source))
    np.testing.assert_array_equal(first[0], x[:16])
    seen = []
    _model().fit(
        source,
        epochs=1,
        verbose=0,
        callbacks=[LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))],
    )
    assert seen == [0, 1, 2]  # 48 rows in batches of 16, the peeked batch included
