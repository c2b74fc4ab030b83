"""Any optimizer class run on a toy surface, and the record of its path.

:func:`run_optimizer` runs the *same* optimizer classes that train networks (``dldna.optim`` or ``torch.optim``)
on a two-parameter tensor (or any small parameter vector of a plain loss function) and records the path; a run
that blows up is reported as ``"diverged"``, never raised. :func:`race` runs several from the same start and
:func:`trajectory_grid` a grid of two hyperparameters, for slider figures without a kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from dldna.toy.surfaces import ToySurface

@dataclass
class Trajectory:
    """The path of one optimizer run: ``points`` (``steps + 1`` rows, or fewer when the run diverged) and the
    loss at each point. ``status`` is ``"ok"`` or ``"diverged"``; ``diverged_at`` is the step that blew up."""

    name: str
    points: np.ndarray
    losses: np.ndarray
    status: str = "ok"
    diverged_at: int | None = None
    hyper: dict[str, Any] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def final_point(self) -> np.ndarray:
        return self.points[-1]

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    def distance_to(self, point: Sequence[float]) -> np.ndarray:
        """Euclidean distance of every point of the path to ``point``."""
        return np.linalg.norm(self.points - np.asarray(point, dtype=float), axis=-1)

    def steps_until(self, condition: Callable[[np.ndarray], np.ndarray]) -> int | None:
        """The first step whose point satisfies ``condition`` (a vectorised test on the ``(n, d)`` points),
        or ``None`` if no point does."""
        hits = np.flatnonzero(condition(self.points))
        return int(hits[0]) if hits.size else None

    def summary(self) -> str:
        if self.diverged:
            return f"{self.name}: diverged at step {self.diverged_at}"
        return f"{self.name}: loss {self.final_loss:.4g} after {len(self.points) - 1} steps"


def run_optimizer(
    surface: ToySurface | Callable[[Tensor], Tensor],
    optimizer_class: type[torch.optim.Optimizer],
    start: Sequence[float] | None = None,
    steps: int = 100,
    *,
    name: str | None = None,
    blowup: float = 1e6,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    **hyper: Any,
) -> Trajectory:
    """Run ``optimizer_class(params, **hyper)`` for ``steps`` steps on ``surface`` from ``start``.

    The parameter is a single tensor of the start's length (two for a :class:`ToySurface`; any length for a
    plain loss function such as a quadratic), exactly what an optimizer sees when it trains a network. Steps
    go through ``optimizer.step(closure)``, so optimizers that re-evaluate the loss work too. When a
    coordinate stops being finite or its size exceeds ``blowup``, the run ends with ``status="diverged"`` and
    the path up to the last point before that step.
    """
    if start is None:
        if not isinstance(surface, ToySurface):
            raise ValueError("start must be given when surface is a plain function")
        start = surface.start
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"Invalid steps: steps={steps!r} (must be an integer >= 0)")
    if not blowup > 0:
        raise ValueError(f"Invalid blowup: blowup={blowup!r} (must be > 0)")
    weights = torch.tensor(list(start), dtype=dtype, device=device).requires_grad_(True)
    optimizer = optimizer_class([weights], **hyper)

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = surface(weights)
        loss.backward()
        return loss

    points = torch.empty(steps + 1, weights.numel(), dtype=dtype, device=device)
    points[0] = weights.detach()
    status, diverged_at, done = "ok", None, steps
    for step in range(1, steps + 1):
        optimizer.step(closure)
        points[step] = weights.detach()
        if not bool(torch.isfinite(points[step]).all()) or float(points[step].abs().max()) > blowup:
            status, diverged_at, done = "diverged", step, step - 1
            break
    path = points[: done + 1]
    with torch.no_grad():
        losses = surface(path) if isinstance(surface, ToySurface) else torch.func.vmap(surface)(path)
    return Trajectory(
        name=name or optimizer_class.__name__,
        points=path.cpu().numpy(),
        losses=losses.cpu().numpy(),
        status=status,
        diverged_at=diverged_at,
        hyper=dict(hyper),
    )


def effective_step_sizes(surface: ToySurface | Callable[[Tensor], Tensor], trajectory: Trajectory) -> np.ndarray:
    """``|Δw_i| / |g_i|`` for every step and coordinate: the learning rate the optimizer effectively applied
    to each coordinate's gradient (exactly ``lr`` for plain SGD, ``lr / (√accumulator + ε)`` for Adagrad and
    RMSprop). Shape ``(steps, d)``; ``nan`` where the gradient is exactly zero."""
    points = torch.as_tensor(trajectory.points[:-1], dtype=torch.float64)
    gradients = torch.func.vmap(torch.func.grad(surface))(points).numpy()
    moves = np.abs(np.diff(trajectory.points, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gradients != 0, moves / np.abs(gradients), np.nan)


def race(
    surface: ToySurface | Callable[[Tensor], Tensor],
    contestants: Mapping[str, tuple[type[torch.optim.Optimizer], Mapping[str, Any]]],
    start: Sequence[float] | None = None,
    steps: int = 100,
) -> dict[str, Trajectory]:
    """Run every ``name: (optimizer_class, hyperparameters)`` from the same start for the same number of
    steps; returns the trajectories by name, in the given order."""
    if not contestants:
        raise ValueError("contestants must name at least one optimizer")
    return {
        name: run_optimizer(surface, optimizer_class, start, steps, name=name, **dict(hyper))
        for name, (optimizer_class, hyper) in contestants.items()
    }



def momentum_hyper(lr: float, beta: float) -> dict[str, float]:
    """``SGD`` keyword arguments for a grid point: the learning rate and the momentum ``beta``."""
    return {"lr": lr, "momentum": beta}


@dataclass
class TrajectoryGrid:
    """Trajectories of one optimizer over a grid of two hyperparameters: ``paths[i][j]`` ran with
    ``lrs[i]`` and ``betas[j]``."""

    surface: ToySurface
    lrs: tuple[float, ...]
    betas: tuple[float, ...]
    paths: list[list[Trajectory]]
    beta_label: str = "β"


def trajectory_grid(
    surface: ToySurface,
    optimizer_class: type[torch.optim.Optimizer],
    lrs: Sequence[float],
    betas: Sequence[float],
    steps: int = 100,
    start: Sequence[float] | None = None,
    hyper: Callable[[float, float], dict[str, Any]] = momentum_hyper,
    beta_label: str = "β",
) -> TrajectoryGrid:
    """Run ``optimizer_class(**hyper(lr, beta))`` for every pair of ``lrs`` × ``betas`` (a precomputed grid
    for kernel-free slider figures). The default ``hyper`` gives SGD's ``lr`` and ``momentum``; pass e.g.
    ``lambda lr, b: {"lr": lr, "betas": (b, 0.999)}`` for Adam."""
    if not lrs or not betas:
        raise ValueError("lrs and betas must each hold at least one value")
    paths = [
        [
            run_optimizer(surface, optimizer_class, start, steps, name=f"lr={lr:g}, {beta_label}={beta:g}", **hyper(lr, beta))
            for beta in betas
        ]
        for lr in lrs
    ]
    return TrajectoryGrid(surface, tuple(lrs), tuple(betas), paths, beta_label)
