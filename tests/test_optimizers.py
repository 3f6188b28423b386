"""Every optimizer name through one contract: Keras defaults, torch equivalence, state.

The reference for each optimizer is the `torch.optim` class built by hand with
the Keras arguments mapped here, independently of `batchfit.optimizers`.
Clipping follows Keras' formulas (`g * c / max(norm, c)`), decoupled weight
decay follows Keras 3 (`w -= lr * wd * w` before the update).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from batchfit import optimizers
from batchfit.optimizers import Optimizer


def _adam_like(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "lr": kw["learning_rate"],
        "betas": (kw["beta_1"], kw["beta_2"]),
        "eps": kw["epsilon"],
    }


@dataclass(frozen=True)
class OptimizerCase:
    name: str
    cls: type[Optimizer]
    #: the Keras 3 constructor defaults, written from the Keras documentation
    keras_defaults: dict[str, Any]
    torch_class: type[torch.optim.Optimizer]
    #: Keras arguments (all of them) -> the torch.optim arguments they mean
    to_torch: Callable[[dict[str, Any]], dict[str, Any]]
    #: non-default Keras arguments that exercise every mapped argument
    tuned: dict[str, Any] = field(default_factory=dict)


CASES = [
    OptimizerCase(
        "sgd",
        optimizers.SGD,
        {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
        torch.optim.SGD,
        lambda kw: {
            "lr": kw["learning_rate"],
            "momentum": kw["momentum"],
            "nesterov": kw["nesterov"],
        },
        {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    ),
    OptimizerCase(
        "adam",
        optimizers.Adam,
        {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
        torch.optim.Adam,
        lambda kw: {**_adam_like(kw), "amsgrad": kw["amsgrad"]},
        {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4, "amsgrad": True},
    ),
    OptimizerCase(
        "adamw",
        optimizers.AdamW,
        {
            "learning_rate": 0.001,
            "weight_decay": 0.004,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-7,
            "amsgrad": False,
        },
        torch.optim.AdamW,
        lambda kw: {**_adam_like(kw), "amsgrad": kw["amsgrad"], "weight_decay": kw["weight_decay"]},
        {"learning_rate": 0.05, "weight_decay": 0.1, "beta_1": 0.8, "epsilon": 1e-4},
    ),
    OptimizerCase(
        "adamax",
        optimizers.Adamax,
        {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        torch.optim.Adamax,
        _adam_like,
        {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4},
    ),
    OptimizerCase(
        "nadam",
        optimizers.Nadam,
        {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        torch.optim.NAdam,
        _adam_like,
        {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4},
    ),
    OptimizerCase(
        "rmsprop",
        optimizers.RMSprop,
        {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
        torch.optim.RMSprop,
        lambda kw: {
            "lr": kw["learning_rate"],
            "alpha": kw["rho"],
            "momentum": kw["momentum"],
            "eps": kw["epsilon"],
            "centered": kw["centered"],
        },
        {"learning_rate": 0.02, "rho": 0.8, "momentum": 0.5, "epsilon": 1e-4, "centered": True},
    ),
    OptimizerCase(
        "adagrad",
        optimizers.Adagrad,
        {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
        torch.optim.Adagrad,
        lambda kw: {
            "lr": kw["learning_rate"],
            "initial_accumulator_value": kw["initial_accumulator_value"],
            "eps": kw["epsilon"],
        },
        {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "epsilon": 1e-4},
    ),
    OptimizerCase(
        "adadelta",
        optimizers.Adadelta,
        {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
        torch.optim.Adadelta,
        lambda kw: {"lr": kw["learning_rate"], "rho": kw["rho"], "eps": kw["epsilon"]},
        {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-4},
    ),
]
BY_NAME = {case.name: case for case in CASES}
table = pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
STEPS = 5
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
    return case.torch_class(params, **case.to_torch(keras_kwargs))


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
    # once bound, the torch optimizer holds the mapped values
    opt = optimizers.get(case.name)
    _, _, initial = _problem()
    opt.build(_params(initial))
    assert type(opt.torch_optimizer) is case.torch_class
    group = opt.torch_optimizer.param_groups[0]
    for key, value in case.to_torch(case.keras_defaults).items():
        assert group[key] == pytest.approx(value), key
    if case.name != "adamw":
        assert group.get("weight_decay", 0) == 0


def test_mapped_defaults_spelled_out() -> None:
    """The defaults that differ from torch's, stated once more in plain words."""
    _, _, initial = _problem()
    groups = {}
    for name in ("adam", "sgd", "rmsprop", "adagrad", "adamw"):
        opt = optimizers.get(name)
        opt.build(_params(initial))
        groups[name] = opt.torch_optimizer.param_groups[0]
    assert groups["adam"]["eps"] == 1e-7 and groups["adam"]["lr"] == 0.001
    assert groups["sgd"]["lr"] == 0.01
    assert groups["rmsprop"]["alpha"] == 0.9
    assert groups["adagrad"]["initial_accumulator_value"] == 0.1
    assert groups["adamw"]["weight_decay"] == 0.004


# -- steps equal torch.optim by hand -----------------------------------------------------
@table
@pytest.mark.parametrize("variant", ["defaults", "tuned"])
def test_steps_equal_torch_optim_by_hand(case: OptimizerCase, variant: str) -> None:
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
    lr = kwargs["learning_rate"]
    if case.name == "adamw":
        ref = _torch_reference(case, theirs, kwargs)
    else:  # the torch class without its own (coupled, L2) decay
        ref = case.torch_class(theirs, **case.to_torch(kwargs))
        assert ref.param_groups[0].get("weight_decay", 0) == 0
    for _ in range(STEPS):
        _backward(ours, x, y, 1.0)
        opt.step()
        _backward(theirs, x, y, 1.0)
        if case.name != "adamw":
            with torch.no_grad():
                for p in theirs:
                    p.mul_(1.0 - lr * wd)
        ref.step()
    _assert_params_close(ours, theirs)


@table
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
    with pytest.raises(ValueError, match="Lion"):
        optimizers.get({"class_name": "Lion", "learning_rate": 0.1})


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
