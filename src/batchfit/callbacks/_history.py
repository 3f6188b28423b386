"""`History`: the per-epoch record `fit` returns, and its plot."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from batchfit.callbacks._base import Callback

__all__ = ["History"]


class History(Callback):
    """Records epoch-end logs: `history.history["loss"]` is one float per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        # Keras keeps earlier epochs when fit is called again with the same History
        pass

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.epoch = list(state.get("epoch", []))

    def plot(self, path: str | Path | None = None, metrics: list[str] | None = None) -> Any:
        """Draw each metric per epoch, training and validation on one axis, with matplotlib.

        One panel per metric (`loss`, then the compiled metrics), each with the
        training curve and its `val_` curve and a legend. The x axis is "Epoch",
        numbered from 1 with integer ticks as the progress line numbers epochs
        ("Epoch 1/3"); the y axis names the metric, and for the loss the
        compiled loss too ("loss (mean_squared_error)"). A panel whose finite
        values are all positive and span more than 3 decades (max/min > 1e3)
        uses a log y-scale, so the late epochs are not a flat line at zero.

        Args:
            path: write the figure there (PNG by extension, atomically, rank 0
                under torchrun); None returns the figure for display.
            metrics: which metrics to draw (names without `val_`); default every
                metric in the history.

        Returns:
            The matplotlib figure.

        Raises:
            ValueError: the history is empty, or a metric named is not in it.
        """
        names = metrics or _metric_names(self.history)
        if not names:
            raise ValueError("the history is empty: train for at least one epoch first")
        missing = [n for n in names if n not in self.history and f"val_{n}" not in self.history]
        if missing:
            raise ValueError(
                f"History.plot: no metric {missing} in the history; it has {sorted(self.history)}"
            )
        fig = _new_figure(len(names), drawn_for_file=path is not None)
        axes = fig.subplots(1, len(names), squeeze=False)[0]
        longest = max(len(v) for v in self.history.values())
        epochs = [e + 1 for e in self.epoch] if len(self.epoch) == longest else []
        epochs = epochs or list(range(1, longest + 1))
        for ax, name in zip(axes, names):
            _draw_metric(ax, name, self.history, epochs, _y_label(name, self.model))
        fig.tight_layout()
        if path is not None:
            from batchfit import distributed

            if distributed.is_main():  # under torchrun, rank 0 writes
                import io

                from batchfit._io import atomic_write

                image = io.BytesIO()
                fig.savefig(image, dpi=100, format=Path(path).suffix.lstrip(".") or "png")
                atomic_write(path, image.getvalue())  # NOTE [ Safe writes ] in _io.py
        return fig


def _metric_names(history: Mapping[str, list[float]]) -> list[str]:
    """Metric names in the history's order, `val_x` folded into `x`."""
    names: list[str] = []
    for key in history:
        name = key[4:] if key.startswith("val_") else key
        if name not in names:
            names.append(name)
    return names


def _new_figure(panels: int, drawn_for_file: bool) -> Any:
    """A figure of `panels` panels side by side.

    For a file it is a bare `Figure` on the Agg canvas: pyplot's global backend
    and figure list are left alone (nothing to close, safe in threads).
    """
    size = (4.5 * panels, 3.5)
    try:
        if drawn_for_file:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure

            fig = Figure(figsize=size)
            FigureCanvasAgg(fig)
            return fig
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover
        raise ImportError("History.plot needs matplotlib: pip install matplotlib") from e
    return plt.figure(figsize=size)


def _y_label(name: str, model: Any) -> str:
    """The metric's name; for the loss, the compiled loss's name beside it."""
    if name != "loss":
        return name
    loss = getattr(model, "loss", None) if model is not None else None
    loss_name = getattr(loss, "name", None) if loss is not None else None
    if isinstance(loss, str):
        loss_name = loss
    if not isinstance(loss_name, str) or not loss_name or loss_name == "loss":
        return "loss"
    return f"loss ({loss_name})"


def _draw_metric(
    ax: Any, name: str, history: Mapping[str, list[float]], epochs: list[int], y_label: str
) -> None:
    """One panel: `name` and `val_name` against the epoch, integer ticks from 1."""
    import math

    from matplotlib.ticker import MaxNLocator

    drawn: list[float] = []
    for key, style, label in ((name, "o-", "train"), (f"val_{name}", "s--", "validation")):
        values = history.get(key)
        if values:
            ax.plot(epochs[: len(values)], values, style, label=label, markersize=4)
            drawn += [v for v in values if math.isfinite(v)]
    last = max(len(history.get(name, [])), len(history.get(f"val_{name}", [])), 1)
    ticks = [int(t) for t in MaxNLocator(nbins=10, integer=True).tick_values(1, last)]
    ax.set_xticks(sorted({1, *(t for t in ticks if 1 <= t <= last)}))
    ax.set_xlim(0.5, last + 0.5)
    if drawn and min(drawn) > 0 and max(drawn) / min(drawn) > 1e3:
        ax.set_yscale("log")
    ax.set_title(name)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(y_label)
    ax.grid(alpha=0.3)
    ax.legend()
