"""Checks for the exercises of the *Seeing the loss landscape* chapter (ids ``landscape.*``)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dldna.exercises import register
from dldna.exercises._grading import all_close, close, delegates_to, letter_choice, same_tensors
from dldna.landscape import (
    evaluate_combinations,
    filter_normalize,
    gaussian_direction,
    loss_line,
    loss_plane,
    sublevel_persistence,
    trainable_parameters,
)


@register(
    "landscape.interpolation-by-hand",
    hint="On the line, w(a) = (1 - a) w1 + a w2 with w2 = 0, so w(a) = (1 - a) w1 and the quadratic loss scales by (1 - a)^2.",
)
def interpolation_by_hand(answer: tuple[float, float]) -> tuple[bool, str]:
    hessian = np.diag([4.0, 1.0])
    w1 = np.array([1.0, 2.0])

    def loss(w: np.ndarray) -> float:
        return 0.5 * float(w @ hessian @ w)

    expected = [loss((1 - a) * w1) for a in (0.5, 1.25)]
    return all_close(answer, expected, rel=1e-6)


@register(
    "landscape.curvature-by-hand",
    hint="Near a minimum the loss along a unit eigenvector rises like lambda * t**2 / 2; solve for t.",
)
def curvature_by_hand(answer: float) -> tuple[bool, str]:
    top_eigenvalue, rise = 8.0, 1.0
    ok, message = close(answer, math.sqrt(2 * rise / top_eigenvalue), rel=1e-6)
    return ok, "that is the distance along the sharpest direction." if ok else message


def _small_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()


@register(
    "landscape.filter-normalize",
    hint="For each tensor with 2+ dimensions, rescale every row (index along dim 0) to the norm of the matching "
    "row of the weights; set 1-D tensors to zero.",
)
def filter_normalize_check(function) -> tuple[bool, str]:
    used = delegates_to(function, [filter_normalize])
    if used:
        return False, f"Your function calls {used}, the package's own filter normalisation: compute the row norms yourself."
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 3)).double()
    weights = trainable_parameters(model)
    direction = gaussian_direction(model, torch.Generator().manual_seed(11))
    before = [d.clone() for d in direction]
    result = function(direction, weights)
    if not same_tensors(direction, before, atol=0)[0]:
        return False, "Your function changed the direction it was given; return new tensors instead."
    ok, message = same_tensors(result, filter_normalize(before, weights, ignore="biasbn"), atol=1e-10)
    return ok, "matches on a conv + batch-norm + linear model." if ok else message


@register(
    "landscape.vmap-line",
    hint="Stack the weights w + alpha * d for all alphas, then vmap a function (weights -> loss) that calls "
    "torch.func.functional_call(model, weights, (x,)) and F.cross_entropy.",
)
def vmap_line(function) -> tuple[bool, str]:
    used = delegates_to(function, [loss_line, loss_plane, evaluate_combinations])
    if used:
        return False, f"Your function calls {used}, which evaluates the line for you: write the vmapped pass yourself."
    model = _small_model(4)
    forward_calls = []
    model.register_forward_pre_hook(lambda module, inputs: forward_calls.append(1))
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(40, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=generator)
    direction = gaussian_direction(model, generator)
    alphas = torch.linspace(-1, 1, 9, dtype=torch.float64)
    answer = torch.as_tensor(function(model, x, y, direction, alphas)).detach().double().flatten().numpy()
    if len(forward_calls) != 1:
        return False, (
            f"Your function ran the model {len(forward_calls)} times for {len(alphas)} values of alpha; the exercise "
            "asks for one forward pass over all of them (vmap a function of the weights)."
        )
    reference = loss_line(model, x, y, direction, alphas.numpy(), method="loop").loss
    ok, message = all_close(answer, reference.tolist(), rel=1e-9, abs_tol=1e-10)
    return ok, f"one forward pass, {message}" if ok else message


def _rescaled_changes(factor: float = 10.0) -> dict[str, float]:
    """How much the loss after one step changes between a small ReLU network and its copy with the first layer
    scaled by ``factor`` and the second by ``1 / factor`` (the same function), along the raw direction scaled by
    0.1 and along the filter-normalised one (each normalised to its own network's weights)."""
    model = _small_model(6)
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(64, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (64,), generator=generator)
    scaled = _small_model(6)
    with torch.no_grad():
        scaled[1].weight.mul_(factor)
        scaled[1].bias.mul_(factor)
        scaled[3].weight.div_(factor)
    raw = gaussian_direction(model, torch.Generator().manual_seed(8))

    def loss_after_step(net: nn.Module, normalize: bool) -> float:
        direction = filter_normalize(raw, trainable_parameters(net)) if normalize else [d * 0.1 for d in raw]
        return float(loss_line(net, x, y, direction, [0.5]).loss[0])

    return {kind: abs(loss_after_step(model, kind == "filter") - loss_after_step(scaled, kind == "filter"))
            for kind in ("raw", "filter")}


@register(
    "landscape.rescale-invariance",
    hint="Compute the loss after the same step for the original and the rescaled network, once with the raw "
    "direction and once with the filter-normalised one (normalised to each network's own weights), and give "
    "the absolute differences.",
)
def rescale_invariance(answer: dict[str, float]) -> tuple[bool, str]:
    if not isinstance(answer, dict) or set(answer) != {"raw", "filter"}:
        return False, "Give a dict with the keys 'raw' and 'filter' and the absolute change of the loss for each."
    expected = _rescaled_changes()
    ok, message = close(answer["raw"], expected["raw"], rel=1e-6, abs_tol=1e-9)
    if not ok:
        return False, f"The raw-direction change: {message} Both losses come from L.loss_line at alpha = 0.5."
    ok, message = close(answer["filter"], expected["filter"], rel=1e-3, abs_tol=1e-9)
    if not ok:
        return False, f"The filter-normalised change: {message} Normalise the direction to each network's own weights."
    return True, "only the raw-direction picture depends on how the weights are scaled."


def egg_crate(points: int = 41) -> np.ndarray:
    """The exercise's surface: ``sin(3a) sin(3b) + 0.1 (a^2 + b^2)`` on ``[-2, 2]^2``."""
    axis = np.linspace(-2, 2, points)
    a, b = np.meshgrid(axis, axis)
    return np.sin(3 * a) * np.sin(3 * b) + 0.1 * (a**2 + b**2)


@register(
    "landscape.basins",
    hint="Use dldna.landscape.sublevel_persistence on the grid and count components whose persistence "
    "(death - birth) exceeds the threshold; the deepest basin never dies and counts too.",
)
def basins(answer: int) -> tuple[bool, str]:
    expected = sublevel_persistence(egg_crate()).basins(0.5)
    if not isinstance(answer, (int, np.integer)):
        return False, f"Expected a whole number of basins, got {type(answer).__name__}."
    if answer == expected:
        return True, "that many basins are separated by barriers higher than 0.5."
    return False, f"{answer} basins does not match: a basin counts when its persistence (death - birth) exceeds 0.5."


WHY_ONE_BASIN_CHOICES = ("a", "b", "c", "d")
"""The choices of the exercise's "why" question: (b) is right, the deepest basin's component is never merged."""


@register(
    "landscape.why-one-basin",
    hint="Follow the sublevel sets as the threshold rises: when two components meet, which one dies, and can the "
    "component of the lowest point ever meet a deeper one?",
)
def why_one_basin(answer: str) -> tuple[bool, str]:
    return letter_choice(
        answer, WHY_ONE_BASIN_CHOICES, "b",
        right="the global minimum's component never merges into a deeper one, so its persistence is infinite.",
        wrong="That statement does not explain it: ask which component survives each merge of two basins.",
    )
