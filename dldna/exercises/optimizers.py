"""Checks for the exercises of the *Gradient descent to Adam* chapter (ids ``optim.*``).

Every expected answer is recomputed here with the book's own code (``dldna.optim``, ``dldna.landscape``), so
a check always agrees with what the optimizers actually do.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dldna.exercises import register
from dldna.exercises._grading import all_close, delegates_to, one_of, same_tensors

MOMENTUM_BY_HAND = dict(w0=1.0, lr=0.1, momentum=0.9, steps=3)
SADDLE_BETAS = (0.0, 0.3, 0.6, 0.9)
SADDLE_SETTINGS = dict(lr=0.01, steps=200, threshold=1.0)
RATE_BETAS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99)
RATE_SETTINGS = dict(lr=1.0, mu=0.01, big_l=1.0, count=12, steps=600)


def momentum_iterates(w0: float, lr: float, momentum: float, steps: int) -> list[float]:
    """The iterates of ``dldna.optim.SGD(lr, momentum)`` on ``L(w) = w²`` from ``w0``."""
    from dldna.optim import SGD

    w = torch.tensor([w0], dtype=torch.float64, requires_grad=True)
    optimizer = SGD([w], lr=lr, momentum=momentum)
    iterates = []
    for _ in range(steps):
        optimizer.zero_grad()
        (w**2).sum().backward()
        optimizer.step()
        iterates.append(w.item())
    return iterates


@register(
    "optim.momentum-by-hand",
    hint="The gradient of w² is 2w. At the first step the buffer is just the gradient; afterwards b ← 0.9 b + g, "
    "and then w ← w - 0.1 b.",
)
def momentum_by_hand(answer: list[float]) -> tuple[bool, str]:
    expected = momentum_iterates(**MOMENTUM_BY_HAND)
    ok, message = all_close(answer, expected, rel=1e-6, abs_tol=1e-9)
    return ok, "these are exactly the iterates of dldna.optim.SGD." if ok else message


@register(
    "optim.ravine-learning-rate",
    hint="Gradient descent multiplies the error along an eigenvector with eigenvalue λ by (1 - lr λ) each step; "
    "the Hessian of (x² + 25 y²)/2 is diagonal.",
)
def ravine_learning_rate(answer: tuple[float, float, float]) -> tuple[bool, str]:
    from dldna import toy
    from dldna.toy import momentum

    hessian = torch.autograd.functional.hessian(toy.ravine(25.0), torch.zeros(2, dtype=torch.float64))
    curvatures = torch.linalg.eigvalsh(hessian)
    smallest, largest = curvatures.min().item(), curvatures.max().item()
    best_lr, best_rate = momentum.best_gd(smallest, largest)
    return all_close(answer, [2 / largest, best_lr, best_rate], rel=1e-4)


def uncorrected_ratios(steps: int, betas: tuple[float, float] = (0.9, 0.999)) -> list[float]:
    """Ratio of the step Adam would take without bias correction to the step it takes, under a constant
    gradient, at steps ``1 .. steps`` (computed with ``dldna.optim.adam_update``)."""
    from dldna.optim import adam_update

    weight, state, lr = torch.zeros(1, dtype=torch.float64), {}, 1e-3
    gradient = torch.full((1,), 0.3, dtype=torch.float64)
    ratios = []
    for _ in range(steps):
        before = weight.clone()
        adam_update(weight, gradient, state, lr=lr, beta1=betas[0], beta2=betas[1], eps=0.0)
        taken = (before - weight).item()
        raw = lr * state["exp_avg"].item() / math.sqrt(state["exp_avg_sq"].item())
        ratios.append(raw / taken)
    return ratios


@register(
    "optim.bias-correction",
    hint="With a constant gradient g, after t steps m = (1 - β₁ᵗ) g and v = (1 - β₂ᵗ) g²; the corrected step "
    "is lr, the uncorrected one lr·m/√v.",
)
def bias_correction(answer: list[float]) -> tuple[bool, str]:
    ok, message = all_close(answer, uncorrected_ratios(2), rel=1e-4)
    return ok, "so the first steps would be several times too large." if ok else message


@register(
    "optim.adam-update",
    hint="Update m and v first, then divide by (1 - β₁ᵗ) and (1 - β₂ᵗ) with t starting at 1, then take "
    "w - lr·m̂/(√v̂ + ε). Return new tensors (w, m, v).",
)
def adam_update_check(function) -> tuple[bool, str]:
    from dldna.optim import Adam, adam_update

    used = delegates_to(function, [Adam, adam_update])
    if used:
        return False, f"adam_step calls {used}, the package's Adam: write the update from the chapter's equations."

    generator = torch.Generator().manual_seed(7)
    for lr, betas, eps in ((1e-2, (0.9, 0.999), 1e-8), (3e-2, (0.8, 0.99), 1e-6)):
        start = torch.randn(5, dtype=torch.float64, generator=generator)
        gradients = torch.randn(25, 5, dtype=torch.float64, generator=generator)
        reference = start.clone().requires_grad_(True)
        optimizer = Adam([reference], lr=lr, betas=betas, eps=eps)
        w, m, v = start.clone(), torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
        for t, g in enumerate(gradients, start=1):
            reference.grad = g.clone()
            optimizer.step()
            result = function(w, g, m, v, t, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps)
            if not (isinstance(result, tuple) and len(result) == 3):
                return False, "Return the tuple (w, m, v) of updated tensors."
            w, m, v = result
            ok, message = same_tensors([w], [reference.detach()], atol=1e-12)
            if not ok:
                return False, f"At step {t} (betas={betas}) your weights differ from dldna.optim.Adam: {message}"
    return True, "25 steps match dldna.optim.Adam for two settings."


@register(
    "optim.heavy-ball",
    hint="w_{t+1} = w_t - lr·grad(w_t) + β (w_t - w_{t-1}), with w_{-1} = w_0 so that the first step is a plain "
    "gradient step. Return all iterates w_1 … w_steps stacked in a tensor of shape (steps, d).",
)
def heavy_ball_check(function) -> tuple[bool, str]:
    from dldna import toy
    from dldna.optim import SGD, sgd_update
    from dldna.toy import momentum

    used = delegates_to(function, [SGD, sgd_update, toy.run_optimizer])
    if used:
        return False, f"heavy_ball calls {used}: write Polyak's recursion itself, one line per step."

    eigenvalues = [0.05, 0.4, 1.0]
    loss = momentum.quadratic(eigenvalues)
    start = [1.0, -2.0, 0.5]
    for lr, beta in ((0.5, 0.8), (1.2, 0.3)):
        expected = toy.run_optimizer(loss, SGD, start, 40, lr=lr, momentum=beta).points[1:]
        result = function(torch.func.grad(loss), torch.tensor(start, dtype=torch.float64), lr, beta, 40)
        ok, message = same_tensors([torch.as_tensor(result)], [torch.as_tensor(expected)], atol=1e-10)
        if not ok:
            return False, f"With lr={lr}, β={beta} your iterates differ from dldna.optim.SGD(momentum=β): {message}"
    return True, "Polyak's heavy ball and torch's momentum SGD give the same iterates."


def saddle_escape_answer() -> float | None:
    """The smallest momentum in :data:`SADDLE_BETAS` whose SGD run leaves the saddle (|y| > threshold) in time."""
    from dldna import toy
    from dldna.optim import SGD

    lr, steps, threshold = SADDLE_SETTINGS["lr"], SADDLE_SETTINGS["steps"], SADDLE_SETTINGS["threshold"]
    for beta in SADDLE_BETAS:
        run = toy.run_optimizer(toy.saddle(), SGD, None, steps, lr=lr, momentum=beta)
        if run.steps_until(lambda p: np.abs(p[:, 1]) > threshold) is not None:
            return beta
    return None


@register("optim.saddle-escape", hint="Run SGD from toy.saddle().start for each momentum and use Trajectory.steps_until.")
def saddle_escape(answer: float) -> tuple[bool, str]:
    return one_of(
        answer, SADDLE_BETAS, saddle_escape_answer, right="smaller momenta are still near the ridge after that many steps.",
        below="That is not the smallest momentum whose run passes |y| > 1 within 200 steps: check every run's path.",
    )


def fastest_momentum() -> float:
    """The momentum in :data:`RATE_BETAS` with the smallest measured rate (see exercise ``optim.momentum-rate``)."""
    from dldna.toy import momentum

    s = RATE_SETTINGS
    eigenvalues = np.geomspace(s["mu"], s["big_l"], s["count"])
    rates = [momentum.measured_rate(s["lr"], beta, eigenvalues, steps=s["steps"]) for beta in RATE_BETAS]
    return RATE_BETAS[int(np.argmin(rates))]


@register(
    "optim.momentum-rate",
    hint="Use dldna.toy.momentum.measured_rate for each β (or momentum_rate for the prediction: they agree).",
)
def momentum_rate_check(answer: float) -> tuple[bool, str]:
    return one_of(
        answer, RATE_BETAS, fastest_momentum,
        right="the slowest eigen-direction decides, and this β balances the smallest and largest curvature.",
        below="Another β in the list gives a smaller worst-case rate: measure the rate of every β, and ask which "
        "direction of the spectrum is slowest at each.",
    )



@register(
    "optim.nesterov-lookahead",
    hint="Keep a velocity v (zeros at first); each step takes the gradient at w + β v, sets v ← β v - lr·grad, "
    "then w ← w + v, and records w + β v with the new v.",
)
def nesterov_lookahead_check(function) -> tuple[bool, str]:
    from dldna import toy
    from dldna.optim import SGD, sgd_update
    from dldna.toy import momentum

    used = delegates_to(function, [SGD, sgd_update, toy.run_optimizer, momentum.lookahead_nesterov])
    if used:
        return False, f"nesterov_lookahead calls {used}: write the look-ahead loop itself."
    loss = momentum.quadratic([0.05, 0.4, 1.0])
    start = [1.0, -2.0, 0.5]
    for lr, beta in ((0.5, 0.8), (1.2, 0.3)):
        expected = toy.run_optimizer(loss, SGD, start, 40, lr=lr, momentum=beta, nesterov=True).points[1:]
        result = function(torch.func.grad(loss), torch.tensor(start, dtype=torch.float64), lr, beta, 40)
        ok, message = same_tensors([torch.as_tensor(result)], [torch.as_tensor(expected)], atol=1e-10)
        if not ok:
            return False, f"With lr={lr}, β={beta} your look-ahead points differ from SGD(nesterov=True): {message}"
    return True, "the look-ahead points are exactly the iterates of torch's Nesterov form."
