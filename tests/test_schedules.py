"""Learning-rate schedules against the Keras 3 formulas, written out here from scratch.

Each reference below is a direct transcription of the formula in the Keras
documentation of `keras.optimizers.schedules`, using NumPy, not the library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from batchfit import optimizers
from batchfit.optimizers import schedules


# -- the Keras formulas ----------------------------------------------------------------------
def keras_exponential(step, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    p = step / decay_steps
    if staircase:
        p = np.floor(p)
    return initial_learning_rate * np.power(decay_rate, p)


def keras_inverse_time(step, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    p = step / decay_steps
    if staircase:
        p = np.floor(p)
    return initial_learning_rate / (1 + decay_rate * p)


def keras_polynomial(
    step, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False
):
    if cycle:
        multiplier = 1.0 if step == 0 else np.ceil(step / decay_steps)
        decay_steps = decay_steps * multiplier
    else:
        step = np.minimum(step, decay_steps)
    return (initial_learning_rate - end_learning_rate) * (
        1 - step / decay_steps
    ) ** power + end_learning_rate


def keras_piecewise(step, boundaries, values):
    # values[i] on boundaries[i-1] < step <= boundaries[i]
    return values[int(np.searchsorted(np.asarray(boundaries), step, side="left"))]


def keras_cosine(
    step, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0
):
    def decay(s, peak):
        completed = s / decay_steps
        cosine = 0.5 * (1 + np.cos(np.pi * completed))
        return peak * ((1 - alpha) * cosine + alpha)

    if warmup_target is None:
        return decay(np.minimum(step, decay_steps), initial_learning_rate)
    step = np.minimum(step, decay_steps + warmup_steps)
    if step < warmup_steps:
        return (warmup_target - initial_learning_rate) * (
            step / warmup_steps
        ) + initial_learning_rate
    return decay(step - warmup_steps, warmup_target)


def keras_cosine_restarts(
    step, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0
):
    """SGDR walked period by period (Keras computes the period in closed form)."""
    start, length, i = 0.0, float(first_decay_steps), 0
    while step >= start + length:
        start, length, i = start + length, length * t_mul, i + 1
    fraction = (step - start) / length
    cosine = 0.5 * m_mul**i * (1 + np.cos(np.pi * fraction))
    return initial_learning_rate * ((1 - alpha) * cosine + alpha)


SCHEDULE_CASES: list[tuple[type[schedules.LearningRateSchedule], Callable[..., float], dict]] = [
    (schedules.ExponentialDecay, keras_exponential, {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5}),
    (schedules.ExponentialDecay, keras_exponential, {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.5, "staircase": True}),
    (schedules.InverseTimeDecay, keras_inverse_time, {"initial_learning_rate": 0.2, "decay_steps": 5, "decay_rate": 0.7}),
    (schedules.InverseTimeDecay, keras_inverse_time, {"initial_learning_rate": 0.2, "decay_steps": 5, "decay_rate": 0.7, "staircase": True}),
    (schedules.PolynomialDecay, keras_polynomial, {"initial_learning_rate": 0.1, "decay_steps": 20}),
    (schedules.PolynomialDecay, keras_polynomial, {"initial_learning_rate": 0.1, "decay_steps": 20, "end_learning_rate": 0.01, "power": 2.5}),
    (schedules.PiecewiseConstantDecay, keras_piecewise, {"boundaries": [5, 12, 30], "values": [1.0, 0.5, 0.1, 0.01]}),
    (schedules.PiecewiseConstantDecay, keras_piecewise, {"boundaries": [0], "values": [0.3, 0.2]}),
    (schedules.CosineDecay, keras_cosine, {"initial_learning_rate": 0.1, "decay_steps": 25}),
    (schedules.CosineDecay, keras_cosine, {"initial_learning_rate": 0.1, "decay_steps": 25, "alpha": 0.1}),
    (schedules.CosineDecay, keras_cosine, {"initial_learning_rate": 0.0, "decay_steps": 20, "warmup_target": 0.2, "warmup_steps": 8}),
    (schedules.CosineDecay, keras_cosine, {"initial_learning_rate": 0.01, "decay_steps": 20, "alpha": 0.05, "warmup_target": 0.2, "warmup_steps": 8}),
    (schedules.CosineDecay, keras_cosine, {"initial_learning_rate": 0.1, "decay_steps": 20, "warmup_steps": 8}),
    (schedules.CosineDecayRestarts, keras_cosine_restarts, {"initial_learning_rate": 0.1, "first_decay_steps": 4}),
    (schedules.CosineDecayRestarts, keras_cosine_restarts, {"initial_learning_rate": 0.1, "first_decay_steps": 5, "t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1}),
    (schedules.CosineDecayRestarts, keras_cosine_restarts, {"initial_learning_rate": 0.2, "first_decay_steps": 3, "t_mul": 1.5, "m_mul": 0.8}),
]  # fmt: skip


def _case_id(case: tuple[type, Callable[..., float], dict]) -> str:
    cls, _, kwargs = case
    extras = sorted(k for k in kwargs if k not in ("initial_learning_rate", "decay_steps"))
    return "-".join([cls.__name__, *extras])


table = pytest.mark.parametrize("case", SCHEDULE_CASES, ids=[_case_id(c) for c in SCHEDULE_CASES])
STEPS = range(0, 45)


@table
def test_schedule_matches_keras_formula(case: Any) -> None:
    cls, reference, kwargs = case
    schedule = cls(**kwargs)
    for step in STEPS:
        assert schedule(step) == pytest.approx(
            float(reference(step, **kwargs)), rel=1e-12, abs=1e-15
        )


@table
def test_schedule_config_round_trip(case: Any) -> None:
    cls, _, kwargs = case
    schedule = cls(**kwargs)
    rebuilt = cls(**schedule.get_config())
    assert [rebuilt(s) for s in STEPS] == [schedule(s) for s in STEPS]


@table
def test_optimizer_uses_schedule_of_each_step(case: Any) -> None:
    """Step k of the optimizer runs at `schedule(k)`: SGD with weight decay against a hand loop.

    With momentum, Keras keeps `lr * g` in the momentum (torch keeps `g`), so the
    rate of every past step stays in it."""
    cls, reference, kwargs = case
    wd = 0.05
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64)
    y = torch.randn(8, generator=g, dtype=torch.float64)
    w0 = torch.randn(3, generator=g, dtype=torch.float64)
    ours = w0.clone().requires_grad_(True)
    theirs = w0.clone().requires_grad_(True)
    opt = optimizers.SGD(learning_rate=cls(**kwargs), momentum=0.5, weight_decay=wd)
    opt.build([ours])
    momentum = torch.zeros_like(w0)
    for step in range(30):
        for w in (ours, theirs):
            w.grad = None
            ((x @ w - y) ** 2).mean().backward()
        opt.step()
        lr = float(reference(step, **kwargs))
        with torch.no_grad():  # Keras: decay, then m = 0.5 m - lr g; w += m
            theirs.mul_(1 - lr * wd)
            momentum = 0.5 * momentum - lr * theirs.grad
            theirs += momentum
    torch.testing.assert_close(ours.detach(), theirs.detach(), atol=1e-10, rtol=0)
    assert opt.iterations == 30


def test_schedule_set_on_a_running_optimizer() -> None:
    """Assigning a schedule continues from the current step; a float then replaces it."""
    w = torch.zeros(2, requires_grad=True)
    opt = optimizers.SGD(learning_rate=1.0)
    opt.build([w])
    seen = []
    for step in range(6):
        if step == 2:
            opt.learning_rate = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
        if step == 4:
            opt.learning_rate = 0.25
        w.grad = torch.ones(2)
        before = w.detach().clone()
        opt.step()
        seen.append(float((before - w.detach())[0]))
    assert seen == pytest.approx([1.0, 1.0, 0.25, 0.125, 0.25, 0.25])


def test_learning_rate_of_a_new_optimizer_is_schedule_at_zero() -> None:
    opt = optimizers.Adam(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.5))
    assert opt.learning_rate == pytest.approx(0.1)


def test_learning_rate_property_follows_schedule_like_keras() -> None:
    schedule = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    w = torch.zeros(2, requires_grad=True)
    opt = optimizers.SGD(learning_rate=schedule)
    opt.build([w])
    for _ in range(3):
        w.grad = torch.ones(2)
        opt.step()
    assert opt.learning_rate == pytest.approx(schedule(3))


def test_optimizer_config_keeps_schedule() -> None:
    schedule = schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    rebuilt = optimizers.get(optimizers.SGD(learning_rate=schedule).get_config())
    w = torch.zeros(2, requires_grad=True)
    rebuilt.build([w])
    for _ in range(3):
        w.grad = torch.ones(2)
        rebuilt.step()
    torch.testing.assert_close(w.detach(), torch.full((2,), -(0.1 + 0.05 + 0.025)))


def test_polynomial_decay_cycle() -> None:
    kwargs = {"initial_learning_rate": 0.1, "decay_steps": 6, "power": 1.5, "cycle": True}
    schedule = schedules.PolynomialDecay(**kwargs)
    for step in STEPS:
        assert schedule(step) == pytest.approx(keras_polynomial(step, **kwargs))


# -- validation at construction ----------------------------------------------------------------
def test_exponential_decay_rejects_zero_steps() -> None:
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, decay_steps=0, decay_rate=0.5)


def test_piecewise_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="3 values and 3 boundaries"):
        schedules.PiecewiseConstantDecay([1, 2, 3], [0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    "make",
    [
        lambda: schedules.InverseTimeDecay(0.1, decay_steps=0, decay_rate=0.5),
        lambda: schedules.PolynomialDecay(0.1, decay_steps=0),
        lambda: schedules.CosineDecay(0.1, decay_steps=0),
    ],
    ids=["InverseTimeDecay", "PolynomialDecay", "CosineDecay"],
)
def test_zero_decay_steps_rejected_at_construction(make: Callable[[], Any]) -> None:
    with pytest.raises(ValueError, match="decay_steps"):
        make()


def test_reference_formulas_sanity() -> None:
    """The references themselves at a few hand-computed points."""
    assert keras_exponential(14, 0.1, 7, 0.5) == pytest.approx(0.025)
    assert keras_inverse_time(5, 0.2, 5, 1.0) == pytest.approx(0.1)
    assert keras_polynomial(10, 0.1, 20, 0.0) == pytest.approx(0.05)
    assert keras_piecewise(5, [5, 12], [1.0, 0.5, 0.1]) == 1.0
    assert keras_piecewise(6, [5, 12], [1.0, 0.5, 0.1]) == 0.5
    assert keras_cosine(10, 0.1, 20) == pytest.approx(0.05)
    assert keras_cosine(4, 0.0, 20, warmup_target=0.2, warmup_steps=8) == pytest.approx(0.1)
    assert keras_cosine(8 + 20, 0.0, 20, warmup_target=0.2, warmup_steps=8) == pytest.approx(0.0)
    assert math.isclose(keras_cosine(8 + 10, 0.0, 20, warmup_target=0.2, warmup_steps=8), 0.1)
