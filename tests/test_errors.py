"""Bad input gets a clear error naming what was expected, what came, and where."""

from __future__ import annotations

import numpy as np
import pytest

from batchfit.callbacks import TerminateOnNaN
from batchfit.layers import Conv2D, Dense
from batchfit.models import Sequential


def _model(
    loss: str = "mse", metrics=None, input_dim: int | None = 4, units: int = 1
) -> Sequential:
    kwargs = {"input_dim": input_dim} if input_dim else {}
    model = Sequential([Dense(8, activation="relu", **kwargs), Dense(units)])
    model.compile("adam", loss, metrics=metrics)
    return model


X = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
Y = np.random.default_rng(1).normal(size=(20, 1)).astype(np.float32)


def test_x_y_length_mismatch():
    with pytest.raises(ValueError, match="same number of samples, got 20 in x and 19 in y"):
        _model().fit(X, Y[:19], verbose=0)
    with pytest.raises(ValueError, match="same number of samples, got 20 in x and 19 in y"):
        _model().train_on_batch(X, Y[:19])


def test_wrong_feature_count_names_the_layer_and_both_shapes():
    model = _model()
    with pytest.raises(
        ValueError,
        match=r"layer 'dense(_\d+)?' \(Dense\) expects inputs of shape \(None, 4\), got \(None, 3\)",
    ):
        model.train_on_batch(X[:, :3], Y)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 4\), got \(None, 5\)"):
        model.fit(np.ones((8, 5), np.float32), Y[:8], verbose=0)


def test_wrong_feature_count_after_lazy_build():
    model = _model(input_dim=None)
    model.train_on_batch(X, Y)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 4\), got \(None, 6\)"):
        model.train_on_batch(np.ones((3, 6), np.float32), Y[:3])


def test_conv_wrong_rank_says_what_it_expects():
    model = Sequential([Conv2D(4, 3, input_shape=(8, 8, 3))])
    model.compile("adam", "mse")
    with pytest.raises(
        ValueError,
        match=r"layer .conv2d(_\d+)?. \(Conv2D\) expects inputs of shape \(None, 8, 8, 3\), got \(None, 8, 8\)",
    ):
        model.predict(np.ones((2, 8, 8), np.float32), verbose=0)


@pytest.mark.parametrize(
    ("kind", "name", "valid"),
    [
        ("optimizer", "adamm", "adam"),
        ("loss", "mean_sqared_error", "mean_squared_error"),
        ("metric", "acuracy", "accuracy"),
    ],
)
def test_unknown_names_list_the_valid_ones(kind, name, valid):
    model = Sequential([Dense(1, input_dim=2)])
    kwargs = {"optimizer": "adam", "loss": "mse", "metrics": None}
    kwargs[{"metric": "metrics"}.get(kind, kind)] = [name] if kind == "metric" else name
    with pytest.raises(ValueError, match=f"unknown {kind} '{name}'; valid names: .*{valid}"):
        model.compile(**kwargs)


@pytest.mark.parametrize("call", ["fit", "train_on_batch", "evaluate", "test_on_batch"])
def test_training_before_compile(call):
    model = Sequential([Dense(1, input_dim=4)])
    with pytest.raises(
        RuntimeError, match=rf"call model.compile\(optimizer, loss\) before {call}\(\)"
    ):
        getattr(model, call)(X, Y)


def test_empty_input():
    with pytest.raises(ValueError, match="x is empty"):
        _model().fit(np.zeros((0, 4), np.float32), np.zeros((0, 1), np.float32), verbose=0)
    with pytest.raises(ValueError, match="batch is empty"):
        _model().train_on_batch(np.zeros((0, 4), np.float32), np.zeros((0, 1), np.float32))


def test_object_and_string_arrays_are_refused():
    strings = np.array([["a", "b", "c", "d"]] * 4)
    with pytest.raises(TypeError, match="must hold numbers, got an array of dtype <U1"):
        _model().fit(strings, Y[:4], verbose=0)
    objects = np.array([[1, "x", 2.0, None]] * 4, dtype=object)
    with pytest.raises(TypeError, match="dtype object"):
        _model().train_on_batch(objects, Y[:4])


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_weights():
    x = X.copy()
    x[37 % 20] = np.nan  # row 17: in the second batch of 16
    model = _model()
    with pytest.raises(
        FloatingPointError, match=r"loss is nan at epoch 1, batch 2; this batch did not update"
    ):
        model.fit(x, Y, batch_size=16, shuffle=False, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert model.optimizer.iterations == 1


def test_nan_loss_in_train_on_batch_leaves_weights_untouched():
    model = _model()
    before = model.get_weights()
    y = Y.copy()
    y[0] = np.inf
    with pytest.raises(FloatingPointError, match="train_on_batch call 1"):
        model.train_on_batch(X, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_terminate_on_nan_stops_quietly(capsys):
    x = X.copy()
    x[17] = np.nan
    model = _model()
    history = model.fit(
        x, Y, batch_size=16, shuffle=False, epochs=3, callbacks=[TerminateOnNaN()], verbose=0
    )
    assert "invalid loss" in capsys.readouterr().out
    assert model.optimizer.iterations == 1
    assert len(history.history.get("loss", [])) <= 1


def test_targets_incompatible_with_the_loss():
    labels = np.array([0, 1, 2, 1])
    onehot = np.eye(3, dtype=np.float32)[labels]
    cat = _model("categorical_crossentropy", units=3)
    with pytest.raises(
        ValueError,
        match=r"expects targets shaped like the predictions \(4, 3\), got targets of shape \(4, 1\); for integer class labels use 'sparse_categorical_crossentropy'",
    ):
        cat.train_on_batch(X[:4], labels[:, None])
    sparse = _model("sparse_categorical_crossentropy", units=3)
    with pytest.raises(
        ValueError,
        match=r"expects integer labels of shape \(4,\) .* got \(4, 3\); for one-hot labels use 'categorical_crossentropy'",
    ):
        sparse.train_on_batch(X[:4], onehot)
    mse = _model("mse")
    with pytest.raises(
        ValueError,
        match=r"expects targets shaped like the predictions \(20, 1\), got targets of shape \(20, 2\)",
    ):
        mse.train_on_batch(X, np.ones((20, 2), np.float32))


def test_fit_argument_combinations():
    model = _model()
    with pytest.raises(ValueError, match="validation_split or validation_data, not both"):
        model.fit(X, Y, validation_split=0.2, validation_data=(X, Y), verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be in \(0, 1\)"):
        model.fit(X, Y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="verbose must be"):
        model.fit(X, Y, verbose=3)


def test_one_shot_generator_cannot_feed_two_epochs():
    model = _model()
    gen = ((X[i : i + 5], Y[i : i + 5]) for i in range(0, 20, 5))
    with pytest.raises(RuntimeError, match="already consumed by an earlier epoch"):
        model.fit(gen, epochs=2, verbose=0)


def test_endless_generator_with_steps_per_epoch():
    def stream():
        rng = np.random.default_rng(0)
        while True:
            x = rng.normal(size=(8, 4)).astype(np.float32)
            yield x, x.sum(axis=1, keepdims=True)

    model = _model()
    history = model.fit(stream(), epochs=3, steps_per_epoch=5, verbose=0)
    assert len(history.history["loss"]) == 3
    assert model.optimizer.iterations == 15
