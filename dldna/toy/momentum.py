"""Why momentum works, measured: heavy-ball momentum on a quadratic, as in Goh (2017), "Why Momentum Really Works".

On ``f(w) = ½ Σ λᵢ wᵢ²`` with eigenvalues ``λᵢ ∈ [μ, L]`` every coordinate evolves on its own. For torch's SGD
with momentum ``β`` (``b ← β b + g``, ``w ← w - lr b``), one coordinate with curvature ``λ`` has ``g = λ w`` and
the state ``(b, w)`` advances by the 2×2 matrix

    R(λ) = [[ β,       λ        ],
            [ -lr β,   1 - lr λ ]]

whose eigenvalues solve ``z² - (1 + β - lr λ) z + β = 0``: the same polynomial as Polyak's heavy ball
``w ← w - lr ∇f(w) + β (w - w_prev)``. The error shrinks by the spectral radius ``max |z|`` per step
(asymptotically), and the slowest coordinate sets the rate of the whole problem. With ``κ = L / μ``:

- plain gradient descent at its best step ``lr = 2 / (μ + L)`` has rate ``(κ - 1) / (κ + 1)``;
- momentum with ``lr = (2 / (√L + √μ))²`` and ``β = ((√κ - 1) / (√κ + 1))²`` has rate ``(√κ - 1) / (√κ + 1)``,
  so the number of steps to a given accuracy grows like ``√κ`` instead of ``κ``.

:func:`measured_rate` reads the rate off the iterates of a real optimizer class (``dldna.optim.SGD`` by
default), so the theory is checked against the code that trains networks. :func:`lookahead_nesterov` runs
Nesterov's method in the look-ahead form of Sutskever et al. (2013), whose look-ahead points are the iterates
of torch's ``nesterov=True``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from dldna.toy.runs import run_optimizer

__all__ = [
    "MOMENTUM_REGIMES",
    "best_gd",
    "best_momentum",
    "lookahead_nesterov",
    "measured_rate",
    "momentum_matrix",
    "momentum_rate",
    "momentum_regime",
    "quadratic",
    "spectral_radius",
]

MOMENTUM_REGIMES = ("monotone", "oscillating", "sign-flipping", "divergent")
"""Labels of :func:`momentum_regime`: the error of one eigen-direction decays without changing sign, spirals
(complex roots, ``|z| = √β``), flips sign every step (a negative root dominates), or grows."""


def _check_spectrum(mu: float, big_l: float) -> None:
    if not 0 < mu <= big_l:
        raise ValueError(f"Invalid eigenvalue range: need 0 < mu <= L, got mu={mu!r}, L={big_l!r}")


def momentum_matrix(lr: float, beta: float, eigenvalue: float) -> np.ndarray:
    """The 2×2 matrix advancing ``(b, w)`` by one step of torch-style momentum SGD on curvature ``eigenvalue``."""
    return np.array([[beta, eigenvalue], [-lr * beta, 1 - lr * eigenvalue]], dtype=float)


def spectral_radius(lr: float | np.ndarray, beta: float | np.ndarray, eigenvalue: float | np.ndarray) -> np.ndarray:
    """``max |z|`` over the eigenvalues of :func:`momentum_matrix`, broadcast over arrays of its arguments.

    The eigenvalues are the roots ``z = (T ± √(T² - 4β)) / 2`` of the characteristic polynomial
    ``z² - T z + β`` with ``T = 1 + β - lr λ`` (the matrix's trace; ``β`` is its determinant).
    """
    lr, beta, eigenvalue = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lr, beta, eigenvalue)))
    trace = 1 + beta - lr * eigenvalue
    root = np.sqrt((trace**2 - 4 * beta).astype(complex))
    return np.maximum(np.abs(trace + root), np.abs(trace - root)) / 2


def momentum_rate(
    lr: float | np.ndarray, beta: float | np.ndarray, mu: float, big_l: float, samples: int = 65
) -> np.ndarray:
    """The worst spectral radius over ``samples`` eigenvalues spread evenly over ``[mu, big_l]`` (endpoints
    included): the predicted convergence rate of momentum on any quadratic with that spectrum."""
    _check_spectrum(mu, big_l)
    eigenvalues = np.linspace(mu, big_l, samples)
    lr, beta = np.broadcast_arrays(np.asarray(lr, dtype=float), np.asarray(beta, dtype=float))
    return spectral_radius(lr[..., None], beta[..., None], eigenvalues).max(axis=-1)


def momentum_regime(step_times_curvature: np.ndarray | float, beta: np.ndarray | float) -> np.ndarray:
    """Index into :data:`MOMENTUM_REGIMES` for one eigen-direction, given ``lr·λ`` and ``β``.

    The roots of ``z² - (1 + β - lr λ) z + β`` are complex when ``(1 + β - lr λ)² < 4β``; otherwise the
    dominant root has the sign of ``1 + β - lr λ``; the direction diverges when the largest ``|z| >= 1``,
    which happens exactly when ``lr λ >= 2 (1 + β)`` (for ``0 <= β < 1``).
    """
    a, beta = np.broadcast_arrays(np.asarray(step_times_curvature, dtype=float), np.asarray(beta, dtype=float))
    trace = 1 + beta - a
    regime = np.where(trace**2 < 4 * beta, 1, np.where(trace >= 0, 0, 2))
    radius = spectral_radius(a, beta, np.ones_like(a))
    return np.where(radius >= 1, 3, regime)


def best_gd(mu: float, big_l: float) -> tuple[float, float]:
    """``(lr, rate)`` of plain gradient descent at its optimal step ``2 / (mu + L)``: ``rate = (κ-1)/(κ+1)``."""
    _check_spectrum(mu, big_l)
    kappa = big_l / mu
    return 2 / (mu + big_l), (kappa - 1) / (kappa + 1)


def best_momentum(mu: float, big_l: float) -> tuple[float, float, float]:
    """``(lr, beta, rate)`` of optimally tuned heavy-ball momentum (Polyak 1964; Goh 2017)."""
    _check_spectrum(mu, big_l)
    root_kappa = np.sqrt(big_l / mu)
    lr = (2 / (np.sqrt(big_l) + np.sqrt(mu))) ** 2
    rate = (root_kappa - 1) / (root_kappa + 1)
    return float(lr), float(rate**2), float(rate)


def quadratic(eigenvalues: Sequence[float] | Tensor):
    """The loss ``½ Σ λᵢ wᵢ²`` as a function of a 1-D tensor, for :func:`dldna.toy.run_optimizer`."""
    curvatures = torch.as_tensor(eigenvalues, dtype=torch.float64)
    if curvatures.ndim != 1 or not bool((curvatures > 0).all()):
        raise ValueError("eigenvalues must be a 1-D sequence of positive numbers")

    def loss(w: Tensor) -> Tensor:
        return 0.5 * (curvatures.to(w) * w * w).sum(dim=-1)

    return loss


def measured_rate(
    lr: float,
    beta: float,
    eigenvalues: Sequence[float],
    steps: int = 400,
    optimizer_class: type[torch.optim.Optimizer] | None = None,
    nesterov: bool = False,
) -> float:
    """The convergence rate read from the iterates of ``optimizer_class`` (default ``dldna.optim.SGD``) with
    ``momentum=beta`` on :func:`quadratic` ``(eigenvalues)``, started at all ones.

    The distance to the minimum shrinks like ``ρᵗ`` (times a slowly varying factor), so the rate is the
    per-step ratio fitted by least squares to ``log |w_t|`` over the second half of the run. A run that blows
    up has rate ``inf``.
    """
    if optimizer_class is None:
        from dldna.optim import SGD

        optimizer_class = SGD
    if steps < 20:
        raise ValueError(f"Invalid steps: steps={steps!r} (need >= 20 to fit a rate)")
    loss = quadratic(eigenvalues)
    start = [1.0] * len(eigenvalues)
    trajectory = run_optimizer(
        loss, optimizer_class, start, steps, blowup=1e150, lr=lr, momentum=beta, nesterov=nesterov
    )
    if trajectory.diverged:
        return float("inf")
    distances = np.linalg.norm(trajectory.points, axis=1)[steps // 2 :]
    if distances.min() <= 1e-280:
        raise ValueError("the iterates reached zero to machine precision: use fewer steps")
    slope = np.polyfit(np.arange(distances.size), np.log(distances), 1)[0]
    return float(np.exp(slope))


def lookahead_nesterov(
    grad: Callable[[Tensor], Tensor], start: Sequence[float] | Tensor, lr: float, momentum: float, steps: int
) -> tuple[Tensor, Tensor]:
    """Nesterov's method as Sutskever et al. (2013) write it, from velocity ``v = 0``: the gradient is taken at
    the look-ahead point ``w + μ v``, where momentum alone would carry the weights,

        v ← μ v − lr ∇L(w + μ v),    w ← w + v.

    Returns ``(weights, lookahead)``, each of shape ``(steps, d)``: ``w_t`` and ``w_t + μ v_t`` for
    ``t = 1 .. steps`` (float64). Torch's form, ``b ← μ b + g`` and ``w ← w − lr (g + μ b)`` with ``g`` the
    gradient at its own parameters, keeps the look-ahead point as its parameters: its iterates are ``lookahead``.
    """
    if steps < 1:
        raise ValueError(f"Invalid steps: steps={steps!r} (need >= 1)")
    weights = torch.as_tensor(start, dtype=torch.float64).clone()
    velocity = torch.zeros_like(weights)
    path, ahead = [], []
    for _ in range(steps):
        velocity = momentum * velocity - lr * grad(weights + momentum * velocity)
        weights = weights + velocity
        path.append(weights)
        ahead.append(weights + momentum * velocity)
    return torch.stack(path), torch.stack(ahead)
