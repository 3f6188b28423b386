"""`predictions.png`: how the model's predictions on the validation rows compare with the truth.

Regression draws predicted against actual values (a hexbin density past
`HEXBIN_ROWS` points, where single dots would hide each other) with the y = x
line and R^2 and MAE in the title. Classification draws the confusion matrix:
rows are the true classes, columns the predicted ones, each cell holding its
count and the percentage of its row, with the accuracy in the title.

Figures are drawn on a bare Agg `Figure` (pyplot's global state is left alone)
and written with `batchfit._io.atomic_write`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "HEXBIN_ROWS",
    "MAX_ANNOTATED_CLASSES",
    "confusion_counts",
    "predictions_figure",
    "predictions_plot",
    "regression_scores",
]

HEXBIN_ROWS = 20_000  # more points than this are drawn as a hexbin density
MAX_ANNOTATED_CLASSES = 30  # past this many classes the cells are too small for text


def predictions_plot(
    path: str | Path,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    kind: Literal["regression", "classification"],
    class_names: Sequence[str] | None = None,
    target_name: str,
) -> Path:
    """Write a predicted-against-actual scatter or a confusion matrix to `path`.

    Args:
        path: the image to write (PNG, or another matplotlib format by extension),
            atomically.
        y_true, y_pred, kind, class_names, target_name: as `predictions_figure`.

    Returns:
        The path written.

    Raises:
        ValueError: as `predictions_figure`.
    """
    from batchfit._io import atomic_write

    fig = predictions_figure(
        y_true, y_pred, kind=kind, class_names=class_names, target_name=target_name
    )
    out = Path(path)
    image = io.BytesIO()
    fig.savefig(image, dpi=100, format=out.suffix.lstrip(".") or "png")
    atomic_write(out, image.getvalue())  # NOTE [ Safe writes ] in batchfit/_io.py
    return out


def predictions_figure(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    kind: Literal["regression", "classification"],
    class_names: Sequence[str] | None = None,
    target_name: str,
) -> Any:
    """The matplotlib `Figure` `predictions_plot` writes (a bare Agg figure).

    Args:
        y_true: the true targets, one per row: numbers for regression, class
            indices (0 .. K-1) for classification.
        y_pred: the predictions, same length: numbers, or predicted class indices.
        kind: "regression" or "classification".
        class_names: for classification, the name of each class index (this
            also fixes K); default the indices themselves, K from the data.
        target_name: the target column's name, for the axes and the title.

    Raises:
        ValueError: shapes differ, no rows, a non-integer or out-of-range class
            index, or an unknown `kind`.
    """
    true = _one_column(y_true, "y_true")
    pred = _one_column(y_pred, "y_pred")
    if true.shape[0] != pred.shape[0]:
        raise ValueError(
            f"predictions_plot: y_true has {true.shape[0]} rows but y_pred has {pred.shape[0]}"
        )
    if true.shape[0] == 0:
        raise ValueError("predictions_plot: no rows to draw (y_true is empty)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if kind == "regression":
        fig = Figure(figsize=(5.5, 5))
        _regression(fig, true.astype(np.float64), pred.astype(np.float64), target_name)
    elif kind == "classification":
        counts, names = confusion_counts(true, pred, class_names)
        side = min(4 + 0.5 * len(names), 16)
        fig = Figure(figsize=(side + 1, side))
        _confusion(fig, counts, names, target_name)
    else:
        raise ValueError(
            f"predictions_plot: kind must be 'regression' or 'classification', got {kind!r}"
        )
    FigureCanvasAgg(fig)
    fig.tight_layout()
    return fig


def _one_column(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"predictions_plot: {what} must hold one value per row (shape (n,) or (n, 1)), "
            f"got shape {array.shape}"
        )
    return array


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, int]:
    """R^2, MAE and the count over the rows where both values are finite.

    R^2 is 1 - sum((y - p)^2) / sum((y - mean y)^2) (Keras' `R2Score`); NaN
    when every true value is the same.
    """
    finite = np.isfinite(y_true) & np.isfinite(y_pred)
    t, p = y_true[finite], y_pred[finite]
    if t.size == 0:
        return float("nan"), float("nan"), 0
    total = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum((t - p) ** 2)) / total if total > 0 else float("nan")
    return r2, float(np.mean(np.abs(t - p))), int(t.size)


def _regression(fig: Any, true: np.ndarray, pred: np.ndarray, target_name: str) -> None:
    r2, mae, rows = regression_scores(true, pred)
    finite = np.isfinite(true) & np.isfinite(pred)
    t, p = true[finite], pred[finite]
    ax = fig.add_subplot(1, 1, 1)
    if rows > HEXBIN_ROWS:
        cells = ax.hexbin(t, p, gridsize=60, bins="log", mincnt=1, cmap="viridis")
        fig.colorbar(cells, ax=ax, label="rows (log scale)")
    elif rows:
        ax.scatter(t, p, s=8, alpha=min(1.0, max(0.15, 300 / rows)), edgecolors="none")
    if rows:
        low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([low, high], [low, high], "--", color="tab:red", linewidth=1, label="y = x")
        ax.legend(loc="upper left")
    ax.set_xlabel(f"actual {target_name}")
    ax.set_ylabel(f"predicted {target_name}")
    skipped = true.shape[0] - rows
    note = f", {skipped:,} non-finite left out" if skipped else ""
    ax.set_title(
        f"{target_name}: R\u00b2 = {r2:.4f}, MAE = {_readable(mae)}\n({rows:,} rows{note})"
    )
    ax.grid(alpha=0.3)


def _readable(value: float) -> str:
    """Four significant digits, without an exponent in the usual range (23,936; 0.1234)."""
    if not math.isfinite(value) or value == 0 or not 1e-3 <= abs(value) < 1e9:
        return f"{value:.4g}"
    return f"{value:,.{max(0, 3 - math.floor(math.log10(abs(value))))}f}"


def confusion_counts(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """The K x K counts (rows true, columns predicted) and the K class names."""
    for what, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.dtype.kind == "f":
            whole = np.isfinite(values) & (values == np.round(values))
            if not whole.all():
                bad = int(np.argmin(whole))
                raise ValueError(
                    f"predictions_plot: {what} must be class indices, "
                    f"got {values[bad].item()!r} at row {bad}"
                )
        elif values.dtype.kind not in "iub":
            raise ValueError(
                f"predictions_plot: {what} must be integer class indices, got dtype {values.dtype}"
            )
    true, pred = y_true.astype(np.int64), y_pred.astype(np.int64)
    classes = len(class_names) if class_names is not None else int(max(true.max(), pred.max())) + 1
    for what, values in (("y_true", true), ("y_pred", pred)):
        outside = (values < 0) | (values >= classes)
        if outside.any():
            bad = int(np.argmax(outside))
            raise ValueError(
                f"predictions_plot: {what} holds class index {values[bad]} at row {bad}, "
                f"expected 0 .. {classes - 1} ({classes} classes)"
            )
    counts = np.bincount(true * classes + pred, minlength=classes * classes)
    names = (
        [str(n) for n in class_names] if class_names is not None else list(map(str, range(classes)))
    )
    return counts.reshape(classes, classes), names


def _confusion(fig: Any, counts: np.ndarray, names: list[str], target_name: str) -> None:
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    total = int(counts.sum())
    accuracy = float(np.trace(counts)) / total
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(share * 100, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, label="% of the true class's rows")
    classes = len(names)
    ax.set_xticks(range(classes), names, rotation=45 if classes > 4 else 0, ha="right")
    ax.set_yticks(range(classes), names)
    ax.set_xlabel(f"predicted {target_name}")
    ax.set_ylabel(f"true {target_name}")
    ax.set_title(f"{target_name}: accuracy = {accuracy:.4f} ({total:,} rows)")
    if classes > MAX_ANNOTATED_CLASSES:
        return
    for i in range(classes):
        for j in range(classes):
            percent = f"{share[i, j] * 100:.1f}%" if rows[i, 0] else "-"
            ax.text(
                j,
                i,
                f"{counts[i, j]:,}\n{percent}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if share[i, j] > 0.5 else "black",
            )
