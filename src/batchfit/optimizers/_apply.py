"""Keras' `optimizer.apply(grads, variables)` and `apply_gradients(zip(grads, variables))`.

Used by custom training steps (Keras' torch guide: `self.optimizer.apply(
gradients, trainable_weights)`). The first call binds the optimizer to the
variables it is given, as Keras builds an optimizer on its first `apply`; an
update changes only the variables passed, even when the optimizer holds more.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

__all__ = ["ApplyGradients", "averaging_over_ranks"]

_AVERAGE_OVER_RANKS = contextvars.ContextVar("batchfit_average_over_ranks", default=False)


@contextlib.contextmanager
def averaging_over_ranks() -> Iterator[None]:
    """Inside: every `apply` averages its gradients over the torchrun ranks first.

    Set by the step around a subclassed model's own `train_step` under DDP
    (NOTE [ A user's train_step under torchrun ] in `_engine/step.py`).
    """
    token = _AVERAGE_OVER_RANKS.set(True)
    try:
        yield
    finally:
        _AVERAGE_OVER_RANKS.reset(token)


class ApplyGradients:
    """Mixin of `Optimizer`: one update from gradients the caller computed."""

    if TYPE_CHECKING:
        _params: list[torch.Tensor]

        @property
        def built(self) -> bool: ...
        def build(self, params: Iterable[torch.Tensor]) -> None: ...
        def step(self) -> None: ...

    def apply(
        self, grads: Sequence[torch.Tensor | None], trainable_variables: Sequence[Any] | None = None
    ) -> None:
        """Update `trainable_variables` with `grads` (clipping, decay and schedule included).

        Args:
            grads: one gradient (or None) per variable.
            trainable_variables: the weights, in the order of `grads`; default the
                variables the optimizer was built on.

        Raises:
            ValueError: lengths differ, a shape differs, or a variable is not one the
                optimizer was built on.
        """
        variables = list(trainable_variables) if trainable_variables is not None else None
        if variables is None:
            if not self.built:
                raise ValueError("optimizer.apply(grads) without variables needs a built optimizer")
            variables = list(self._params)
        grads = list(grads)
        if len(grads) != len(variables):
            raise ValueError(
                f"optimizer.apply got {len(grads)} gradients for {len(variables)} variables"
            )
        if not self.built:
            self.build(variables)
        known = {id(p) for p in self._params}
        for i, (g, v) in enumerate(zip(grads, variables)):
            if id(v) not in known:
                raise ValueError(
                    f"optimizer.apply: variable {i} (shape {tuple(v.shape)}) is not one this "
                    "optimizer was built on; use one optimizer per set of weights"
                )
            if g is not None and tuple(g.shape) != tuple(v.shape):
                raise ValueError(
                    f"optimizer.apply: gradient {i} has shape {tuple(g.shape)}, "
                    f"its variable {tuple(v.shape)}"
                )
            if g is not v.grad:
                v.grad = g
        if _AVERAGE_OVER_RANKS.get():
            from batchfit.distributed import average_gradients

            for v, g in zip(variables, average_gradients(grads, variables), strict=True):
                v.grad = g
        given = {id(v) for v in variables}
        held = [p for p in self._params if id(p) not in given and p.grad is not None]
        held_grads = [p.grad for p in held]
        for p in held:  # only the variables passed change, as in Keras
            p.grad = None
        try:
            self.step()
        finally:
            for p, g in zip(held, held_grads):
                p.grad = g

    def apply_gradients(self, grads_and_vars: Iterable[tuple[Any, Any]]) -> None:
        """`apply` from `(gradient, variable)` pairs (Keras 2's spelling)."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])
