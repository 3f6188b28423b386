"""Built-in callbacks against Keras' rules, written out independently here."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from batchfit.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TensorBoard,
)
from batchfit.layers import Dense
from batchfit.models import Sequential, load_model
from batchfit.optimizers import SGD, schedules


def _xy(n=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)


def _model(lr=0.05, **compile_kwargs):
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(SGD(learning_rate=lr), "mse", **compile_kwargs)
    return model


class _Feed(Callback):
    """Replaces a monitored value with a scripted sequence, epoch by epoch."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, values

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class _WeightsPerEpoch(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def _keras_early_stop_epoch(values, patience, min_delta=0.0, baseline=None, start_from_epoch=0):
    """Keras 3's EarlyStopping loop for mode='min', written independently."""
    best, wait = None, 0
    for epoch, v in enumerate(values):
        if epoch < start_from_epoch:
            continue
        wait += 1
        if best is None or v + min_delta < best:
            best = v
            if baseline is None or v + min_delta < baseline:
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            return epoch
    return None


@pytest.mark.parametrize(
    ("values", "patience", "kwargs"),
    [
        ([5, 4, 3, 3.5, 3.6, 3.7, 2, 1], 2, {}),
        ([5, 4, 3, 3.5, 3.6, 3.7, 2, 1], 3, {}),
        ([5, 4.95, 4.9, 4.85, 4, 3, 2, 1], 1, {"min_delta": 0.1}),
        ([5, 4, 3, 2, 1, 0.5, 0.4, 0.3], 2, {"baseline": 0.1}),
        ([1, 2, 3, 4, 5, 6, 7, 8], 1, {"start_from_epoch": 3}),
    ],
)
def test_early_stopping_stops_when_keras_would(values, patience, kwargs):
    x, y = _xy()
    model = _model()
    stop = EarlyStopping(monitor="val_score", patience=patience, mode="min", **kwargs)
    history = model.fit(
        x, y, epochs=len(values), callbacks=[_Feed("val_score", values), stop], verbose=0
    )
    expected = _keras_early_stop_epoch(values, patience, **kwargs)
    ran = len(history.history["loss"])
    assert ran == (len(values) if expected is None else expected + 1)


def test_early_stopping_restores_the_best_weights():
    x, y = _xy()
    values = [3.0, 1.0, 2.0, 2.5, 2.7]
    model = _model()
    seen = _WeightsPerEpoch()
    stop = EarlyStopping(monitor="val_score", patience=2, restore_best_weights=True)
    model.fit(x, y, epochs=5, callbacks=[_Feed("val_score", values), seen, stop], verbose=0)
    assert len(seen.weights) == 4  # stopped after epoch 4
    for a, b in zip(model.get_weights(), seen.weights[1]):
        np.testing.assert_array_equal(a, b)


def test_monitor_mode_auto():
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="val_auc").mode == "max"
    assert EarlyStopping(monitor="val_loss").mode == "min"
    assert EarlyStopping(monitor="mean_absolute_error").mode == "min"
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        EarlyStopping(mode="up")


def test_early_stopping_warns_about_a_missing_metric():
    x, y = _xy()
    with pytest.warns(UserWarning, match="metric 'val_loss' is not in the logs .*available: loss"):
        _model().fit(x, y, epochs=1, callbacks=[EarlyStopping()], verbose=0)


def test_reduce_lr_on_plateau_follows_keras():
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.5, 0.6, 0.7, 0.8]
    x, y = _xy()
    model = _model(lr=0.1)
    rates = []
    record = LambdaCallback(
        on_epoch_begin=lambda e, logs: rates.append(model.optimizer.learning_rate)
    )
    plateau = ReduceLROnPlateau(
        monitor="val_score", factor=0.5, patience=2, cooldown=1, min_lr=0.02
    )
    history = model.fit(
        x, y, epochs=10, callbacks=[record, _Feed("val_score", values), plateau], verbose=0
    )
    # independent replay of Keras' rule
    lr, best, wait, cooldown, expected = 0.1, None, 0, 0, []
    for v in values:
        expected.append(lr)
        if cooldown > 0:
            cooldown -= 1
            wait = 0
        if best is None or v < best - 1e-4:
            best, wait = v, 0
        elif cooldown <= 0:
            wait += 1
            if wait >= 2 and lr > 0.02:
                lr, cooldown, wait = max(lr * 0.5, 0.02), 1, 0
    assert rates == pytest.approx(expected)
    # as Keras, the logged rate is the one the epoch trained with
    assert history.history["learning_rate"] == pytest.approx(expected)


def test_learning_rate_scheduler_per_epoch_and_per_batch():
    x, y = _xy(64)
    model = _model()
    seen = []
    record = LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(model.optimizer.learning_rate)
    )
    sched = LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = model.fit(x, y, batch_size=32, epochs=3, callbacks=[sched, record], verbose=0)
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.1 / 3, 0.1 / 3])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    model = _model()
    seen.clear()
    record = LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(model.optimizer.learning_rate)
    )
    per_batch = LearningRateScheduler(lambda step: 0.01 * (step + 1), per="batch")
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[per_batch, record], verbose=0)
    assert seen == pytest.approx([0.01, 0.02, 0.03, 0.04])


def test_torch_lr_scheduler_is_stepped_per_epoch():
    x, y = _xy(64)
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    from batchfit.models import Model

    model = Model(net, device="cpu")
    model.compile(opt, "mse")
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = model.fit(
        x, y, batch_size=32, epochs=3, callbacks=[LearningRateScheduler(step_lr)], verbose=0
    )
    assert history.history["learning_rate"] == pytest.approx([0.05, 0.025, 0.0125])


def test_optimizer_schedule_sets_the_rate_of_each_step_exactly():
    x, y = _xy(64)
    schedule = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(SGD(learning_rate=schedule), "mse")
    twin = torch.nn.Linear(3, 1)
    kernel, bias = model.get_weights()
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(kernel.T))
        twin.bias.copy_(torch.from_numpy(bias))
    opt = torch.optim.SGD(twin.parameters(), lr=1.0)
    for step in range(4):
        xb, yb = x[step * 16 : (step + 1) * 16], y[step * 16 : (step + 1) * 16]
        model.train_on_batch(xb, yb)
        opt.param_groups[0]["lr"] = 0.1 * 0.5**step
        opt.zero_grad()
        torch.nn.functional.mse_loss(twin(torch.from_numpy(xb)), torch.from_numpy(yb)).backward()
        opt.step()
    np.testing.assert_allclose(model.get_weights()[0], twin.weight.detach().numpy().T, atol=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(0.1 * 0.5**4)


def test_compile_clipnorm_clips_each_gradient():
    x, y = _xy(32)
    y = y * 1000  # huge gradients
    model = _model(lr=1.0, clipnorm=0.5)
    before = model.get_weights()
    model.train_on_batch(x, y)
    after = model.get_weights()
    for a, b in zip(before, after):
        assert np.linalg.norm(b - a) == pytest.approx(0.5, rel=1e-5)
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        _model(clipnorm=1.0, clipvalue=1.0)


def test_bf16_autocast_trains():
    x, y = _xy()
    full, half = _model(), _model(precision="bf16")
    half.set_weights(full.get_weights())
    a = full.fit(x, y, epochs=3, verbose=0).history["loss"]
    b = half.fit(x, y, epochs=3, verbose=0).history["loss"]
    assert b[-1] < b[0]
    np.testing.assert_allclose(a, b, rtol=0.05)
    with pytest.raises(ValueError, match="precision must be None, 'bf16' or 'fp16'"):
        _model(precision="fp8")


def test_history_plot_writes_a_png(tmp_path):
    from PIL import Image

    x, y = _xy()
    history = _model().fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    path = tmp_path / "history.png"
    history.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.size[0] > 200 and image.size[1] > 200


def test_model_checkpoint_best_only_and_filepath_format(tmp_path):
    x, y = _xy()
    values = [3.0, 1.0, 2.0, 0.5]
    model = _model()
    seen = _WeightsPerEpoch()
    best = ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_score", save_best_only=True)
    every = ModelCheckpoint(
        str(tmp_path / "e{epoch:02d}-{val_score:.1f}.safetensors"), monitor="val_score"
    )
    model.fit(x, y, epochs=4, callbacks=[_Feed("val_score", values), seen, best, every], verbose=0)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "best.safetensors",
        "e01-3.0.safetensors",
        "e02-1.0.safetensors",
        "e03-2.0.safetensors",
        "e04-0.5.safetensors",
    ]
    loaded = load_model(str(tmp_path / "best.safetensors"))
    for a, b in zip(loaded.get_weights(), seen.weights[3]):
        np.testing.assert_array_equal(a, b)
    assert best.best == 0.5


def test_model_checkpoint_every_n_batches_weights_only(tmp_path):
    x, y = _xy(96)
    model = _model()
    ckpt = ModelCheckpoint(tmp_path / "w.safetensors", save_weights_only=True, save_freq=2)
    saved = []
    spy = LambdaCallback(on_train_batch_end=lambda b, logs: saved.append(model.get_weights()))
    model.fit(x, y, batch_size=32, epochs=2, callbacks=[spy, ckpt], verbose=0)
    other = _model()
    other.load_weights(str(tmp_path / "w.safetensors"))
    for a, b in zip(other.get_weights(), saved[5]):  # the 6th batch is the last multiple of 2
        np.testing.assert_array_equal(a, b)


def test_csv_logger_rows_equal_history(tmp_path):
    x, y = _xy()
    path = tmp_path / "log.csv"
    history = _model().fit(
        x, y, epochs=3, validation_split=0.25, callbacks=[CSVLogger(path)], verbose=0
    )
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert list(rows[0]) == ["epoch", "loss", "val_loss"]
    for key in ("loss", "val_loss"):
        assert [float(r[key]) for r in rows] == pytest.approx(history.history[key])
    _model().fit(x, y, epochs=2, callbacks=[CSVLogger(path, append=True)], verbose=0)
    with path.open() as f:
        assert len(list(csv.DictReader(f))) == 5


def test_tensorboard_writes_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = _xy()
    history = _model().fit(
        x,
        y,
        epochs=3,
        validation_split=0.25,
        callbacks=[TensorBoard(tmp_path, update_freq="batch")],
        verbose=0,
    )
    train = EventAccumulator(str(tmp_path / "train"))
    train.Reload()
    assert [e.value for e in train.Scalars("epoch_loss")] == pytest.approx(history.history["loss"])
    assert len(train.Scalars("batch_loss")) == 9
    val = EventAccumulator(str(tmp_path / "validation"))
    val.Reload()
    assert [e.value for e in val.Scalars("epoch_loss")] == pytest.approx(
        history.history["val_loss"]
    )


def test_every_hook_gets_a_logs_dict_never_none():
    """keras.io programs call `logs.keys()` / `logs.get(...)` in every hook (Keras passes {})."""
    from batchfit.callbacks import Callback

    seen: dict[str, int] = {}
    hooks = (
        "on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
        "on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end",
        "on_epoch_end", "on_train_end", "on_predict_begin", "on_predict_batch_begin",
        "on_predict_batch_end", "on_predict_end",
    )  # fmt: skip

    def keys_of_logs(name):
        def hook(self, *args):
            list(args[-1].keys())  # what the keras.io programs do
            seen[name] = seen.get(name, 0) + 1

        return hook

    KeysEverywhere = type("KeysEverywhere", (Callback,), {h: keys_of_logs(h) for h in hooks})

    x, y = _xy(64)
    model = _model()
    cb = KeysEverywhere()
    model.fit(x, y, batch_size=32, epochs=1, validation_data=(x, y), verbose=0, callbacks=[cb])
    model.evaluate(x, y, batch_size=32, verbose=0, callbacks=[cb])
    model.predict(x, batch_size=32, verbose=0, callbacks=[cb])
    assert {h: seen.get(h, 0) >= 1 for h in hooks} == dict.fromkeys(hooks, True)


def test_verbose_callbacks_print_keras_messages(tmp_path, capsys):
    """Keras 3's words (keras/src/callbacks/{model_checkpoint,early_stopping}.py)."""
    x, y = _xy()
    scores = [0.5, 0.4, 0.45, 0.6, 0.7]
    ckpt = ModelCheckpoint(tmp_path / "best.safetensors", monitor="val_score", mode="min",
                           save_best_only=True, verbose=1)  # fmt: skip
    stop = EarlyStopping(monitor="val_score", mode="min", patience=2, verbose=1)
    _model().fit(x, y, epochs=5, verbose=0, callbacks=[_Feed("val_score", scores), ckpt, stop])
    out = capsys.readouterr().out
    path = tmp_path / "best.safetensors"
    assert out.splitlines() == [
        "", f"Epoch 1: val_score improved from None to 0.50000, saving model to {path}",
        "", f"Epoch 2: val_score improved from 0.50000 to 0.40000, saving model to {path}",
        "", "Epoch 3: val_score did not improve from 0.40000",
        "", "Epoch 4: val_score did not improve from 0.40000",
        "Epoch 4: early stopping",
    ]  # fmt: skip


def test_tensorboard_learning_rate_histograms_and_update_freq(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = _xy()  # 96 rows: 3 batches an epoch
    model = _model(lr=0.1)
    schedule = LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    tb = TensorBoard(tmp_path, update_freq=2, histogram_freq=2)
    at_epoch_2 = {}
    keep = LambdaCallback(
        on_epoch_end=lambda epoch, logs: (
            epoch == 2
            and at_epoch_2.update(
                {n: p.detach().numpy().copy() for n, p in model.module.named_parameters()}
            )
        )
    )
    model.fit(x, y, epochs=4, callbacks=[schedule, keep, tb], verbose=0)
    train = EventAccumulator(str(tmp_path / "train"), size_guidance={"histograms": 0})
    train.Reload()
    rates = [e.value for e in train.Scalars("epoch_learning_rate")]
    assert rates == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6, 8, 10, 12]
    histograms = train.Tags()["histograms"]
    assert sorted(histograms) == sorted(n for n, _ in model.module.named_parameters())
    kernel = histograms[0]
    assert [e.step for e in train.Histograms(kernel)] == [0, 2]
    weight = at_epoch_2[kernel]
    last = train.Histograms(kernel)[-1].histogram_value
    assert last.num == weight.size and last.min == pytest.approx(float(weight.min()))
    assert last.sum == pytest.approx(float(weight.sum()), abs=1e-6)
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(tmp_path, update_freq="sometimes")
