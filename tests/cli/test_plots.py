"""`predictions.png`: what is drawn, read back from matplotlib's objects, against NumPy/pandas."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection

from batchfit.cli.plots import HEXBIN_ROWS, predictions_figure, predictions_plot


def _title_numbers(ax) -> dict[str, float]:
    found = re.findall(r"(R\u00b2|MAE|accuracy) = (-?[0-9.,]+(?:e[-+]?\d+)?|nan)", ax.get_title())
    return {name: float(value.replace(",", "")) for name, value in found}


def _cells(ax) -> dict[tuple[int, int], tuple[int, str]]:
    """(row, column) -> (count, percentage text) from the cell texts."""
    cells = {}
    for text in ax.texts:
        column, row = text.get_position()
        count, percent = text.get_text().split("\n")
        cells[(int(row), int(column))] = (int(count.replace(",", "")), percent)
    return cells


def test_regression_scatter_title_and_identity_line(tmp_path) -> None:
    rng = np.random.default_rng(3)
    y_true = rng.normal(200, 50, 500)
    y_pred = y_true + rng.normal(0, 20, 500)
    y_pred[7] = np.nan  # left out of the scores and said so
    fig = predictions_figure(y_true, y_pred[:, None], kind="regression", target_name="price")
    ax = fig.axes[0]
    keep = np.isfinite(y_pred)
    t, p = y_true[keep], y_pred[keep]
    r2 = 1 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2)
    scores = _title_numbers(ax)
    assert scores["R\u00b2"] == pytest.approx(r2, abs=5e-5)
    assert scores["MAE"] == pytest.approx(np.mean(np.abs(t - p)), rel=5e-4)
    assert "499 rows, 1 non-finite left out" in ax.get_title()
    big = predictions_figure(1000 * y_true, 1000 * y_pred, kind="regression", target_name="p")
    mae = np.mean(np.abs(t - p)) * 1000
    assert f"MAE = {mae:,.0f}\n" in big.axes[0].get_title()  # no exponent
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("actual price", "predicted price")
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(points.get_offsets(), np.c_[t, p])
    (line,) = ax.get_lines()
    low, high = min(t.min(), p.min()), max(t.max(), p.max())
    np.testing.assert_allclose(line.get_xdata(), [low, high])
    np.testing.assert_allclose(line.get_ydata(), line.get_xdata())  # y = x

    path = predictions_plot(
        tmp_path / "predictions.png", y_true, y_pred, kind="regression", target_name="price"
    )
    assert path == tmp_path / "predictions.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.png"]


def test_regression_hexbin_past_the_threshold() -> None:
    rng = np.random.default_rng(4)
    y_true = rng.normal(size=HEXBIN_ROWS + 1)
    y_pred = 0.8 * y_true + rng.normal(0, 0.3, y_true.size)
    ax = predictions_figure(y_true, y_pred, kind="regression", target_name="y").axes[0]
    assert any(isinstance(c, PolyCollection) for c in ax.collections)
    assert not any(isinstance(c, PathCollection) for c in ax.collections)
    # every row counted once in the hexagons
    (cells,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert cells.get_array().sum() == y_true.size
    r2 = 1 - np.sum((y_true - y_pred) ** 2) / np.sum((y_true - y_true.mean()) ** 2)
    assert _title_numbers(ax)["R\u00b2"] == pytest.approx(r2, abs=5e-5)
    small = predictions_figure(y_true[:HEXBIN_ROWS], y_pred[:HEXBIN_ROWS], kind="regression",
                               target_name="y").axes[0]  # fmt: skip
    assert not any(isinstance(c, PolyCollection) for c in small.collections)


def test_confusion_matrix_against_pandas_crosstab(tmp_path) -> None:
    rng = np.random.default_rng(5)
    names = ["Adelie", "Chinstrap", "Gentoo", "Emperor"]
    y_true = rng.choice(4, 700, p=[0.4, 0.3, 0.3, 0.0])  # no Emperor among the true rows
    y_pred = np.where(rng.random(700) < 0.7, y_true, rng.integers(0, 4, 700))
    fig = predictions_figure(
        y_true, y_pred, kind="classification", class_names=names, target_name="species"
    )
    ax = fig.axes[0]
    expected = pd.crosstab(
        pd.Categorical(y_true, categories=range(4)),
        pd.Categorical(y_pred, categories=range(4)),
        dropna=False,
    ).to_numpy()
    cells = _cells(ax)
    assert len(cells) == 16
    counts = np.array([[cells[(i, j)][0] for j in range(4)] for i in range(4)])
    np.testing.assert_array_equal(counts, expected)
    for i in range(3):
        for j in range(4):
            assert cells[(i, j)][1] == f"{100 * expected[i, j] / expected[i].sum():.1f}%"
    assert [cells[(3, j)][1] for j in range(4)] == ["-"] * 4  # an empty row has no percentages
    assert _title_numbers(ax)["accuracy"] == pytest.approx(np.mean(y_true == y_pred), abs=5e-5)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_yticklabels()] == names  # rows: true classes
    assert [t.get_text() for t in ax.get_xticklabels()] == names  # columns: predicted
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("true species", "predicted species")
    # the colours are the row percentages
    share = expected / np.maximum(expected.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(ax.images[0].get_array(), 100 * share)
    predictions_plot(tmp_path / "cm.png", y_true, y_pred, kind="classification",
                     class_names=names, target_name="species")  # fmt: skip
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_confusion_without_names_and_float_indices() -> None:
    y_true = np.array([0.0, 1.0, 2.0, 2.0, 1.0])
    y_pred = np.array([0, 2, 2, 2, 1])
    ax = predictions_figure(y_true, y_pred, kind="classification", target_name="c").axes[0]
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert _title_numbers(ax)["accuracy"] == pytest.approx(0.8)
    assert _cells(ax)[(1, 2)] == (1, "50.0%")


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="y_true has 3 rows but y_pred has 2"):
        predictions_figure(np.zeros(3), np.zeros(2), kind="regression", target_name="y")
    with pytest.raises(
        ValueError, match=r"y_pred must hold one value per row .* got shape \(4, 2\)"
    ):
        predictions_figure(np.zeros(4), np.zeros((4, 2)), kind="regression", target_name="y")
    with pytest.raises(ValueError, match="y_pred holds class index 3 at row 1, expected 0 .. 2"):
        predictions_figure(np.array([0, 1]), np.array([0, 3]), kind="classification",
                           class_names=["a", "b", "c"], target_name="y")  # fmt: skip
    with pytest.raises(ValueError, match="y_true must be class indices, got 0.5 at row 1"):
        predictions_figure(np.array([0, 0.5]), np.array([0, 1]), kind="classification",
                           target_name="y")  # fmt: skip
    with pytest.raises(ValueError, match="kind must be 'regression' or 'classification'"):
        predictions_figure(np.zeros(2), np.zeros(2), kind="ranking", target_name="y")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no rows"):
        predictions_figure(np.zeros(0), np.zeros(0), kind="regression", target_name="y")
