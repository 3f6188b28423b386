"""Keras 3's update rules as `torch.optim.Optimizer` classes.

Keras and torch disagree on several rules: Keras' RMSprop and Adagrad divide by
`sqrt(v + eps)` where torch divides by `sqrt(v) + eps`; Keras' Adam adds epsilon
to `sqrt(v)` before the bias correction of the step size (torch after it);
Nadam's momentum schedule is `0.96 ** t` in Keras and `0.96 ** (0.004 t)` in
torch; SGD's momentum holds `lr * g` in Keras (so a learning-rate schedule acts
differently); and Keras counts one global step for bias corrections where
torch counts per parameter. Small as each is, it shows in a few epochs
(issue 13: RMSprop epoch-1 loss 1.9110 against Keras' 1.9366).

So each rule here is Keras' `update_step` (keras/src/optimizers/*.py, and the
`_foreach` forms of keras/src/backend/torch/optimizers/ that the torch backend
runs), written on whole lists of tensors with torch's `_foreach` kernels.
Decoupled weight decay, clipping, schedules, gradient accumulation and EMA
belong to the Keras-level `Optimizer` (`_base.py`), which calls `step()` once
per update. `group["step"]` is Keras' `iterations + 1` for the update being
made: one count for the whole group, saved in `state_dict()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch

__all__ = [
    "KerasAdadelta",
    "KerasAdafactor",
    "KerasAdagrad",
    "KerasAdam",
    "KerasAdamax",
    "KerasFtrl",
    "KerasLamb",
    "KerasLion",
    "KerasNadam",
    "KerasRMSprop",
    "KerasSGD",
    "KerasRule",
]

Tensors = list[torch.Tensor]


class KerasRule(torch.optim.Optimizer):
    """One Keras update of every parameter that has a gradient.

    Subclasses name their per-parameter slots in `slots` (with a start value)
    and implement `update(group, step, params, grads, slots)`.
    """

    slots: ClassVar[dict[str, float]] = {}

    def __init__(self, params: Iterable[Any], lr: float, **hyper: Any) -> None:
        super().__init__(params, {"lr": lr, **hyper})

    def _slot_lists(self, params: Tensors, group: dict[str, Any]) -> dict[str, Tensors]:
        starts = self.initial_slots(group)
        lists: dict[str, Tensors] = {name: [] for name in starts}
        for p in params:
            state = self.state[p]
            if not state:
                for name, start in starts.items():
                    state[name] = torch.full_like(p, start, memory_format=torch.preserve_format)
            for name in lists:
                lists[name].append(state[name])
        return lists

    def initial_slots(self, group: dict[str, Any]) -> dict[str, float]:
        """Each slot's name and start value for this group's settings."""
        return self.slots

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            group["step"] = step = int(group.get("step", 0)) + 1
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                grads = [p.grad for p in params]
                self.update(group, step, params, grads, self._slot_lists(params, group))
        return loss

    def update(
        self,
        group: dict[str, Any],
        step: int,
        params: Tensors,
        grads: Tensors,
        slots: dict[str, Tensors],
    ) -> None:
        raise NotImplementedError


class KerasSGD(KerasRule):
    """`m = momentum * m - lr * g; w += m` (Nesterov: `w += momentum * m - lr * g`)."""

    def initial_slots(self, group: dict[str, Any]) -> dict[str, float]:
        return {"momentum": 0.0} if group["momentum"] else {}

    def update(self, group, step, params, grads, slots):
        lr, momentum = group["lr"], group["momentum"]
        if not momentum:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        ms = slots["momentum"]
        torch._foreach_mul_(ms, momentum)
        torch._foreach_add_(ms, grads, alpha=-lr)
        if group["nesterov"]:
            torch._foreach_add_(params, ms, alpha=momentum)
            torch._foreach_add_(params, grads, alpha=-lr)
        else:
            torch._foreach_add_(params, ms)


class KerasAdam(KerasRule):
    """`w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)` (AMSGrad: max of v)."""

    slots: ClassVar[dict[str, float]] = {"momentum": 0.0, "velocity": 0.0, "velocity_hat": 0.0}

    def update(self, group, step, params, grads, slots):
        b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
        alpha = group["lr"] * math.sqrt(1 - b2**step) / (1 - b1**step)
        ms, vs = slots["momentum"], slots["velocity"]
        torch._foreach_lerp_(ms, grads, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        if group["amsgrad"]:
            torch._foreach_maximum_(slots["velocity_hat"], vs)
            vs = slots["velocity_hat"]
        denom = torch._foreach_sqrt(vs)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, ms, denom, value=-alpha)

    def initial_slots(self, group: dict[str, Any]) -> dict[str, float]:
        if group["amsgrad"]:
            return self.slots
        return {"momentum": 0.0, "velocity": 0.0}


class KerasAdamax(KerasRule):
    """`u = max(b2 * u, |g|); w -= lr * m / ((1 - b1^t) * (u + eps))`."""

    slots: ClassVar[dict[str, float]] = {"momentum": 0.0, "norm": 0.0}

    def update(self, group, step, params, grads, slots):
        b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
        ms, us = slots["momentum"], slots["norm"]
        torch._foreach_lerp_(ms, grads, 1 - b1)
        torch._foreach_mul_(us, b2)
        torch._foreach_maximum_(us, torch._foreach_abs(grads))
        denom = torch._foreach_add(us, eps)
        torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"] / (1 - b1**step))


class KerasNadam(KerasRule):
    """Keras' Nadam: momentum schedule `u_t = b1 (1 - 0.5 * 0.96^t)`, eps outside the sqrt."""

    slots: ClassVar[dict[str, float]] = {"momentum": 0.0, "velocity": 0.0}

    def update(self, group, step, params, grads, slots):
        b1, b2, eps, lr = group["beta_1"], group["beta_2"], group["epsilon"], group["lr"]
        u_t = b1 * (1.0 - 0.5 * 0.96**step)
        u_t1 = b1 * (1.0 - 0.5 * 0.96 ** (step + 1))
        u_product = float(group.get("u_product", 1.0)) * u_t
        group["u_product"] = u_product
        ms, vs = slots["momentum"], slots["velocity"]
        torch._foreach_lerp_(ms, grads, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        m_hat = torch._foreach_mul(ms, u_t1 / (1 - u_product * u_t1))
        torch._foreach_add_(m_hat, grads, alpha=(1 - u_t) / (1 - u_product))
        denom = torch._foreach_div(vs, 1 - b2**step)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, m_hat, denom, value=-lr)


class KerasRMSprop(KerasRule):
    """`v = rho v + (1 - rho) g^2; w -= lr g / sqrt(v + eps)` (centered, momentum as Keras)."""

    def initial_slots(self, group: dict[str, Any]) -> dict[str, float]:
        slots = {"velocity": 0.0}
        if group["momentum"] > 0:
            slots["momentum"] = 0.0
        if group["centered"]:
            slots["average_gradient"] = 0.0
        return slots

    def update(self, group, step, params, grads, slots):
        rho, eps, lr, momentum = group["rho"], group["epsilon"], group["lr"], group["momentum"]
        vs = slots["velocity"]
        torch._foreach_mul_(vs, rho)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - rho)
        denom = torch._foreach_add(vs, eps)
        if group["centered"]:
            avg = slots["average_gradient"]
            torch._foreach_lerp_(avg, grads, 1 - rho)
            torch._foreach_addcmul_(denom, avg, avg, value=-1)
        torch._foreach_sqrt_(denom)
        if momentum <= 0:
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)
            return
        ms = slots["momentum"]
        torch._foreach_mul_(ms, momentum)
        torch._foreach_addcdiv_(ms, grads, denom, value=lr)
        torch._foreach_add_(params, ms, alpha=-1)


class KerasAdagrad(KerasRule):
    """`a += g^2; w -= lr g / sqrt(a + eps)`, `a` starting at `initial_accumulator_value`."""

    def initial_slots(self, group: dict[str, Any]) -> dict[str, float]:
        return {"accumulator": group["initial_accumulator_value"]}

    def update(self, group, step, params, grads, slots):
        acc = slots["accumulator"]
        torch._foreach_addcmul_(acc, grads, grads)
        denom = torch._foreach_add(acc, group["epsilon"])
        torch._foreach_sqrt_(denom)
        torch._foreach_addcdiv_(params, grads, denom, value=-group["lr"])


class KerasAdadelta(KerasRule):
    """Zeiler's Adadelta with Keras' `rms(x) = sqrt(x + eps)` and learning rate."""

    slots: ClassVar[dict[str, float]] = {"accumulated_grad": 0.0, "accumulated_delta_var": 0.0}

    def update(self, group, step, params, grads, slots):
        rho, eps = group["rho"], group["epsilon"]
        acc_g, acc_d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        torch._foreach_mul_(acc_g, rho)
        torch._foreach_addcmul_(acc_g, grads, grads, value=1 - rho)
        rms_d = torch._foreach_add(acc_d, eps)
        torch._foreach_sqrt_(rms_d)
        rms_g = torch._foreach_add(acc_g, eps)
        torch._foreach_sqrt_(rms_g)
        delta = torch._foreach_mul(rms_d, grads)
        torch._foreach_div_(delta, rms_g)  # the step, before its sign and rate
        torch._foreach_mul_(acc_d, rho)
        torch._foreach_addcmul_(acc_d, delta, delta, value=1 - rho)
        torch._foreach_add_(params, delta, alpha=-group["lr"])


class KerasLion(KerasRule):
    """`w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g` (Chen et al. 2023)."""

    slots: ClassVar[dict[str, float]] = {"momentum": 0.0}

    def update(self, group, step, params, grads, slots):
        b1, b2 = group["beta_1"], group["beta_2"]
        ms = slots["momentum"]
        direction = torch._foreach_mul(ms, b1)
        torch._foreach_add_(direction, grads, alpha=1 - b1)
        torch._foreach_sign_(direction)
        torch._foreach_add_(params, direction, alpha=-group["lr"])
        torch._foreach_mul_(ms, b2)
        torch._foreach_add_(ms, grads, alpha=1 - b2)


class KerasLamb(KerasRule):
    """Adam's direction scaled per tensor by `||w|| / ||update||` (You et al. 2019)."""

    slots: ClassVar[dict[str, float]] = {"momentum": 0.0, "velocity": 0.0}

    def update(self, group, step, params, grads, slots):
        b1, b2, eps = group["beta_1"], group["beta_2"], group["epsilon"]
        ms, vs = slots["momentum"], slots["velocity"]
        torch._foreach_lerp_(ms, grads, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1 - b2)
        updates = torch._foreach_div(ms, 1 - b1**step)
        denom = torch._foreach_div(vs, 1 - b2**step)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, eps)
        torch._foreach_div_(updates, denom)
        w_norms = torch._foreach_norm(params)
        u_norms = torch._foreach_norm(updates)
        for p, u, wn, un in zip(params, updates, w_norms, u_norms):
            ratio = torch.where((wn > 0) & (un > 0), wn / un, torch.ones_like(wn))
            p.sub_(ratio * group["lr"] * u)


class KerasFtrl(KerasRule):
    """Follow-the-regularized-leader (McMahan et al. 2013) as Keras writes it."""

    def initial_slots(self, group: dict[str, Any]) -> dict[str, float]:
        return {"accumulator": group["initial_accumulator_value"], "linear": 0.0}

    def update(self, group, step, params, grads, slots):
        lr, power = group["lr"], -group["learning_rate_power"]
        l1 = group["l1_regularization_strength"]
        l2 = group["l2_regularization_strength"] + group["beta"] / (2.0 * lr)
        shrinkage = group["l2_shrinkage_regularization_strength"]
        for w, g, acc, linear in zip(params, grads, slots["accumulator"], slots["linear"]):
            new_acc = acc + g * g
            linear.add_(g + 2 * shrinkage * w - (new_acc.pow(power) - acc.pow(power)) / lr * w)
            quadratic = new_acc.pow(power) / lr + 2 * l2
            w.copy_((linear.clamp(-l1, l1) - linear) / quadratic)
            acc.copy_(new_acc)


class KerasAdafactor(KerasRule):
    """Adafactor (Shazeer & Stern 2018) as Keras writes it: factored second moments for
    weights of rank 2 or more, a relative step size and update clipping."""

    def _slot_lists(self, params: Tensors, group: dict[str, Any]) -> dict[str, Tensors]:
        lists: dict[str, Tensors] = {"v": [], "r": [], "c": []}
        for p in params:
            state = self.state[p]
            if not state:
                state["v"] = torch.zeros_like(p)
                factored = p.dim() >= 2
                state["r"] = p.new_zeros(p.shape[:-1] if factored else ())
                state["c"] = p.new_zeros((*p.shape[:-2], p.shape[-1]) if factored else ())
            for name in lists:
                lists[name].append(state[name])
        return lists

    def update(self, group, step, params, grads, slots):
        lr = group["lr"]
        if group["relative_step"]:
            lr = min(lr, 1.0 / math.sqrt(step))
        rho = min(lr, 1.0 / math.sqrt(step))
        beta = 1.0 - step ** group["beta_2_decay"]
        for w, g, v, r, c in zip(params, grads, slots["v"], slots["r"], slots["c"]):
            alpha = max(group["epsilon_2"], float(w.square().mean().sqrt())) * rho
            square = g * g + group["epsilon_1"]
            if w.dim() >= 2:
                r.mul_(beta).add_(square.mean(-1), alpha=1 - beta)
                c.mul_(beta).add_(square.mean(-2), alpha=1 - beta)
                v.copy_((r / r.mean(-1, keepdim=True)).unsqueeze(-1) * c.unsqueeze(-2))
            else:
                v.mul_(beta).add_(square, alpha=1 - beta)
            u = g / v.sqrt()
            u = u / max(1.0, float(u.square().mean().sqrt()) / group["clip_threshold"])
            w.sub_(alpha * u)
