"""Activation functions from the perceptron's step to GELU and SiLU, with the tools the chapter uses to compare
them: derivatives by autograd and the regions where the derivative is too small to carry a gradient.

The book teaches what the functions do, not how torch computes them, so the registry hands out torch modules.
Every entry of :data:`ACTIVATIONS` is a *factory*: each call returns a new module, so two layers never share
one (a shared :class:`torch.nn.PReLU` would tie the learnable slope of every layer together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn


class _HeavisideFunction(torch.autograd.Function):
    """The step function with its true derivative: zero wherever it exists (everywhere except at 0)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        return torch.zeros_like(grad_output)


class Step(nn.Module):
    """Heaviside step ``1 if x > 0 else 0``, the perceptron's activation (Rosenblatt, 1958).

    Its derivative is zero almost everywhere, so backpropagation through it delivers no gradient at all: the
    reason gradient training needed smooth activations.
    """

    def forward(self, x: Tensor) -> Tensor:
        return _HeavisideFunction.apply(x)


def prelu(num_parameters: int = 1, init: float = 0.25) -> nn.PReLU:
    """A new PReLU (He et al., 2015) with one learnable negative slope per layer (``num_parameters=1``) or one
    per channel (``num_parameters`` = number of channels, dimension 1 of the input)."""
    if num_parameters < 1:
        raise ValueError(f"Invalid number of slopes: num_parameters={num_parameters} (must be >= 1)")
    return nn.PReLU(num_parameters=num_parameters, init=init)


def leaky_relu(negative_slope: float = 0.01) -> nn.LeakyReLU:
    """A new Leaky ReLU (Maas et al., 2013) with a fixed slope for negative inputs."""
    if negative_slope < 0:
        raise ValueError(f"Invalid slope: negative_slope={negative_slope} (must be >= 0)")
    return nn.LeakyReLU(negative_slope)


def gelu_tanh() -> nn.GELU:
    """A new GELU in its tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""
    return nn.GELU(approximate="tanh")


ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "linear": nn.Identity,
    "step": Step,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": leaky_relu,
    "prelu": prelu,
    "gelu": nn.GELU,
    "gelu_tanh": gelu_tanh,
    "silu": nn.SiLU,
}
"""Name -> factory of a fresh module, in historical order. ``gelu`` is the exact ``x * Phi(x)`` (Hendrycks &
Gimpel, 2016), ``gelu_tanh`` its tanh approximation; ``silu`` is ``x * sigmoid(x)``, also called Swish
(Ramachandran et al., 2017). ``linear`` (the identity) is there for deep linear networks."""


def make(name: str) -> nn.Module:
    """A fresh activation module by name, with a clear error for unknown names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"Unknown activation: name={name!r} (must be one of {sorted(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


def derivative(name: str, x: Tensor | np.ndarray | float) -> Tensor:
    """``f'(x)`` elementwise for the activation ``name``, computed by autograd in float64.

    The chapter plots these next to the functions to show where each one passes gradients and where it does not.
    """
    module = make(name).double()
    points = torch.as_tensor(x, dtype=torch.float64).detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(module(points).sum(), points)
    return grad


@dataclass
class SaturationRegion:
    """Where on a grid an activation's derivative is smaller than a threshold in absolute value."""

    x: np.ndarray
    derivative: np.ndarray
    saturated: np.ndarray
    intervals: list[tuple[float, float]]
    fraction: float


def saturation_region(
    name: str, threshold: float, x_range: tuple[float, float] = (-8.0, 8.0), points: int = 3201
) -> SaturationRegion:
    """Grid points of ``x_range`` where ``|f'(x)| < threshold``, with the contiguous saturated intervals and the
    saturated fraction of the grid: the inputs that pass (almost) no gradient back through the activation."""
    if threshold <= 0:
        raise ValueError(f"Invalid threshold: threshold={threshold} (must be > 0)")
    low, high = x_range
    if not low < high:
        raise ValueError(f"Invalid range: x_range={x_range} (need low < high)")
    if points < 2:
        raise ValueError(f"Invalid grid size: points={points} (must be >= 2)")
    grid = np.linspace(low, high, points)
    slope = derivative(name, grid).numpy()
    saturated = np.abs(slope) < threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], saturated.astype(np.int8), [0]])))
    intervals = [(float(grid[start]), float(grid[stop - 1])) for start, stop in zip(edges[::2], edges[1::2])]
    return SaturationRegion(grid, slope, saturated, intervals, float(saturated.mean()))
