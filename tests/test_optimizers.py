"""Every optimizer name through one contract: Keras defaults, Keras' update rule, state.

The reference for each optimizer is `KerasNumpy` below: Keras 3's `update_step`
for that optimizer, written in NumPy (float64) from Keras' source
(keras/src/optimizers/<name>.py, and the `_foreach` forms in
keras/src/backend/torch/optimizers/ that Keras' torch backend runs),
independently of `batchfit.optimizers`. Clipping follows Keras' formulas
(`g * c / max(norm, c)`), decoupled weight decay follows Keras 3
(`w -= lr * wd * w` before the update, only for weights with a gradient).

Checked once against Keras 3.15.1 itself (torch backend, same start and
gradients, 20 steps, float32): every optimizer here within 1e-6 of Keras
(`benchmarks/keras_reference/optimizer_trajectories.py`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

from batchfit import optimizers
from batchfit.optimizers import Optimizer


class KerasNumpy(torch.optim.Optimizer):
    """Keras' update rules in NumPy, as a torch optimizer over float64 tensors."""

    def __init__(self, params: list[torch.Tensor], name: str, **kw: Any) -> None:
        kw = dict(kw)
        super().__init__(params, {"lr": kw.pop("learning_rate")})
        self.rule, self.kw, self.t = name, kw, 0
        self.slots: dict[int, dict[str, np.ndarray]] = {}
        self.u_product = 1.0

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        self.t += 1
        lr = self.param_groups[0]["lr"]
        live = [p for p in self.param_groups[0]["params"] if p.grad is not None]
        if self.rule == "nadam":
            self._nadam_schedule()
        for p in live:
            w, g = p.detach().numpy().copy(), p.grad.detach().numpy().copy()
            wd = self.kw.get("weight_decay")
            if wd:
                w = w - w * wd * lr
            s = self.slots.setdefault(id(p), {})
            p.copy_(torch.from_numpy(getattr(self, f"_{self.rule}")(w, g, lr, s)))

    def _nadam_schedule(self) -> None:
        b1, t = self.kw["beta_1"], self.t
        self.u_t = b1 * (1.0 - 0.5 * 0.96**t)
        self.u_t1 = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        self.u_product *= self.u_t

    def _sgd(self, w: np.ndarray, g: np.ndarray, lr: float, s: dict[str, np.ndarray]) -> np.ndarray:
        mom = self.kw.get("momentum", 0.0)
        if not mom:
            return w - g * lr
        m = s["m"] = s.get("m", np.zeros_like(w)) * mom - g * lr
        return w + (m * mom - g * lr if self.kw.get("nesterov") else m)

    def _adam(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        b1, b2, eps, t = self.kw["beta_1"], self.kw["beta_2"], self.kw["epsilon"], self.t
        m = s["m"] = s.get("m", np.zeros_like(w)) + (g - s.get("m", np.zeros_like(w))) * (1 - b1)
        v = s["v"] = s.get("v", np.zeros_like(w)) + (g * g - s.get("v", np.zeros_like(w))) * (
            1 - b2
        )
        if self.kw.get("amsgrad"):
            v = s["vhat"] = np.maximum(s.get("vhat", np.zeros_like(w)), v)
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        return w - m * alpha / (np.sqrt(v) + eps)

    _adamw = _adam

    def _adamax(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        b1, b2, eps, t = self.kw["beta_1"], self.kw["beta_2"], self.kw["epsilon"], self.t
        m = s["m"] = s.get("m", np.zeros_like(w)) * b1 + g * (1 - b1)
        u = s["u"] = np.maximum(b2 * s.get("u", np.zeros_like(w)), np.abs(g))
        return w - lr * m / ((1 - b1**t) * (u + eps))

    def _nadam(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        b1, b2, eps, t = self.kw["beta_1"], self.kw["beta_2"], self.kw["epsilon"], self.t
        m = s["m"] = s.get("m", np.zeros_like(w)) * b1 + g * (1 - b1)
        v = s["v"] = s.get("v", np.zeros_like(w)) * b2 + g * g * (1 - b2)
        up, up1 = self.u_product, self.u_product * self.u_t1
        m_hat = self.u_t1 * m / (1 - up1) + (1 - self.u_t) * g / (1 - up)
        v_hat = v / (1 - b2**t)
        return w - m_hat * lr / (np.sqrt(v_hat) + eps)

    def _rmsprop(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        rho, eps, mom = self.kw["rho"], self.kw["epsilon"], self.kw["momentum"]
        v = s["v"] = rho * s.get("v", np.zeros_like(w)) + (1 - rho) * g * g
        if self.kw["centered"]:
            a = s["a"] = rho * s.get("a", np.zeros_like(w)) + (1 - rho) * g
            denominator = v - a * a + eps
        else:
            denominator = v + eps
        increment = lr * g / np.sqrt(denominator)
        if mom > 0:
            increment = s["m"] = mom * s.get("m", np.zeros_like(w)) + increment
        return w - increment

    def _adagrad(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        start = np.full_like(w, self.kw["initial_accumulator_value"])
        acc = s["acc"] = s.get("acc", start) + g * g
        return w - lr * g / np.sqrt(acc + self.kw["epsilon"])

    def _adadelta(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        rho, eps = self.kw["rho"], self.kw["epsilon"]
        acc_g = s["g"] = rho * s.get("g", np.zeros_like(w)) + (1 - rho) * g * g
        acc_d = s.get("d", np.zeros_like(w))
        delta = -np.sqrt(acc_d + eps) * g / np.sqrt(acc_g + eps)
        s["d"] = rho * acc_d + (1 - rho) * delta * delta
        return w + lr * delta

    def _adafactor(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        k, t = self.kw, self.t
        if k["relative_step"]:
            lr = min(lr, 1 / np.sqrt(t))
        rho = min(lr, 1 / np.sqrt(t))
        alpha = max(k["epsilon_2"], np.sqrt(np.mean(w**2))) * rho
        square = g**2 + k["epsilon_1"]
        beta = 1 - t ** k["beta_2_decay"]
        if w.ndim >= 2:
            r = s["r"] = beta * s.get("r", np.zeros(w.shape[:-1])) + (1 - beta) * square.mean(-1)
            c = s["c"] = beta * s.get("c", np.zeros(w.shape[-1:])) + (1 - beta) * square.mean(-2)
            v = (r / r.mean(-1, keepdims=True))[..., None] * c[..., None, :]
        else:
            v = s["v"] = beta * s.get("v", np.zeros_like(w)) + (1 - beta) * square
        u = g / np.sqrt(v)
        u = u / max(1.0, np.sqrt(np.mean(u**2)) / k["clip_threshold"])
        return w - alpha * u

    def _ftrl(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        k = self.kw
        power = -k["learning_rate_power"]
        l1 = k["l1_regularization_strength"]
        l2 = k["l2_regularization_strength"] + k["beta"] / (2.0 * lr)
        acc = s.get("acc", np.full_like(w, k["initial_accumulator_value"]))
        linear = s.get("linear", np.zeros_like(w))
        new_acc = acc + g**2
        grad = g + 2 * k["l2_shrinkage_regularization_strength"] * w
        linear = linear + grad - (new_acc**power - acc**power) / lr * w
        quadratic = new_acc**power / lr + 2 * l2
        s["acc"], s["linear"] = new_acc, linear
        return (np.clip(linear, -l1, l1) - linear) / quadratic

    def _lion(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        b1, b2 = self.kw["beta_1"], self.kw["beta_2"]
        m = s.get("m", np.zeros_like(w))
        w = w - lr * np.sign(m * b1 + g * (1 - b1))
        s["m"] = m * b2 + g * (1 - b2)
        return w

    def _lamb(self, w, g, lr, s):  # type: ignore[no-untyped-def]
        b1, b2, eps, t = self.kw["beta_1"], self.kw["beta_2"], self.kw["epsilon"], self.t
        m = s["m"] = s.get("m", np.zeros_like(w)) * b1 + g * (1 - b1)
        v = s["v"] = s.get("v", np.zeros_like(w)) * b2 + g * g * (1 - b2)
        update = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        w_norm, u_norm = np.sqrt((w**2).sum()), np.sqrt((update**2).sum())
        ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
        return w - ratio * lr * update


@dataclass(frozen=True)
class OptimizerCase:
    name: str
    cls: type[Optimizer]
    #: the Keras 3 constructor defaults, written from the Keras documentation
    keras_defaults: dict[str, Any]
    #: non-default Keras arguments that exercise every setting of the rule
    tuned: dict[str, Any] = field(default_factory=dict)


_BETAS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
_BETAS_TUNED = {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4}
CASES = [
    OptimizerCase(
        "sgd",
        optimizers.SGD,
        {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    ),
    OptimizerCase(
        "adam",
        optimizers.Adam,
        {**_BETAS, "amsgrad": False},
        {**_BETAS_TUNED, "amsgrad": True},
    ),
    OptimizerCase(
        "adamw",
        optimizers.AdamW,
        {**_BETAS, "weight_decay": 0.004, "amsgrad": False},
        {"learning_rate": 0.05, "weight_decay": 0.1, "beta_1": 0.8, "epsilon": 1e-4},
    ),
    OptimizerCase("adamax", optimizers.Adamax, dict(_BETAS), dict(_BETAS_TUNED)),
    OptimizerCase("nadam", optimizers.Nadam, dict(_BETAS), dict(_BETAS_TUNED)),
    OptimizerCase(
        "rmsprop",
        optimizers.RMSprop,
        {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
        {"learning_rate": 0.02, "rho": 0.8, "momentum": 0.5, "epsilon": 1e-4, "centered": True},
    ),
    OptimizerCase(
        "adagrad",
        optimizers.Adagrad,
        {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
        {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "epsilon": 1e-4},
    ),
    OptimizerCase(
        "adadelta",
        optimizers.Adadelta,
        {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
        {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-4},
    ),
    OptimizerCase(
        "lion",
        optimizers.Lion,
        {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.99},
        {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9},
    ),
    OptimizerCase("lamb", optimizers.Lamb, dict(_BETAS), dict(_BETAS_TUNED)),
    OptimizerCase(
        "adafactor",
        optimizers.Adafactor,
        {
            "learning_rate": 0.001,
            "beta_2_decay": -0.8,
            "epsilon_1": 1e-30,
            "epsilon_2": 1e-3,
            "clip_threshold": 1.0,
            "relative_step": True,
        },
        {
            "learning_rate": 0.05,
            "beta_2_decay": -0.6,
            "epsilon_1": 1e-20,
            "epsilon_2": 1e-2,
            "clip_threshold": 0.5,
            "relative_step": False,
        },
    ),
    OptimizerCase(
        "ftrl",
        optimizers.Ftrl,
        {
            "learning_rate": 0.001,
            "learning_rate_power": -0.5,
            "initial_accumulator_value": 0.1,
            "l1_regularization_strength": 0.0,
            "l2_regularization_strength": 0.0,
            "l2_shrinkage_regularization_strength": 0.0,
            "beta": 0.0,
        },
        {
            "learning_rate": 0.1,
            "learning_rate_power": -0.7,
            "initial_accumulator_value": 0.5,
            "l1_regularization_strength": 0.01,
            "l2_regularization_strength": 0.02,
            "l2_shrinkage_regularization_strength": 0.03,
            "beta": 0.1,
        },
    ),
]
BY_NAME = {case.name: case for case in CASES}
table = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
STEPS = 20
ATOL = 1e-6


# -- the problem: a small linear least-squares fit, float64 ------------------------------
def _problem() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, generator=g, dtype=torch.float64)
    y = torch.randn(16, 2, generator=g, dtype=torch.float64)
    w = torch.randn(3, 2, generator=g, dtype=torch.float64)
    b = torch.randn(2, generator=g, dtype=torch.float64)
    return x, y, [w, b]


def _params(initial: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.clone().requires_grad_(True) for t in initial]


def _backward(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, scale: float) -> None:
    """Fill `.grad` of the parameters; `scale` makes gradients large enough to clip."""
    for p in params:
        p.grad = None
    w, b = params
    loss = scale * ((x @ w + b - y) ** 2).mean()
    loss.backward()


def _keras_kwargs(case: OptimizerCase, **overrides: Any) -> dict[str, Any]:
    return {**case.keras_defaults, **overrides}


def _torch_reference(
    case: OptimizerCase, params: list[torch.Tensor], keras_kwargs: dict[str, Any]
) -> torch.optim.Optimizer:
    return KerasNumpy(params, case.name, **keras_kwargs)


def _assert_params_close(actual: list[torch.Tensor], expected: list[torch.Tensor]) -> None:
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a.detach(), e.detach(), atol=ATOL, rtol=0)


def _moved(initial: list[torch.Tensor], params: list[torch.Tensor]) -> bool:
    return any(not torch.equal(i, p.detach()) for i, p in zip(initial, params))


# -- names and defaults ------------------------------------------------------------------
def test_table_covers_every_name() -> None:
    assert sorted(BY_NAME) == optimizers.names()


@table
def test_name_gives_keras_defaults(case: OptimizerCase) -> None:
    for spelled in (case.name, case.name.upper()):
        opt = optimizers.get(spelled)
        assert type(opt) is case.cls
        assert opt.learning_rate == pytest.approx(case.keras_defaults["learning_rate"])
        config = opt.get_config()
        for key, value in case.keras_defaults.items():
            assert config[key] == pytest.approx(value), key
    # once bound, the rule holds the Keras settings; decay stays with the Keras level
    opt = optimizers.get(case.name)
    _, _, initial = _problem()
    opt.build(_params(initial))
    group = opt.torch_optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(case.keras_defaults["learning_rate"])
    for key, value in case.keras_defaults.items():
        if key not in ("learning_rate", "weight_decay"):
            assert group[key] == pytest.approx(value), key
    assert "weight_decay" not in group


def test_defaults_that_differ_from_torch_spelled_out() -> None:
    assert optimizers.get("adam").get_config()["epsilon"] == 1e-7
    assert optimizers.get("sgd").learning_rate == 0.01
    assert optimizers.get("rmsprop").get_config()["rho"] == 0.9
    assert optimizers.get("adagrad").get_config()["initial_accumulator_value"] == 0.1
    assert optimizers.get("adamw").get_config()["weight_decay"] == 0.004


# -- 20 steps equal Keras' rule in NumPy -----------------------------------------------------
@table
@pytest.mark.parametrize("variant", ["defaults", "tuned"])
def test_steps_equal_keras_rule(case: OptimizerCase, variant: str) -> None:
    overrides = case.tuned if variant == "tuned" else {}
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt = case.cls(**overrides)
    opt.build(ours)
    ref = _torch_reference(case, theirs, _keras_kwargs(case, **overrides))
    for _ in range(STEPS):
        _backward(ours, x, y, 1.0)
        opt.step()
        opt.zero_grad()
        _backward(theirs, x, y, 1.0)
        ref.step()
    assert _moved(initial, ours)
    _assert_params_close(ours, theirs)
    assert opt.iterations == STEPS
    assert all(p.grad is None for p in ours)


@table
def test_learning_rate_set_between_steps(case: OptimizerCase) -> None:
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    kwargs = _keras_kwargs(case, **case.tuned)
    opt = case.cls(**case.tuned)
    opt.build(ours)
    ref = _torch_reference(case, theirs, kwargs)
    new_rate = kwargs["learning_rate"] * 0.3
    for step in range(STEPS):
        if step == 2:
            opt.learning_rate = new_rate
            assert opt.learning_rate == new_rate
            for group in ref.param_groups:
                group["lr"] = new_rate
        _backward(ours, x, y, 1.0)
        opt.step()
        _backward(theirs, x, y, 1.0)
        ref.step()
    _assert_params_close(ours, theirs)
    assert opt.learning_rate == new_rate


@table
def test_learning_rate_set_before_build(case: OptimizerCase) -> None:
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt = optimizers.get(case.name)
    opt.learning_rate = 0.03
    opt.build(ours)
    ref = _torch_reference(case, theirs, _keras_kwargs(case, learning_rate=0.03))
    for _ in range(3):
        _backward(ours, x, y, 1.0)
        opt.step()
        _backward(theirs, x, y, 1.0)
        ref.step()
    _assert_params_close(ours, theirs)


# -- clipping ------------------------------------------------------------------------------
def _clip_by_norm(grads: list[torch.Tensor], clip: float) -> None:
    for g in grads:
        g.mul_(clip / max(float(g.norm()), clip))


def _clip_by_global_norm(grads: list[torch.Tensor], clip: float) -> None:
    norm = float(torch.sqrt(sum((g**2).sum() for g in grads)))
    for g in grads:
        g.mul_(clip / max(norm, clip))


def _clip_by_value(grads: list[torch.Tensor], clip: float) -> None:
    for g in grads:
        g.clamp_(-clip, clip)


CLIPS = {
    "clipnorm": (0.5, _clip_by_norm),
    "global_clipnorm": (0.5, _clip_by_global_norm),
    "clipvalue": (0.1, _clip_by_value),
}


@table
@pytest.mark.parametrize("clip_kind", sorted(CLIPS))
def test_clipping_equals_hand_clip_then_torch_step(case: OptimizerCase, clip_kind: str) -> None:
    clip, hand_clip = CLIPS[clip_kind]
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt = case.cls(**case.tuned, **{clip_kind: clip})
    opt.build(ours)
    ref = _torch_reference(case, theirs, _keras_kwargs(case, **case.tuned))
    for _ in range(STEPS):
        _backward(ours, x, y, 50.0)  # large gradients: every clip is active
        opt.step()
        _backward(theirs, x, y, 50.0)
        grads = [p.grad for p in theirs]
        assert max(float(g.abs().max()) for g in grads) > clip
        with torch.no_grad():
            hand_clip(grads, clip)
        ref.step()
    _assert_params_close(ours, theirs)


def test_clipnorm_and_global_clipnorm_together_rejected() -> None:
    with pytest.raises(ValueError, match="clipnorm"):
        optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)


# -- decoupled weight decay ---------------------------------------------------------------
@table
def test_weight_decay_decoupled_before_update(case: OptimizerCase) -> None:
    """Keras 3: `w -= lr * wd * w`, then the optimizer's own update."""
    wd = 0.1
    kwargs = _keras_kwargs(case, **case.tuned)
    kwargs["weight_decay"] = wd
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt = case.cls(**{**case.tuned, "weight_decay": wd})
    opt.build(ours)
    ref = _torch_reference(case, theirs, kwargs)  # decays `w -= w * wd * lr` first
    for _ in range(STEPS):
        _backward(ours, x, y, 1.0)
        opt.step()
        _backward(theirs, x, y, 1.0)
        ref.step()
    _assert_params_close(ours, theirs)


#: FTRL recomputes its weights from its state, so zero gradients still move them
_MOVED_BY_UPDATES = [c for c in CASES if c.name != "ftrl"]


@pytest.mark.parametrize("case", _MOVED_BY_UPDATES, ids=[c.name for c in _MOVED_BY_UPDATES])
def test_weight_decay_alone_shrinks_geometrically(case: OptimizerCase) -> None:
    """With zero gradients every update is zero, so only the decay moves the weights."""
    wd, lr = 0.2, 0.1
    _, _, initial = _problem()
    ours = _params(initial)
    opt = case.cls(learning_rate=lr, weight_decay=wd)
    opt.build(ours)
    for _ in range(STEPS):
        for p in ours:
            p.grad = torch.zeros_like(p)
        opt.step()
    expected = [t * (1.0 - lr * wd) ** STEPS for t in initial]
    _assert_params_close(ours, expected)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_weight_decay_skips_parameters_without_gradient(case: OptimizerCase) -> None:
    x, y, initial = _problem()
    ours = _params(initial)
    unused = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = case.cls(**{**case.tuned, "weight_decay": 0.1})
    opt.build([*ours, unused])
    for _ in range(3):
        _backward(ours, x, y, 1.0)
        opt.step()
    torch.testing.assert_close(unused.detach(), torch.ones(4, dtype=torch.float64))


# -- state ---------------------------------------------------------------------------------
@table
def test_state_dict_round_trip_continues_identically(case: OptimizerCase) -> None:
    x, y, initial = _problem()
    first = _params(initial)
    opt = case.cls(**case.tuned)
    opt.build(first)
    for _ in range(3):
        _backward(first, x, y, 1.0)
        opt.step()
    opt.learning_rate = opt.learning_rate * 0.5
    saved = copy.deepcopy(opt.state_dict())  # torch's state_dict holds live references

    second = [p.detach().clone().requires_grad_(True) for p in first]
    resumed = case.cls(**case.tuned)
    resumed.build(second)
    resumed.load_state_dict(saved)
    assert resumed.iterations == 3
    assert resumed.learning_rate == opt.learning_rate
    assert resumed.torch_optimizer.param_groups[0]["lr"] == opt.learning_rate
    for _ in range(3):
        _backward(first, x, y, 1.0)
        opt.step()
        _backward(second, x, y, 1.0)
        resumed.step()
    # not bitwise: torch's NAdam.load_state_dict casts its float32 `mu_product` to the
    # parameters' float64 (a torch trait, ~1e-11 here); the others are bitwise equal
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=0)
    assert resumed.iterations == opt.iterations == 6


def test_load_state_before_build_raises() -> None:
    _, _, initial = _problem()
    opt = optimizers.Adam()
    opt.build(_params(initial))
    with pytest.raises(RuntimeError, match="build"):
        optimizers.Adam().load_state_dict(opt.state_dict())


def test_step_before_build_raises() -> None:
    with pytest.raises(RuntimeError, match="build"):
        optimizers.SGD().step()


# -- config --------------------------------------------------------------------------------
@table
@pytest.mark.parametrize("variant", ["defaults", "tuned"])
def test_get_config_round_trip(case: OptimizerCase, variant: str) -> None:
    overrides = case.tuned if variant == "tuned" else {}
    opt = case.cls(**overrides, clipvalue=0.25)
    config = opt.get_config()
    assert config["class_name"] == case.cls.__name__
    rebuilt = optimizers.get(config)
    assert type(rebuilt) is case.cls
    assert rebuilt.get_config() == config
    # and the rebuilt optimizer steps the same
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt.build(ours)
    rebuilt.build(theirs)
    for _ in range(3):
        for params, o in ((ours, opt), (theirs, rebuilt)):
            _backward(params, x, y, 1.0)
            o.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


def test_get_config_round_trip_keeps_name() -> None:
    config = optimizers.Adam(name="encoder_adam").get_config()
    assert optimizers.get(config).name == "encoder_adam"


# -- wrap a ready torch optimizer ----------------------------------------------------------
@table
def test_wrap_torch_optimizer(case: OptimizerCase) -> None:
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    kwargs = _keras_kwargs(case, **case.tuned)
    wrapped = optimizers.get(_torch_reference(case, ours, kwargs))
    assert isinstance(wrapped, Optimizer)
    assert wrapped.built
    assert wrapped.learning_rate == kwargs["learning_rate"]
    ref = _torch_reference(case, theirs, kwargs)
    for step in range(STEPS):
        if step == 2:
            wrapped.learning_rate = 0.01
            for group in ref.param_groups:
                group["lr"] = 0.01
        _backward(ours, x, y, 1.0)
        wrapped.step()
        wrapped.zero_grad()
        _backward(theirs, x, y, 1.0)
        ref.step()
    _assert_params_close(ours, theirs)
    assert wrapped.iterations == STEPS
    assert Optimizer.wrap(ref).torch_optimizer is ref


def test_get_returns_instances_unchanged() -> None:
    opt = optimizers.Nadam(learning_rate=0.2)
    assert optimizers.get(opt) is opt


# -- errors --------------------------------------------------------------------------------
def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as info:
        optimizers.get("adamm")
    message = str(info.value)
    assert "adamm" in message
    for name in optimizers.names():
        assert name in message


def test_unknown_config_class_rejected() -> None:
    with pytest.raises(ValueError, match="Yogi"):
        optimizers.get({"class_name": "Yogi", "learning_rate": 0.1})


def test_wrong_type_rejected() -> None:
    with pytest.raises(TypeError, match="int"):
        optimizers.get(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_negative_learning_rate_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=bad)
    opt = optimizers.Adam()
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = bad


# -- around the rule: accumulation, moving average, loss scale, Keras 2 spellings ---------
def _run_numpy_adam(
    initial: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    accumulate: int = 1,
    ema: float | None = None,
    overwrite: int | None = None,
    batches: int = 12,
) -> list[np.ndarray]:
    """Keras' `_backend_apply_gradients` by hand: mean of `accumulate` gradients per update,
    the moving average after every batch, overwritten every `overwrite` updates and at the end."""
    params = _params(initial)
    ref = KerasNumpy(params, "adam", **{**_BETAS, "learning_rate": lr, "amsgrad": False})
    sums = [torch.zeros_like(p) for p in params]
    averages = [p.detach().clone() for p in params]
    for raw in range(batches):
        _backward(params, x, y, 1.0)
        iterations = raw // accumulate
        if (raw + 1) % accumulate:
            for s, p in zip(sums, params):
                s += p.grad
        else:
            for s, p in zip(sums, params):
                p.grad = (p.grad + s) / accumulate
                s.zero_()
            ref.step()
        if ema is not None:
            momentum = ema if iterations != 0 else 0.0
            with torch.no_grad():
                for a, p in zip(averages, params):
                    a.copy_(momentum * a + (1 - momentum) * p)
                if overwrite and (iterations + 1) % overwrite == 0:
                    for a, p in zip(averages, params):
                        p.copy_(a)
    if ema is not None:
        with torch.no_grad():
            for a, p in zip(averages, params):
                p.copy_(a)
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize(
    "settings",
    [
        {"gradient_accumulation_steps": 3},
        {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 4},
        {"gradient_accumulation_steps": 2, "use_ema": True, "ema_momentum": 0.8},
    ],
    ids=["accumulate", "ema", "both"],
)
def test_accumulation_and_moving_average_equal_keras_by_hand(settings: dict[str, Any]) -> None:
    x, y, initial = _problem()
    ours = _params(initial)
    opt = optimizers.Adam(learning_rate=0.05, **settings)
    opt.build(ours)
    for _ in range(12):
        _backward(ours, x, y, 1.0)
        opt.step()
    opt.finalize_variable_values()
    expected = _run_numpy_adam(
        initial, x, y, lr=0.05,
        accumulate=settings.get("gradient_accumulation_steps", 1),
        ema=settings.get("ema_momentum") if settings.get("use_ema") else None,
        overwrite=settings.get("ema_overwrite_frequency"),
    )  # fmt: skip
    _assert_params_close(ours, [torch.from_numpy(e) for e in expected])
    assert opt.iterations == 12 // settings.get("gradient_accumulation_steps", 1)


def test_accumulated_gradients_survive_a_state_round_trip() -> None:
    x, y, initial = _problem()
    straight, resumed = _params(initial), _params(initial)
    a = optimizers.Adam(learning_rate=0.05, gradient_accumulation_steps=3, use_ema=True)
    a.build(straight)
    for _ in range(7):
        _backward(straight, x, y, 1.0)
        a.step()
    b = optimizers.Adam(learning_rate=0.05, gradient_accumulation_steps=3, use_ema=True)
    b.build(resumed)
    with torch.no_grad():
        for r, s in zip(resumed, straight):
            r.copy_(s)
    b.load_state_dict(copy.deepcopy(a.state_dict()))  # mid-accumulation: 7 % 3 == 1
    for _ in range(5):
        _backward(straight, x, y, 1.0)
        a.step()
        _backward(resumed, x, y, 1.0)
        b.step()
    _assert_params_close(resumed, straight)


def test_loss_scale_factor_scales_the_loss_and_unscales_the_gradients() -> None:
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt = optimizers.SGD(learning_rate=0.1, loss_scale_factor=1024.0)
    opt.build(ours)
    for p in ours:
        p.grad = None
    w, b = ours
    loss = ((x @ w + b - y) ** 2).mean()
    scaled = opt.scale_loss(loss)
    assert float(scaled.detach()) == pytest.approx(1024.0 * float(loss.detach()))
    scaled.backward()
    opt.step()
    _backward(theirs, x, y, 1.0)
    with torch.no_grad():
        for p in theirs:
            p -= 0.1 * p.grad
    _assert_params_close(ours, theirs)


def test_keras2_lr_and_decay_work_with_one_warning() -> None:
    from batchfit.optimizers import _base

    _base._warned.clear()
    with pytest.warns(DeprecationWarning) as record:
        opt = optimizers.SGD(lr=0.5, decay=0.1)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "learning_rate=" in messages[0] and "decay" in messages[1]
    x, y, initial = _problem()
    ours, theirs = _params(initial), _params(initial)
    opt.build(ours)
    for step in range(4):
        _backward(ours, x, y, 1.0)
        opt.step()
        _backward(theirs, x, y, 1.0)
        with torch.no_grad():  # Keras 2: lr_t = lr / (1 + decay * iterations)
            for p in theirs:
                p -= 0.5 / (1 + 0.1 * step) * p.grad
    _assert_params_close(ours, theirs)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizers.Adam(lr=0.1)  # the second time: no warning


@pytest.mark.parametrize("bad", [{"use_nesterov": True}, {"betas": (0.9, 0.99)}, {"eps": 1e-8}])
def test_unknown_keyword_fails_at_construction_naming_it(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"not recognized: {next(iter(bad))}"):
        optimizers.Adam(**bad)


def test_fit_with_moving_average_ends_on_the_averages() -> None:
    import batchfit as bf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    model = bf.Model(net, device="cpu")
    opt = optimizers.Adam(learning_rate=0.1, use_ema=True, ema_momentum=0.5)
    model.compile(opt, "mse")
    seen: list[np.ndarray] = []

    class Watch(bf.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            seen.append(net.weight.detach().numpy().copy())

    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[Watch()])
    average = seen[0]
    for w in seen[1:]:
        average = 0.5 * average + 0.5 * w
    np.testing.assert_allclose(net.weight.detach().numpy(), average, rtol=1e-6, atol=1e-7)
    assert not np.allclose(net.weight.detach().numpy(), seen[-1])
