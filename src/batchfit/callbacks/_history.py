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
        """Draw each metric per epoch, training against validation, with matplotlib.

        Args:
            path: write the figure there (PNG by extension); None returns the figure.
            metrics: which metrics to draw; default every non-validation key.

        Returns:
            The matplotlib figure.
        """
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover
            raise ImportError("History.plot needs matplotlib: pip install matplotlib") from e
        names = metrics or [k for k in self.history if not k.startswith("val_")]
        if not names:
            raise ValueError("the history is empty: train for at least one epoch first")
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        epochs = [e + 1 for e in self.epoch] or list(range(1, len(self.history[names[0]]) + 1))
        for ax, name in zip(axes[0], names):
            ax.plot(epochs[: len(self.history[name])], self.history[name], "o-", label="train")
            if f"val_{name}" in self.history:
                val = self.history[f"val_{name}"]
                ax.plot(epochs[: len(val)], val, "s--", label="validation")
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        if path is not None:
            from batchfit import distributed

            if distributed.is_main():  # under torchrun, rank 0 writes
                import io

                from batchfit._io import atomic_write

                image = io.BytesIO()
                fig.savefig(image, dpi=100, format=Path(path).suffix.lstrip(".") or "png")
                atomic_write(path, image.getvalue())  # NOTE [ Safe writes ] in _io.py
            plt.close(fig)
        return fig
