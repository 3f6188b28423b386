"""Learning-rate schedules with Keras names: a function of the optimizer step."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "deserialize",
    "serialize",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
]


class LearningRateSchedule:
    """Base: `schedule(step)` returns the learning rate for optimizer step `step`."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def _positive_steps(value: int, what: str = "decay_steps") -> int:
    if int(value) <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value}")
    return int(value)


class _RateDecay(LearningRateSchedule):
    """Settings shared by the decays driven by `decay_rate` per `decay_steps`."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
    ) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive_steps(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def _progress(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


class ExponentialDecay(_RateDecay):
    """`initial_learning_rate * decay_rate ** (step / decay_steps)` (floored if `staircase`)."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_RateDecay):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate`."""

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
    ) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive_steps(decay_steps)
        self.end_learning_rate = float(end_learning_rate)
        self.power = float(power)
        self.cycle = bool(cycle)

    def __call__(self, step: int) -> float:
        if self.cycle:
            # Keras: stretch the horizon to the next multiple of decay_steps
            steps = self.decay_steps * max(1, math.ceil(step / self.decay_steps))
            frac = 1.0 - step / steps
        else:
            frac = 1.0 - min(step, self.decay_steps) / self.decay_steps
        span = self.initial_learning_rate - self.end_learning_rate
        return span * frac**self.power + self.end_learning_rate


class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[i]` while `boundaries[i-1] < step <= boundaries[i]`, as Keras."""

    def __init__(self, boundaries: Sequence[int], values: Sequence[float]) -> None:
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have one more entry than boundaries, got {len(values)} values "
                f"and {len(boundaries)} boundaries"
            )
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup (Keras 3 semantics).

    Rises linearly from `initial_learning_rate` to `warmup_target` over
    `warmup_steps` (when `warmup_target` is set), then decays along a cosine
    to `alpha` times the peak over `decay_steps`.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = _positive_steps(decay_steps)
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = int(warmup_steps)
        if self.warmup_target is not None and self.warmup_steps <= 0:
            raise ValueError(
                f"warmup_steps must be positive with a warmup_target, got {warmup_steps}"
            )

    def __call__(self, step: int) -> float:
        peak = self.initial_learning_rate
        if self.warmup_target is not None:
            if step < self.warmup_steps:
                frac = step / self.warmup_steps
                return peak + (self.warmup_target - peak) * frac
            peak = self.warmup_target
            step -= self.warmup_steps
        frac = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * frac))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR; Keras 3 semantics).

    The first period lasts `first_decay_steps`; each next one `t_mul` times longer
    and starts `m_mul` times lower. Within a period the rate follows a cosine from
    its start down to `alpha` times the initial rate's share (Keras' formula:
    `lr * ((1 - alpha) * 0.5 * m_mul**i * (1 + cos(pi * fraction)) + alpha)`).
    """

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.first_decay_steps = _positive_steps(first_decay_steps, "first_decay_steps")
        self.t_mul, self.m_mul, self.alpha = float(t_mul), float(m_mul), float(alpha)
        self.name = name

    def __call__(self, step: int) -> float:
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            restart = math.floor(fraction)
            fraction -= restart
        else:
            restart = math.floor(
                math.log(1.0 - fraction * (1.0 - self.t_mul)) / math.log(self.t_mul)
            )
            done = (1.0 - self.t_mul**restart) / (1.0 - self.t_mul)
            fraction = (fraction - done) / self.t_mul**restart
        cosine = 0.5 * self.m_mul**restart * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """A JSON-friendly description of a built-in schedule."""
    if type(schedule).__name__ not in __all__:
        raise TypeError(f"cannot serialize the custom schedule {schedule!r}")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """A built-in schedule from `serialize`'s output (only batchfit's own classes)."""
    name = config.get("class_name", "")
    cls = globals().get(name) if name in __all__ else None
    if not (isinstance(cls, type) and issubclass(cls, LearningRateSchedule)):
        raise ValueError(f"unknown learning-rate schedule {name!r}")
    return cls(**config.get("config", {}))
