"""`Trainer`: the data-set level of `Model` (`fit`, `evaluate`, `predict`).

As in Keras, where `Model` extends `Trainer`: the class that holds the module
and the step (`Model`) is kept apart from the passes over whole data sets,
which only check arguments, build a source and hand it to `_engine.loop`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from batchfit._engine import adapters, loop, passes
from batchfit._engine.logs import format_return, resolve_verbose
from batchfit.callbacks import Callback, CallbackList, History

if TYPE_CHECKING:
    from batchfit._engine.step import Step
    from batchfit.models import Model

__all__ = ["Trainer"]

_warned: set[str] = set()


def _warn_keras2(old: str, new: str) -> None:
    if old not in _warned:
        _warned.add(old)
        warnings.warn(
            f"Model.{old} is Keras 2's name (Keras 3 removed it); it runs Model.{new}, "
            f"which takes the same data: call {new} instead",
            DeprecationWarning,
            stacklevel=3,
        )


class Trainer:
    """`fit`, `evaluate` and `predict` over arrays or any batch source."""

    if TYPE_CHECKING:

        def _require_step(self, what: str) -> Step: ...
        def _predict_step(self) -> Step: ...

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        resume_from: str | None = None,
    ) -> History:
        """Train for `epochs` over arrays or any batch source; returns a `History`.

        `x` may be NumPy/torch/pandas data (with `y`), a `batchfit.data` source,
        or any iterable of `(x, y[, sample_weight])` batches. With arrays,
        `shuffle` reshuffles every epoch and `validation_split` holds out the
        last fraction (before shuffling), as Keras does. `resume_from` names a
        `BackupAndRestore` folder (or file) to continue from.
        """
        step = self._require_step("fit")
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        source, validation = adapters.fit_sources(
            x,
            y,
            sample_weight,
            batch_size=batch_size,
            shuffle=shuffle,
            validation_split=validation_split,
            validation_data=validation_data,
            validation_batch_size=validation_batch_size,
        )
        from batchfit import distributed
        from batchfit.callbacks import ProgbarLogger

        model = cast("Model", self)
        verbose = resolve_verbose(verbose)
        if not distributed.is_main():
            verbose = 0
        history = History()
        cbs: list[Callback] = [ProgbarLogger(verbose)] if verbose else []
        cbs += [*(callbacks or []), history]
        model.history = history
        run = loop.FitRun(
            model,
            step,
            source,
            CallbackList(cbs, model),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation=validation,
            validation_freq=validation_freq,
            validation_steps=validation_steps,
            class_weight=class_weight,
            verbose=verbose,
        )
        run.fit(resume_from)
        return history

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        return_dict: bool = False,
    ) -> float | list[float] | dict[str, float]:
        """Loss and metrics over the data: a float, `[loss, *metrics]`, or a dict.

        `verbose=1` draws a bar over the batches ending with the values; `verbose=2`
        prints one line at the end ('auto': the bar on a terminal, else the line).
        """
        step = self._require_step("evaluate")
        source = adapters.shard_for_ranks(
            adapters.to_source(x, y, sample_weight, batch_size=batch_size, shuffle=False)
        )
        cbs = self._pass_callbacks(callbacks, steps, source, verbose)
        cbs.call("on_test_begin", None)
        try:
            values = passes.evaluate_loop(step, source, steps=steps, callbacks=cbs)
        finally:
            source.close()  # release prefetch threads now
        cbs.call("on_test_end", values)
        return format_return(values, return_dict)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        output: str | None = None,
        output_columns: Sequence[str] | None = None,
    ) -> Any:
        """Predictions as NumPy; with `output="preds.parquet"`, streamed to that file.

        `output_columns` names the Parquet columns (default `output`, or
        `output_0`, `output_1`, ...). Under torchrun the ranks share the batches
        of a file or array source and every rank returns all predictions, in
        order; with `output`, rank 0 writes the file and the others return None.
        A one-shot iterator or a user's loader is predicted by each rank alone.
        """
        from batchfit import distributed

        step = self._predict_step()
        source = adapters.to_source(x, batch_size=batch_size, shuffle=False)
        shared = distributed.is_distributed() and getattr(source, "replayable", False)
        if output is not None and not shared and not distributed.is_main():
            return None  # rank 0 predicts and writes the whole output alone
        cbs = self._pass_callbacks(callbacks, steps, source, verbose)
        cbs.call("on_predict_begin", None)
        sink: Any = None
        if output is not None:
            from batchfit.data._sink import NullSink, ParquetSink

            sink = ParquetSink(output, output_columns) if distributed.is_main() else NullSink()
        try:
            result = passes.predict_loop(step, source, steps=steps, callbacks=cbs, sink=sink)
        except BaseException:
            if sink is not None:
                sink.abort()
            raise
        finally:
            source.close()
        if sink is not None:
            sink.close()
            result = output if distributed.is_main() else None
        cbs.call("on_predict_end", None)
        return result

    # -- Keras 2 spellings ------------------------------------------------------------------
    def fit_generator(self, generator: Any, *args: Any, **kwargs: Any) -> History:
        """Keras 2's name for `fit` on a generator or Sequence (Keras 3 removed it)."""
        _warn_keras2("fit_generator", "fit")
        return self.fit(generator, *args, **kwargs)

    def evaluate_generator(self, generator: Any, *args: Any, **kwargs: Any) -> Any:
        """Keras 2's name for `evaluate` on a generator or Sequence."""
        _warn_keras2("evaluate_generator", "evaluate")
        return self.evaluate(generator, *args, **kwargs)

    def predict_generator(self, generator: Any, *args: Any, **kwargs: Any) -> Any:
        """Keras 2's name for `predict` on a generator or Sequence."""
        _warn_keras2("predict_generator", "predict")
        return self.predict(generator, *args, **kwargs)

    def _pass_callbacks(
        self,
        callbacks: Sequence[Callback] | None,
        steps: int | None,
        source: Any,
        verbose: int | str,
    ) -> CallbackList:
        """The callbacks of one evaluate or predict pass, with its progress bar first."""
        from batchfit import distributed
        from batchfit.callbacks import ProgbarLogger
        from batchfit.data._base import num_batches

        verbose = resolve_verbose(verbose) if distributed.is_main() else 0
        total = num_batches(source)
        if steps is not None:
            total = steps if total is None else min(steps, total)
        cbs = list(callbacks or [])
        if verbose:
            cbs.insert(0, ProgbarLogger(verbose))
        return CallbackList(cbs, cast("Model", self), {"steps": total, "verbose": verbose})
