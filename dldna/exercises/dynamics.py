"""Checks for the exercises of the *Training dynamics* chapter (ids ``dynamics.*``)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

from dldna.data import Dataset
from dldna.dynamics import GradientClipping, estimate_noise_scale, noise_from_batch_gradients, two_batch_noise_scale
from dldna.exercises import register
from dldna.exercises._grading import all_close, close, delegates_to, same_tensors
from dldna.optim import SGD
from dldna.train import fit, lr_curve

STABILITY_LR, STABILITY_CURVATURE = 0.05, 50.0
SCALING_BASE_LR, SCALING_BASE_BATCH, SCALING_BATCH = 0.1, 256, 8192
WARMUP_SETTINGS = {"lr": 0.1, "total_steps": 100, "warmup": 10}
WARMUP_QUERY_STEPS = (5, 55)
DIVERGENCE_LRS = (0.02, 0.05, 0.1, 0.15, 0.3, 0.6)


def divergence_problem() -> tuple[torch.Tensor, torch.Tensor]:
    """The least-squares data of the divergence exercise: 64 samples of 5 features with unequal scales."""
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(64, 5, generator=generator) * torch.tensor([3.0, 1.5, 1.0, 0.5, 0.2])
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0]) + 0.1 * torch.randn(64, generator=generator)
    return x, y


@register("dynamics.stability", hint="On f(w) = lambda w^2 / 2 a step maps w to (1 - lr * lambda) w.")
def stability(answer: tuple[float, float]) -> tuple[bool, str]:
    try:
        limit, factor = answer
    except (TypeError, ValueError):
        return False, "Give a pair (largest stable curvature, growth factor per step)."
    ok_limit, limit_message = close(limit, 2 / STABILITY_LR)
    ok_factor, factor_message = close(factor, abs(1 - STABILITY_LR * STABILITY_CURVATURE))
    if ok_limit and ok_factor:
        return True, "that is the stability limit and the growth per step beyond it."
    return False, f"limit: {limit_message} factor: {factor_message} The factor is an absolute value."


@register("dynamics.lr-scaling", hint="Linear scaling multiplies the rate by the batch ratio; square-root scaling by its square root.")
def lr_scaling(answer: tuple[float, float]) -> tuple[bool, str]:
    ratio = SCALING_BATCH / SCALING_BASE_BATCH
    return all_close(answer, [SCALING_BASE_LR * ratio, SCALING_BASE_LR * math.sqrt(ratio)])


@register(
    "dynamics.warmup-value",
    hint="The warm-up factor goes linearly from 0.01 to 1 over the warm-up; the cosine then counts steps from its end.",
)
def warmup_value(answer: tuple[float, float]) -> tuple[bool, str]:
    curve = lr_curve("warmup_cosine", **WARMUP_SETTINGS)
    return all_close(answer, [curve[step] for step in WARMUP_QUERY_STEPS], rel=1e-4)


@register(
    "dynamics.noise-scale",
    hint="Sum the per-coordinate sample variances (divide by n - 1) for tr(Sigma); |G|^2 is |mean|^2 minus tr(Sigma) / n.",
)
def noise_scale(function) -> tuple[bool, str]:
    used = delegates_to(function, [noise_from_batch_gradients, estimate_noise_scale, two_batch_noise_scale])
    if used:
        return False, f"noise_scale calls {used}, which estimates the noise scale for you: compute tr(Sigma) and |G|^2 yourself."
    generator = torch.Generator().manual_seed(5)
    for samples, mean_size in ((50, 1.0), (200, 0.2)):
        per_sample = mean_size * torch.randn(1, 30, generator=generator) + torch.randn(samples, 30, generator=generator)
        expected = noise_from_batch_gradients(per_sample, batch_size=1).b_simple
        ok, message = close(function(per_sample.clone()), expected, rel=1e-6)
        if not ok:
            return False, f"On {samples} random per-sample gradients: {message}"
    return True, "matches the unbiased estimator on random gradients."


@register(
    "dynamics.clip-norm",
    hint="Compute one norm over all tensors together; scale every tensor by max_norm / norm only when norm > max_norm.",
)
def clip_norm(function) -> tuple[bool, str]:
    used = delegates_to(function, [torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grads_with_norm_, GradientClipping])
    if used:
        return False, f"clip_by_global_norm calls {used}, which does the clipping for you: compute the joint norm and the scale yourself."
    generator = torch.Generator().manual_seed(2)
    for max_norm in (0.5, 100.0):
        grads = [torch.randn(4, 3, generator=generator), torch.randn(7, generator=generator)]
        reference = [g.clone().requires_grad_(True) for g in grads]
        for tensor, grad in zip(reference, grads):
            tensor.grad = grad.clone()
        torch.nn.utils.clip_grad_norm_(reference, max_norm)
        originals = [g.clone() for g in grads]
        clipped = function(grads, max_norm)
        if not same_tensors(grads, originals, atol=0.0)[0]:
            return False, "Your function changed its input tensors; return new ones instead."
        ok, message = same_tensors(clipped, [t.grad for t in reference], atol=1e-5)
        if not ok:
            return False, f"With max_norm={max_norm}: {message}"
    return True, "agrees with torch.nn.utils.clip_grad_norm_ below and above the threshold."


DIVERGENCE_STEPS = 300


def half_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss of the divergence exercise: half the mean squared error of a one-output model."""
    return 0.5 * (outputs.squeeze(1) - targets).pow(2).mean()


@lru_cache(maxsize=1)
def diverging_lrs() -> tuple[float, ...]:
    """The experiment of ``dynamics.divergence-lrs``: the rates of :data:`DIVERGENCE_LRS` whose full-batch gradient
    descent run (``fit``, :data:`DIVERGENCE_STEPS` steps, zero start) ends with status ``"diverged"``."""
    x, y = divergence_problem()
    data = Dataset("least squares", x, y, x, y, ("value",), (0.0,), (1.0,))
    diverged = []
    for lr in DIVERGENCE_LRS:
        model = nn.Linear(5, 1, bias=False)
        nn.init.zeros_(model.weight)
        history = fit(model, SGD(model.parameters(), lr=lr), data, epochs=DIVERGENCE_STEPS, batch_size=len(y),
                      loss_fn=half_mse, device="cpu", progress=False)
        if history.diverged:
            diverged.append(lr)
    return tuple(diverged)


@register(
    "dynamics.divergence-lrs",
    hint="Run fit once per learning rate and keep those whose History has status 'diverged'.",
)
def divergence_lrs(answer: list[float]) -> tuple[bool, str]:
    try:
        given = sorted(float(lr) for lr in answer)
    except (TypeError, ValueError):
        return False, "Give a list of learning rates."
    if given == sorted(diverging_lrs()):
        return True, "exactly the runs that fit reported as diverged."
    return False, f"{len(given)} rates given, and the set is not the one whose runs fit reported as diverged."


@register(
    "dynamics.divergence-boundary",
    hint="The Hessian of half the mean squared error of a linear model is X^T X / n; gradient descent is stable "
    "along an eigenvector while lr * eigenvalue < 2.",
)
def divergence_boundary(answer: float) -> tuple[bool, str]:
    x, _ = divergence_problem()
    curvature = torch.linalg.eigvalsh(x.double().T @ x.double() / len(x)).max().item()
    ok, message = close(answer, 2 / curvature, rel=1e-3)
    return ok, "below this rate every direction shrinks; above it the sharpest one grows." if ok else message
