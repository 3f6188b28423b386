"""`History.plot`: axes, ticks, labels and scale read back from matplotlib's objects."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from batchfit.callbacks import History
from batchfit.layers import Dense
from batchfit.models import Sequential
from batchfit.optimizers import SGD


def _fit(epochs: int, loss: str = "mse") -> History:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(SGD(learning_rate=0.05), loss, metrics=["mae"])
    return model.fit(x, y, epochs=epochs, validation_split=0.25, verbose=0)


def _history(**series: list[float]) -> History:
    """A History fed epoch by epoch as fit feeds it, with no model."""
    history = History()
    for epoch in range(max(len(v) for v in series.values())):
        history.on_epoch_end(epoch, {k: v[epoch] for k, v in series.items() if epoch < len(v)})
    return history


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def test_panels_axes_and_curves_of_a_fit() -> None:
    history = _fit(epochs=3)
    fig = history.plot()
    try:
        fig.canvas.draw()  # tick labels are filled in when drawn
        loss_ax, mae_ax = fig.axes
        assert [loss_ax.get_title(), mae_ax.get_title()] == ["loss", "mae"]
        assert loss_ax.get_ylabel() == "loss (mean_squared_error)"
        assert mae_ax.get_ylabel() == "mae"
        for ax, name in ((loss_ax, "loss"), (mae_ax, "mae")):
            assert ax.get_xlabel() == "Epoch"
            assert _labels(ax) == ["1", "2", "3"]  # as the progress line counts: Epoch 1/3
            assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
            train, val = ax.get_lines()
            np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
            np.testing.assert_allclose(train.get_ydata(), history.history[name])
            np.testing.assert_allclose(val.get_ydata(), history.history[f"val_{name}"])
            assert ax.get_yscale() == "linear"
    finally:
        plt.close(fig)


def test_loss_label_names_the_compiled_loss() -> None:
    fig = _fit(epochs=1, loss="huber").plot()
    try:
        assert fig.axes[0].get_ylabel() == "loss (huber_loss)"
    finally:
        plt.close(fig)
    fig = _history(loss=[1.0, 0.5]).plot()  # no model: the plain name
    try:
        assert fig.axes[0].get_ylabel() == "loss"
    finally:
        plt.close(fig)


def test_one_epoch_and_many_epochs_have_integer_ticks_from_1() -> None:
    fig = _history(loss=[2.0]).plot()
    try:
        fig.canvas.draw()
        assert _labels(fig.axes[0]) == ["1"]
    finally:
        plt.close(fig)
    losses = list(np.linspace(5.0, 1.0, 47))
    fig = _history(loss=losses, val_loss=losses).plot()
    try:
        fig.canvas.draw()
        ticks = fig.axes[0].get_xticks()
        assert ticks[0] == 1 and ticks[-1] <= 47 and len(ticks) <= 12
        np.testing.assert_array_equal(ticks, np.round(ticks))
        assert _labels(fig.axes[0]) == [str(int(t)) for t in ticks]
        low, high = fig.axes[0].get_xlim()
        assert low < 1 and 47 < high < 48
    finally:
        plt.close(fig)


def test_log_scale_past_three_decades_only() -> None:
    spans = {
        "log": ([3e4, 40.0, 9.0], [2e4, 30.0, 12.0]),  # 3e4 / 9 > 1e3
        "linear": ([900.0, 40.0, 1.0], [800.0, 30.0, 2.0]),  # 900 / 1 < 1e3
    }
    for scale, (train, val) in spans.items():
        fig = _history(loss=train, val_loss=val).plot()
        try:
            assert fig.axes[0].get_yscale() == scale, (train, val)
        finally:
            plt.close(fig)
    # a NaN epoch is a gap, not a reason to change scale; zero or negative values stay linear
    for values, scale in (([1e5, float("nan"), 1.0], "log"), ([1e5, 0.0, 1.0], "linear")):
        fig = _history(loss=values).plot()
        try:
            assert fig.axes[0].get_yscale() == scale, values
        finally:
            plt.close(fig)


def test_val_only_metric_and_chosen_metrics() -> None:
    history = _history(loss=[3.0, 2.0], val_loss=[3.5, 2.5], val_auc=[0.6, 0.7])
    fig = history.plot()
    try:
        assert [ax.get_title() for ax in fig.axes] == ["loss", "auc"]
        legend = fig.axes[1].get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["validation"]
    finally:
        plt.close(fig)
    fig = history.plot(metrics=["auc"])
    try:
        assert [ax.get_title() for ax in fig.axes] == ["auc"]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match=r"no metric \['mae'\] in the history; it has"):
        history.plot(metrics=["mae"])
    with pytest.raises(ValueError, match="the history is empty"):
        History().plot()


def test_writes_png_atomically_and_leaves_pyplot_alone(tmp_path) -> None:
    history = _fit(epochs=2)
    open_figures = plt.get_fignums()
    path = tmp_path / "history.png"
    fig = history.plot(path)
    assert plt.get_fignums() == open_figures  # a bare Agg figure, nothing left to close
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png"]  # no temporary left
    assert fig.axes[0].get_xlabel() == "Epoch"
    (tmp_path / "link.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(OSError, match="refusing to write through a symlink"):
        history.plot(tmp_path / "link.png")
