"""Keras return conventions, metric naming, predict, summary, weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from batchfit.callbacks import Callback
from batchfit.layers import Dense, Dropout, Input
from batchfit.models import Sequential


def _xy(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x.sum(axis=1, keepdims=True) > 0).astype(np.float32)


def _model(metrics: list | None = None, loss: str = "binary_crossentropy") -> Sequential:
    model = Sequential(
        [Input(shape=(4,)), Dense(8, activation="relu"), Dense(1, activation="sigmoid")]
    )
    model.compile("adam", loss, metrics=metrics)
    return model


def test_train_on_batch_returns_scalar_without_metrics():
    x, y = _xy()
    out = _model().train_on_batch(x, y)
    assert isinstance(out, float)


def test_train_on_batch_returns_list_and_dict_with_metrics():
    x, y = _xy()
    model = _model(["accuracy", "mae"])
    out = model.train_on_batch(x, y)
    assert isinstance(out, list) and len(out) == 3 and all(isinstance(v, float) for v in out)
    d = model.train_on_batch(x, y, return_dict=True)
    assert list(d) == ["loss", "accuracy", "mae"]
    assert model.metrics_names == ["loss", "accuracy", "mae"]


def test_train_on_batch_metrics_cover_one_batch_unless_told_otherwise():
    x, y = _xy()
    model = _model(["accuracy"])
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    model.optimizer.learning_rate = 0.0  # weights stay put: batch values are comparable
    a = model.train_on_batch(x[:32], y[:32], return_dict=True)
    b = model.train_on_batch(x[32:], y[32:], return_dict=True)
    pred = model.predict(x, verbose=0)
    acc_a = np.mean((pred[:32] > 0.5) == (y[:32] > 0.5))
    acc_b = np.mean((pred[32:] > 0.5) == (y[32:] > 0.5))
    assert a["accuracy"] == pytest.approx(acc_a) and b["accuracy"] == pytest.approx(acc_b)
    model.reset_metrics()
    model.train_on_batch(x[:32], y[:32], reset_metrics=False)
    c = model.train_on_batch(x[32:], y[32:], reset_metrics=False, return_dict=True)
    assert c["accuracy"] == pytest.approx((acc_a + acc_b) / 2)


def test_evaluate_and_test_on_batch_conventions():
    x, y = _xy()
    model = _model(["accuracy"])
    assert isinstance(_model().evaluate(x, y, verbose=0), float)
    loss, acc = model.evaluate(x, y, batch_size=16, verbose=0)
    pred = model.predict(x, batch_size=7, verbose=0)
    p = np.clip(pred.astype(np.float64), 1e-12, 1 - 1e-12)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss == pytest.approx(bce, rel=1e-5)
    assert acc == pytest.approx(np.mean((pred > 0.5) == (y > 0.5)))
    d = model.test_on_batch(x, y, return_dict=True)
    assert d["loss"] == pytest.approx(loss, rel=1e-5)


def test_predict_returns_numpy_in_order_for_any_batch_size():
    x, _ = _xy(50)
    model = _model()
    full = model.predict_on_batch(x)
    for bs in (1, 7, 50, 64):
        np.testing.assert_allclose(
            model.predict(x, batch_size=bs, verbose=0), full, rtol=1e-5, atol=1e-6
        )


def test_inputs_may_be_tensors_and_dataframes():
    x, y = _xy()
    model = _model()
    frame = pd.DataFrame(x, columns=list("abcd"))
    a = model.evaluate(torch.from_numpy(x), torch.from_numpy(y), verbose=0)
    b = model.evaluate(frame, pd.Series(y[:, 0]), verbose=0)
    assert a == pytest.approx(b)


def test_sample_weight_and_class_weight_weight_the_loss():
    x, y = _xy()
    model = _model()
    w = np.where(y[:, 0] > 0.5, 3.0, 1.0).astype(np.float32)
    by_sample = model.test_on_batch(x, y, sample_weight=w)
    pred = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    per = -(y[:, 0] * np.log(pred) + (1 - y[:, 0]) * np.log(1 - pred))
    assert by_sample == pytest.approx(np.sum(per * w) / len(w), rel=1e-5)
    model2 = _model()
    model2.set_weights(model.get_weights())
    model.compile("sgd", "binary_crossentropy")
    model2.compile("sgd", "binary_crossentropy")
    model.train_on_batch(x, y, sample_weight=w)
    model2.train_on_batch(x, y, class_weight={0: 1.0, 1: 3.0})
    for a, b in zip(model.get_weights(), model2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_history_and_callback_hooks_in_keras_order():
    x, y = _xy()
    calls: list[str] = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_train_batch_begin(self, batch, logs=None):
            calls.append(f"batch_begin {batch}")

        def on_train_batch_end(self, batch, logs=None):
            calls.append(f"batch_end {batch} {sorted(logs)}")

        def on_test_begin(self, logs=None):
            calls.append("test_begin")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    model = _model(["accuracy"])
    model.fit(
        x, y, batch_size=32, epochs=2, validation_data=(x, y), callbacks=[Recorder()], verbose=0
    )
    assert calls == [
        "train_begin",
        "epoch_begin 0",
        "batch_begin 0",
        "batch_end 0 ['accuracy', 'loss']",
        "batch_begin 1",
        "batch_end 1 ['accuracy', 'loss']",
        "test_begin",
        "epoch_end 0 ['accuracy', 'loss', 'val_accuracy', 'val_loss']",
        "epoch_begin 1",
        "batch_begin 0",
        "batch_end 0 ['accuracy', 'loss']",
        "batch_begin 1",
        "batch_end 1 ['accuracy', 'loss']",
        "test_begin",
        "epoch_end 1 ['accuracy', 'loss', 'val_accuracy', 'val_loss']",
        "train_end",
    ]


def test_stop_training_from_a_callback_ends_after_that_batch():
    x, y = _xy(320)

    class StopAt(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.stop_training = True

    model = _model()
    history = model.fit(x, y, batch_size=32, epochs=5, callbacks=[StopAt()], verbose=0)
    assert len(history.history["loss"]) == 1
    assert model.optimizer.iterations == 3


def test_progress_bar_and_epoch_lines(capsys):
    x, y = _xy()
    _model(["accuracy"]).fit(x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert lines[1].startswith("2/2 - ") and "loss: " in lines[1] and "accuracy: " in lines[1]
    _model(["accuracy"]).fit(x, y, epochs=1, verbose=1)
    out = capsys.readouterr().out  # Keras prints "Epoch k/n" only for several epochs
    assert "Epoch" not in out and out.startswith("2/2 " + "━" * 20 + " ")


def test_evaluate_and_predict_draw_a_bar_over_their_batches(capsys):
    x, y = _xy(100)
    model = _model(["accuracy"])
    loss, accuracy = model.evaluate(x, y, batch_size=32, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("4/4 " + "━" * 20) and out.count("\n") == 1
    assert out.endswith(f" - accuracy: {accuracy:.4f} - loss: {loss:.4f}\n") or out.endswith(
        f" - loss: {loss:.4f} - accuracy: {accuracy:.4f}\n"
    )
    model.evaluate(x, y, batch_size=32, steps=2, verbose=1)
    assert "2/2" in capsys.readouterr().out
    model.predict(x, batch_size=32, verbose=1)
    out = capsys.readouterr().out
    assert out.startswith("4/4 " + "━" * 20)
    model.predict(x, batch_size=32, verbose=2)
    assert capsys.readouterr().out.startswith("4/4 - ")
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_validation_inside_fit_draws_no_bar_of_its_own(capsys):
    x, y = _xy(100)
    history = _model(["accuracy"]).fit(
        x, y, batch_size=32, epochs=1, validation_split=0.2, verbose=1
    )
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("3/3 ")
    assert f"val_loss: {history.history['val_loss'][0]:.4f}" in out


def test_get_set_weights_keras_layout_and_summary():
    model = Sequential([Dense(3, input_dim=5), Dropout(0.5), Dense(2)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 3), (3,), (3, 2), (2,)]
    new = [np.full(s, i, dtype=np.float32) for i, s in enumerate(shapes)]
    model.set_weights(new)
    out = model.predict_on_batch(np.ones((1, 5), np.float32))
    assert np.allclose(out, (np.ones(5) @ new[0] + 1) @ new[2] + 3)
    text = model.summary(print_fn=lambda s: None)
    assert "(None, 3)" in text and "(None, 2)" in text and "Total params: 26" in text


def test_shapes_are_inferred_from_the_first_batch():
    x, y = _xy()
    model = Sequential([Dense(8, activation="relu"), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    assert model.get_weights() == []
    model.fit(x, y, epochs=2, verbose=0)
    assert [w.shape for w in model.get_weights()] == [(4, 8), (8,), (8, 1), (1,)]


def test_accumulated_steps_equal_one_big_batch():
    x, y = _xy(128)
    big = _model()
    big.compile("sgd", "mse")
    small = _model()
    small.set_weights(big.get_weights())
    small.compile("sgd", "mse", accumulate_steps=4)
    big.fit(x, y, batch_size=128, epochs=3, shuffle=False, verbose=0)
    small.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    assert small.optimizer.iterations == big.optimizer.iterations == 3
    for a, b in zip(big.get_weights(), small.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_jit_compile_gives_the_same_numbers():
    x, y = _xy()
    eager = _model()
    compiled = _model()
    compiled.set_weights(eager.get_weights())
    compiled.compile("sgd", "binary_crossentropy", jit_compile=True)
    eager.compile("sgd", "binary_crossentropy")
    for _ in range(3):
        a = eager.train_on_batch(x, y)
        b = compiled.train_on_batch(x, y)
        assert a == pytest.approx(b, abs=1e-5)


def test_weights_of_a_module_mixing_batchfit_and_torch_layers():
    from batchfit.models import Model

    net = torch.nn.Sequential(Dense(3, input_dim=2), torch.nn.Linear(3, 1))
    model = Model(net, device="cpu")
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 2), (3,), (1, 3), (1,)]  # state_dict order and layout
    model.set_weights([np.ones_like(w) for w in weights])
    assert all(np.all(w == 1) for w in model.get_weights())
    with pytest.raises(
        ValueError, match=r"weight '1.weight': expected shape \(1, 3\), got \(3, 1\)"
    ):
        model.set_weights([weights[0], weights[1], np.zeros((3, 1)), weights[3]])


def test_predict_streams_to_parquet_with_named_columns(tmp_path):
    import pyarrow.parquet as pq

    x, _ = _xy(50)
    model = Sequential([Dense(2, input_dim=4)])
    path = tmp_path / "preds.parquet"
    assert model.predict(
        x, batch_size=7, output=str(path), output_columns=["a", "b"], verbose=0
    ) == str(path)
    table = pq.read_table(path)
    assert table.column_names == ["a", "b"]
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        np.stack([table["a"].to_numpy(), table["b"].to_numpy()], axis=1),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )


def test_skipped_bad_rows_are_counted_in_the_history(tmp_path, caplog):
    import batchfit as bf

    lines = ["a,b,y"] + [f"{i},{i % 3},{i % 2}" for i in range(40)]
    lines[5] = "1,2"  # malformed: one field short
    lines[9] = "nan,1,0"  # not finite
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    src = bf.data.csv(
        str(tmp_path / "d.csv"), target="y", batch_size=8, on_bad_rows="skip", on_nan="skip"
    )
    model = Sequential([Dense(1, input_dim=2)])
    model.compile("sgd", "mse")
    history = model.fit(src, epochs=2, verbose=0)
    assert "skipping malformed rows in" in caplog.text and "d.csv line 6" in caplog.text
    assert history.history["bad_rows_skipped"] == [1.0, 1.0]
    assert history.history["nan_rows_skipped"] == [1.0, 1.0]


def test_fit_on_a_torch_dataloader_tells_its_sampler_the_epoch():
    from torch.utils.data import DataLoader, Sampler, TensorDataset

    class RecordingSampler(Sampler):
        def __init__(self, n):
            self.n, self.epochs = n, []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            return self.n

    x, y = _xy(64)
    sampler = RecordingSampler(64)
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16, sampler=sampler
    )
    model = _model(["accuracy"])
    history = model.fit(loader, epochs=3, verbose=0)
    assert sampler.epochs == [0, 1, 2]
    assert len(history.history["loss"]) == 3 and model.optimizer.iterations == 12
    assert model.evaluate(loader, verbose=0)[0] == pytest.approx(
        model.evaluate(x, y, verbose=0)[0], rel=1e-6
    )


def test_summary_counts_weights_as_keras(capsys):
    """Keras 3.15 counts state weights (BatchNormalization's moving statistics, Normalization's
    mean, variance and count) as non-trainable parameters, and shows an unbuilt layer as
    "0 (unbuilt)" rather than raising."""
    import batchfit as keras

    unbuilt = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(1)])
    text = unbuilt.summary()
    assert text.count("0 (unbuilt)") == 2 and "Total params: 0" in text
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32))
    bn = keras.layers.BatchNormalization()
    model = keras.Sequential(
        [keras.Input((3,)), norm, keras.layers.Dense(5), bn, keras.layers.Dense(1)]
    )
    text = model.summary()
    by_layer = {
        line.split()[0]: line.split()[-1]
        for line in text.splitlines()
        if line.split() and line.split()[0] in (norm.name, bn.name)
    }
    assert by_layer[norm.name] == "7"  # mean 3 + variance 3 + count 1
    assert by_layer[bn.name] == "20"  # gamma, beta + moving mean, variance: 4 x 5
    # 7 + (15 + 5) + 20 + (5 + 1): Keras' totals for the same model
    assert "Total params: 53" in text
    assert "Trainable params: 36" in text and "Non-trainable params: 17" in text


def test_keras2_generator_methods_run_fit_evaluate_predict_with_one_warning():
    """Old tutorials call fit_generator/evaluate_generator/predict_generator (Keras 2)."""
    from batchfit.models import _trainer

    x, y = _xy(64)
    a, b = _model(), _model()
    b.set_weights(a.get_weights())

    def batches():
        for i in range(0, 64, 16):
            yield x[i : i + 16], y[i : i + 16]

    _trainer._warned.clear()
    with pytest.warns(DeprecationWarning, match="fit_generator is Keras 2's name"):
        a.fit_generator(batches(), steps_per_epoch=4, epochs=1, verbose=0)
    b.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    with pytest.warns(DeprecationWarning, match="evaluate_generator"):
        got = a.evaluate_generator(batches(), steps=4, verbose=0)
    assert got == pytest.approx(a.evaluate(x, y, batch_size=16, verbose=0))
    with pytest.warns(DeprecationWarning, match="predict_generator"):
        pred = a.predict_generator((x[i : i + 16] for i in range(0, 64, 16)), steps=4, verbose=0)
    np.testing.assert_array_equal(pred, a.predict(x, batch_size=16, verbose=0))
