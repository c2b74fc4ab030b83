"""Checks for the exercises of the *Modern optimizers* chapter (ids ``modern.*``)."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from dldna.exercises import register
from dldna.exercises._grading import all_close, close, delegates_to, one_of, same_tensors

L2_START = (1.0, 1.0)
L2_GRAD = (0.5, -0.05)
L2_LR = 0.1
L2_DECAY = 0.1


def one_step(optimizer_class: type[torch.optim.Optimizer]) -> list[float]:
    """The weights after one step of ``optimizer_class`` from exercise ``modern.adamw-vs-l2``'s numbers."""
    weights = torch.tensor(L2_START, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_class([weights], lr=L2_LR, weight_decay=L2_DECAY)
    weights.grad = torch.tensor(L2_GRAD, dtype=torch.float64)
    optimizer.step()
    return weights.detach().tolist()


@register(
    "modern.adamw-vs-l2",
    hint="Adam's first step is lr * g / (|g| + eps) per coordinate. With L2 the gradient is g + λw; AdamW first "
    "multiplies w by (1 - lr λ) and then takes Adam's step with g alone.",
)
def adamw_vs_l2(answer: tuple[list[float], list[float]]) -> tuple[bool, str]:
    from dldna.optim import Adam, AdamW

    try:
        adam_l2, adamw = answer
    except (TypeError, ValueError):
        return False, "Give a pair: (weights after Adam + L2, weights after AdamW), each a list of two numbers."
    for label, values, optimizer_class in (("Adam + L2", adam_l2, Adam), ("AdamW", adamw, AdamW)):
        ok, message = all_close(values, one_step(optimizer_class), rel=1e-6, abs_tol=1e-9)
        if not ok:
            return False, f"{label}: {message}"
    return True, "both match one step of dldna's Adam and AdamW; note the second weight's direction."


def radam_first_adaptive_step(beta2: float) -> int:
    """First step at which RAdam's ρ_t exceeds the switch-on threshold (found by scanning the formula)."""
    from dldna.optim.radam import RECTIFICATION_THRESHOLD

    rho_inf = 2 / (1 - beta2) - 1
    step = 1
    while rho_inf - 2 * step * beta2**step / (1 - beta2**step) <= RECTIFICATION_THRESHOLD:
        step += 1
    return step


@register(
    "modern.radam-switch",
    hint="ρ_∞ = 2/(1-β₂) - 1 and ρ_t = ρ_∞ - 2 t β₂ᵗ / (1 - β₂ᵗ); the adaptive step starts at the first t with ρ_t > 5.",
)
def radam_switch(answer: tuple[float, int]) -> tuple[bool, str]:
    try:
        rho_inf, first = answer
    except (TypeError, ValueError):
        return False, "Give a pair (ρ_∞, first adaptive step)."
    beta2 = 0.99
    ok, message = close(rho_inf, 2 / (1 - beta2) - 1, rel=1e-6)
    if not ok:
        return False, f"ρ_∞: {message}"
    expected = radam_first_adaptive_step(beta2)
    if first != expected:
        return False, f"Step {first} is not the first step with ρ_t > 5: compute ρ_t at it and at the step before it."
    return True, "ρ_t crosses 5 at exactly that step; before it RAdam is SGD with momentum."


@register(
    "modern.lion-update",
    hint="c = β₁ m + (1-β₁) g; w ← w - lr (sign(c) + λ w) with the weights before the step; then "
    "m ← β₂ m + (1-β₂) g. The decay stays outside the sign.",
)
def lion_update_check(function) -> tuple[bool, str]:
    from dldna.optim import Lion, lion_update

    used = delegates_to(function, [Lion, lion_update])
    if used:
        return False, f"lion calls {used}, the package's Lion: write the three lines of the update yourself."

    generator = torch.Generator().manual_seed(5)
    start = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    gradients = [torch.randn(7, 3, generator=generator, dtype=torch.float64) for _ in range(12)]
    reference = start.clone().requires_grad_(True)
    lion = Lion([reference], lr=0.01, betas=(0.9, 0.99), weight_decay=0.3)
    param, exp_avg = start.clone(), torch.zeros_like(start)
    for step, gradient in enumerate(gradients, start=1):
        reference.grad = gradient.clone()
        lion.step()
        param, exp_avg = function(param.clone(), gradient.clone(), exp_avg.clone(), lr=0.01, beta1=0.9, beta2=0.99, weight_decay=0.3)
        ok, message = same_tensors([param], [reference.detach()], atol=1e-12)
        if not ok:
            return False, f"After step {step} the weights differ from dldna.optim.Lion: {message}"
        ok, message = same_tensors([exp_avg], [lion.state[reference]["exp_avg"]], atol=1e-12)
        if not ok:
            return False, f"After step {step} the momentum differs: {message}"
    return True, "twelve steps with weight decay match dldna.optim.Lion."


def reference_trust_ratio(weight: torch.Tensor, update: torch.Tensor) -> float:
    """``‖w‖ / ‖u‖``, and 1 when either norm is zero (the convention of LAMB's reference implementations)."""
    weight_norm, update_norm = weight.norm().item(), update.norm().item()
    if weight_norm == 0 or update_norm == 0:
        return 1.0
    return weight_norm / update_norm


@register(
    "modern.trust-ratio",
    hint="Use the L2 norms of the whole layer: ‖w‖ / ‖u‖. Return 1.0 when either norm is zero.",
)
def trust_ratio_check(function) -> tuple[bool, str]:
    from dldna.optim.lamb import lamb_trust_ratio
    from dldna.optim.lars import lars_trust_ratio

    used = delegates_to(function, [lars_trust_ratio, lamb_trust_ratio])
    if used:
        return False, f"trust_ratio calls {used}: compute the two norms and their ratio yourself."
    generator = torch.Generator().manual_seed(2)
    cases = [
        (torch.randn(64, 32, generator=generator), 1e-3 * torch.randn(64, 32, generator=generator)),
        (5 * torch.randn(10, generator=generator), torch.randn(10, generator=generator)),
        (torch.zeros(4, 4), torch.randn(4, 4, generator=generator)),
        (torch.randn(3, generator=generator), torch.zeros(3)),
    ]
    for index, (weight, update) in enumerate(cases):
        ok, message = close(function(weight, update), reference_trust_ratio(weight, update), rel=1e-5)
        if not ok:
            kind = "a layer of zeros" if index >= 2 else "a random layer"
            return False, f"On {kind}: {message}"
    return True, "correct, including the zero-norm cases."


SMALLEST_STATE_CANDIDATES = ("SGD + momentum", "Adam", "Lion", "Adafactor", "RMSprop", "Adagrad")
SMALLEST_STATE_HIDDEN = (1024,)


@functools.cache
def smallest_state() -> tuple[str, int]:
    """Run the experiment of exercise ``modern.smallest-state``: the candidate with the least state, and its bytes
    (byte counts depend on shapes only, so the result is computed once)."""
    from dldna.models import MLP
    from dldna.optim import SGD, Adafactor, Adagrad, Adam, Lion, RMSprop
    from dldna.train import state_memory

    factories = {
        "SGD + momentum": functools.partial(SGD, lr=0.1, momentum=0.9),
        "Adam": functools.partial(Adam, lr=1e-3),
        "Lion": functools.partial(Lion, lr=1e-4),
        "Adafactor": functools.partial(Adafactor, lr=1e-2),
        "RMSprop": functools.partial(RMSprop, lr=1e-3),
        "Adagrad": functools.partial(Adagrad, lr=1e-2),
    }
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 28, 28, generator=generator), torch.randint(0, 10, (16,), generator=generator)
    table = state_memory(lambda: MLP(hidden=SMALLEST_STATE_HIDDEN), factories, x, y)
    name = min(table, key=table.get)
    return name, table[name]


@register(
    "modern.smallest-state",
    hint="Build each optimizer for MLP(hidden=(1024,)), take one step, and measure with dldna.optim.state_bytes "
    "(or dldna.train.state_memory).",
)
def smallest_state_check(answer: tuple[str, int]) -> tuple[bool, str]:
    try:
        name, size = answer
    except (TypeError, ValueError):
        return False, "Give a pair (optimizer name, bytes)."
    right, message = one_of(
        name, SMALLEST_STATE_CANDIDATES, lambda: smallest_state()[0], right="", below=f"{name} does not keep the least state.", name="name"
    )
    if not right:
        return False, message
    ok, message = close(size, smallest_state()[1], rel=0, abs_tol=0.5)
    return ok, "right optimizer and right byte count." if ok else f"Right optimizer, but the byte count is off: {message}"


L2_SCALES = tuple(float(s) for s in np.logspace(-4, 1, 11))
L2_DECAYS = (1e-1, 1e-2, 1e-3)


def l2_closest_scales() -> list[float]:
    """Run the experiment of exercise ``modern.l2-honest-scale``: for each decay in :data:`L2_DECAYS`, the gradient
    scale at which Adam + L2 applies the decay closest to the nominal one."""
    from dldna.optim import Adam
    from dldna.toy import decay_response

    closest = []
    for decay in L2_DECAYS:
        response = decay_response(Adam, L2_SCALES, lr=1e-3, weight_decay=decay, steps=200)
        closest.append(L2_SCALES[int(np.argmin(np.abs(np.log(response))))])
    return closest


@register(
    "modern.l2-honest-scale",
    hint="For each λ call decay_response(Adam, scales, lr=1e-3, weight_decay=λ, steps=200) and pick the scale "
    "whose response is closest to 1 on a log scale (smallest |log(response)|).",
)
def l2_honest_scale(answer: list[float]) -> tuple[bool, str]:
    try:
        values = [float(value) for value in answer]
    except (TypeError, ValueError):
        return False, "Give a list of three scales, one per λ in (1e-1, 1e-2, 1e-3)."
    if len(values) != len(L2_DECAYS):
        return False, f"Give {len(L2_DECAYS)} scales, one per λ, got {len(values)}."
    for value in values:
        if not any(math.isclose(value, scale, rel_tol=1e-6) for scale in L2_SCALES):
            return False, "Each answer should be one of the eleven scales in np.logspace(-4, 1, 11)."
    for decay, value, expected in zip(L2_DECAYS, values, l2_closest_scales()):
        if not math.isclose(value, expected, rel_tol=1e-6):
            return False, f"For λ = {decay:g}, at gradient size {value:g} the response is further from 1 than at another scale."
    return True, "the same scale for every λ: Adam's normaliser, not λ, decides where L2 decay is honest."


SOPHIA_MOMENTUM = (0.02, -0.5, 0.003)
SOPHIA_CURVATURE = (1.0, 2.0, 0.0)
SOPHIA_LR, SOPHIA_RHO = 0.01, 0.04


def sophia_change() -> list[float]:
    """The weight change of exercise ``modern.sophia-step``, computed by dldna's own Sophia update."""
    from dldna.optim.sophia import sophia_update

    param = torch.zeros(3, dtype=torch.float64)
    state = {"exp_avg": torch.zeros(3, dtype=torch.float64), "hessian": torch.tensor(SOPHIA_CURVATURE, dtype=torch.float64)}
    momentum = torch.tensor(SOPHIA_MOMENTUM, dtype=torch.float64)
    sophia_update(param, momentum, state, lr=SOPHIA_LR, beta1=0.0, rho=SOPHIA_RHO, weight_decay=0.0)
    return param.tolist()


@register(
    "modern.sophia-step",
    hint="Per coordinate: r = m / max(ρ h, ε), clipped to [-1, 1]; the change is -lr · r. A zero curvature makes "
    "the ratio huge, so the clip decides.",
)
def sophia_step(answer: list[float]) -> tuple[bool, str]:
    return all_close(answer, sophia_change(), rel=1e-6, abs_tol=1e-12)
