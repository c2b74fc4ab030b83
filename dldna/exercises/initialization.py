"""Checks for the exercises of the *Initialization* chapter (ids ``init.*``)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from dldna import init
from dldna.exercises import register
from dldna.exercises._grading import close, delegates_to, one_of
from dldna.models import ResidualMLP


@register("init.kaiming-std", hint="Kaiming's variance is gain^2 / fan_in, and ReLU's gain is sqrt(2); fan_in is the number of inputs.")
def kaiming_std(answer: float) -> tuple[bool, str]:
    expected = init.gain("relu") / math.sqrt(512)
    ok, message = close(answer, expected)
    return ok, "that is the standard deviation dldna.init.kaiming_normal_ draws." if ok else message


@register("init.xavier-bound", hint="U(-a, a) has variance a^2 / 3; set it equal to 2 / (fan_in + fan_out).")
def xavier_bound(answer: float) -> tuple[bool, str]:
    weight = torch.empty(100, 300)
    fan_in, fan_out = init.fans(weight)
    expected = math.sqrt(3.0) * math.sqrt(2.0 / (fan_in + fan_out))
    ok, message = close(answer, expected)
    return ok, "that is Glorot and Bengio's normalized initialization." if ok else message


def _relu_layer_factor(width: int, weight_variance: float) -> float:
    """Factor by which one Linear(width, width) + ReLU layer multiplies the pre-activation variance."""
    return width * weight_variance * init.second_moment("relu")


@register(
    "init.depth-factor",
    hint="Each layer multiplies the variance by fan_in * Var(W) * E[relu(z)^2] / Var(z); count the layers between layer 1 and layer 20.",
)
def depth_factor(answer: float) -> tuple[bool, str]:
    width = 256
    xavier_variance = 2.0 / (width + width)
    expected = _relu_layer_factor(width, xavier_variance) ** 19
    ok, message = close(answer, expected, rel=1e-3, abs_tol=0.0)
    return ok, "a factor below 1 per layer compounds geometrically." if ok else message


@register("init.fixup-scale", hint="Fixup multiplies the Kaiming weights of each branch layer by L^(-1/(2m-2)) for L branches of m layers.")
def fixup_scale(answer: float) -> tuple[bool, str]:
    def first_branch_weight(scheme: str) -> torch.Tensor:
        model = ResidualMLP(width=32, depth=16)
        return init.apply(model, scheme, generator=torch.Generator().manual_seed(0)).blocks[0].branch[0].weight.detach()

    expected = (first_branch_weight("fixup") / first_branch_weight("kaiming_normal")).mean().item()
    ok, message = close(answer, expected)
    return ok, "that is the factor dldna.init applies to the branch layers." if ok else message


@register(
    "init.kaiming-normal",
    hint="fan_in is weight.shape[1] times the number of kernel positions; fill the tensor in place under torch.no_grad() and return it.",
)
def kaiming_normal(function: Callable[[torch.Tensor], torch.Tensor]) -> tuple[bool, str]:
    used = delegates_to(function, [init.kaiming_normal_, torch.nn.init.kaiming_normal_, init.kaiming_uniform_, torch.nn.init.kaiming_uniform_])
    if used:
        return False, f"kaiming_normal calls {used}, which draws the weights for you: compute fan_in and the standard deviation yourself."
    torch.manual_seed(0)
    for shape in [(400, 300), (64, 32, 3, 3)]:
        weight = torch.empty(shape)
        returned = function(weight)
        if returned is not weight:
            return False, "Fill the given tensor in place and return that same tensor."
        fan_in = init.fans(weight)[0]
        expected = math.sqrt(2.0 / fan_in)
        ok, message = close(weight.std().item(), expected, rel=0.03)
        if not ok:
            return False, f"For a weight of shape {shape} the standard deviation is wrong: {message}"
        if abs(weight.mean().item()) > 3 * expected / math.sqrt(weight.numel()) + 1e-9:
            return False, f"For a weight of shape {shape} the mean is not 0."
    return True, "right spread for Linear and Conv weights."


@register("init.effective-rank", hint="Normalise the singular values to sum to 1, take the Shannon entropy H (natural log), return exp(H).")
def effective_rank(function: Callable[[torch.Tensor], float]) -> tuple[bool, str]:
    used = delegates_to(function, [init.effective_rank])
    if used:
        return False, f"effective_rank calls {used}, which computes the answer for you: start from the singular values."
    generator = torch.Generator().manual_seed(0)
    cases = {
        "a random 50x30 matrix": torch.randn(50, 30, generator=generator, dtype=torch.float64),
        "the 20x20 identity": torch.eye(20, dtype=torch.float64),
        "a rank-one matrix": torch.outer(torch.randn(12, dtype=torch.float64, generator=generator), torch.randn(9, dtype=torch.float64, generator=generator)),
    }
    for name, matrix in cases.items():
        ok, message = close(function(matrix), init.effective_rank(matrix), rel=1e-6, abs_tol=1e-6)
        if not ok:
            return False, f"Wrong for {name}: {message}"
    return True, "matches on random, identity and rank-one matrices."


CRITICAL_STDS = (0.04, 0.08, 0.125, 0.17, 0.25)


def most_stable_std(depth: int = 30, width: int = 128) -> float:
    """The experiment of ``init.critical-std``: the std in :data:`CRITICAL_STDS` whose ReLU stack keeps the
    activation std at the last layer closest (in log ratio) to the first layer's."""
    log_ratios = []
    for std in CRITICAL_STDS:
        stats = init.compare_schemes(["normal"], depth=depth, width=width, activation="relu", batch_size=256, std=std, seed=0)["normal"]
        log_ratios.append(abs(np.log(stats.activation_std[-1] / stats.activation_std[0])))
    return CRITICAL_STDS[int(np.argmin(log_ratios))]


@register("init.critical-std", hint="Run init.compare_schemes(['normal'], depth=30, width=128, activation='relu', batch_size=256, std=s, seed=0) for each s and compare activation_std[-1] with activation_std[0].")
def critical_std(answer: float) -> tuple[bool, str]:
    return one_of(
        answer, CRITICAL_STDS, most_stable_std,
        right="compare it with sqrt(2 / 128): the variance rule picked it before any experiment.",
        below="Another standard deviation keeps the signal closer to its first-layer size: compare |ln(std_30 / std_1)| for every candidate.",
    )


CRITICAL_WIDTH, CRITICAL_DEPTH, OVERSIZED_STD = 128, 30, 0.17


@register(
    "init.critical-growth",
    hint="One Linear(128, 128) + ReLU layer multiplies the activation variance by 128 * std^2 / 2; the standard "
    "deviation by its square root. Count the layers between layer 1 and layer 30.",
)
def critical_growth(answer: float) -> tuple[bool, str]:
    per_layer = math.sqrt(_relu_layer_factor(CRITICAL_WIDTH, OVERSIZED_STD**2))
    ok, message = close(answer, per_layer ** (CRITICAL_DEPTH - 1), rel=1e-3, abs_tol=0.0)
    return ok, "a factor only 36% above 1 per layer compounds to thousands over 29 layers." if ok else message
