"""Two-dimensional test surfaces, and any optimizer class run on them.

A toy surface is a loss of two numbers, small enough to draw as a contour map, yet it shows in isolation what a
network's loss does in millions of dimensions: a ravine whose curvature differs by a factor ``kappa`` between
directions, Rosenbrock's curved valley, saddles, several minima of different depths, and a plateau with almost
no gradient. :func:`run_optimizer` runs the *same* optimizer classes that train networks (``dldna.optim`` or
``torch.optim``) on a two-parameter tensor and records the path; a run that blows up is reported as
``"diverged"``, never raised.

Every surface function takes a tensor whose last dimension holds the two coordinates, so a whole grid of points
is evaluated in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ToySurface",
    "Trajectory",
    "effective_step_sizes",
    "four_wells",
    "local_minima",
    "monkey_saddle",
    "plateau",
    "race",
    "ravine",
    "rosenbrock",
    "run_optimizer",
    "saddle",
    "toy_surfaces",
    "trajectory_grid",
    "TrajectoryGrid",
]

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ToySurface:
    """A loss of two coordinates with what is known about it.

    ``function`` maps a tensor of shape ``(..., 2)`` to the loss of shape ``(...)``. ``minimum`` is the global
    minimiser (``None`` when the surface is unbounded below), ``critical_points`` all stationary points the
    surface is built around (minima, saddles), ``box = (x_min, x_max, y_min, y_max)`` a window that shows
    them, ``start`` a starting point that makes the surface's point, and ``log_scale`` says whether contour
    levels should be spaced logarithmically (for surfaces whose values span many decades).
    """

    name: str
    function: Callable[[Tensor], Tensor]
    box: Box
    start: Point
    minimum: Point | None = None
    critical_points: tuple[Point, ...] = ()
    log_scale: bool = False
    description: str = ""

    def __call__(self, w: Tensor) -> Tensor:
        if w.shape[-1] != 2:
            raise ValueError(f"w must have last dimension 2 (x, y), got shape {tuple(w.shape)}")
        return self.function(w)

    @property
    def minimum_value(self) -> float | None:
        """The loss at :attr:`minimum` (``None`` without one)."""
        if self.minimum is None:
            return None
        return float(self(torch.tensor(self.minimum, dtype=torch.float64)))

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)`` arrays of shape ``(resolution, resolution)`` over :attr:`box`, for contour plots."""
        if resolution < 2:
            raise ValueError(f"resolution must be >= 2, got {resolution}")
        x_min, x_max, y_min, y_max = self.box
        xs = torch.linspace(x_min, x_max, resolution, dtype=torch.float64)
        ys = torch.linspace(y_min, y_max, resolution, dtype=torch.float64)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        with torch.no_grad():
            values = self(torch.stack([grid_x, grid_y], dim=-1))
        return grid_x.numpy(), grid_y.numpy(), values.numpy()


def ravine(condition_number: float = 10.0) -> ToySurface:
    """``(x² + κ y²) / 2``: a quadratic bowl whose curvature is 1 along x and ``κ`` along y, so its Hessian
    has condition number ``κ``. Gradient descent is stable only for ``lr < 2 / κ`` and then crawls along x."""
    if not condition_number >= 1.0:
        raise ValueError(f"Invalid condition_number: condition_number={condition_number!r} (must be >= 1)")
    kappa = float(condition_number)

    def function(w: Tensor) -> Tensor:
        x, y = w[..., 0], w[..., 1]
        return 0.5 * (x**2 + kappa * y**2)

    return ToySurface(
        name=f"ravine (κ = {kappa:g})",
        function=function,
        box=(-10.0, 10.0, -4.0, 4.0),
        start=(-9.0, 3.0),
        minimum=(0.0, 0.0),
        critical_points=((0.0, 0.0),),
        description="ill-conditioned quadratic: curvature 1 along x and κ along y",
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> ToySurface:
    """Rosenbrock's banana ``(a - x)² + b (y - x²)²``: a steep parabolic valley with its minimum at
    ``(a, a²)``, easy to enter and slow to follow."""
    if not b > 0:
        raise ValueError(f"Invalid b: b={b!r} (must be > 0)")

    def function(w: Tensor) -> Tensor:
        x, y = w[..., 0], w[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return ToySurface(
        name="Rosenbrock",
        function=function,
        box=(-2.0, 2.0, -1.0, 3.0),
        start=(-1.5, 2.0),
        minimum=(a, a * a),
        critical_points=((a, a * a),),
        log_scale=True,
        description="curved valley with its minimum at (a, a²)",
    )


def saddle() -> ToySurface:
    """``x² - y²``: a saddle at the origin, a minimum along x and a maximum along y; unbounded below. From a
    start almost on the x-axis, the gradient along y is tiny and plain gradient descent lingers at the saddle."""

    def function(w: Tensor) -> Tensor:
        return w[..., 0] ** 2 - w[..., 1] ** 2

    return ToySurface(
        name="saddle x² − y²",
        function=function,
        box=(-1.5, 1.5, -1.5, 1.5),
        start=(1.0, 1e-3),
        critical_points=((0.0, 0.0),),
        description="saddle point at the origin, unbounded below along y",
    )


def monkey_saddle() -> ToySurface:
    """``x³ - 3 x y²``: a degenerate saddle (zero gradient *and* zero Hessian at the origin) with three
    descending valleys; second-order information cannot tell it from a flat point."""

    def function(w: Tensor) -> Tensor:
        x, y = w[..., 0], w[..., 1]
        return x**3 - 3 * x * y**2

    return ToySurface(
        name="monkey saddle x³ − 3xy²",
        function=function,
        box=(-1.5, 1.5, -1.5, 1.5),
        start=(0.2, 1e-3),
        critical_points=((0.0, 0.0),),
        description="degenerate saddle with three valleys",
    )


def _tilted_well_roots(tilt: float) -> tuple[float, float, float]:
    """The three real roots, ascending, of ``d/dx [(x² - 1)² + tilt x] = 4x³ - 4x + tilt`` (|tilt| small)."""
    roots = np.roots([4.0, 0.0, -4.0, tilt])
    if np.abs(roots.imag).max() > 1e-12:
        raise ValueError(f"Invalid tilt: tilt={tilt!r} (|tilt| must be < 8/(3√3) ≈ 1.54 for two wells)")
    low, mid, high = sorted(float(r.real) for r in roots)
    return low, mid, high


def four_wells(tilt_x: float = 0.3, tilt_y: float = 0.2) -> ToySurface:
    """``(x² - 1)² + (y² - 1)² + tilt_x x + tilt_y y``: four minima of different depths near ``(±1, ±1)``,
    separated by four saddles around a maximum. Positive tilts make ``(-1, -1)`` the deepest well; which well
    an optimizer ends in depends on where it starts and how far it overshoots."""
    xs, ys = _tilted_well_roots(tilt_x), _tilted_well_roots(tilt_y)

    def function(w: Tensor) -> Tensor:
        x, y = w[..., 0], w[..., 1]
        return (x**2 - 1) ** 2 + (y**2 - 1) ** 2 + tilt_x * x + tilt_y * y

    return ToySurface(
        name="four wells",
        function=function,
        box=(-2.0, 2.0, -2.0, 2.0),
        start=(0.3, 1.6),
        minimum=(xs[0], ys[0]),
        critical_points=tuple((x, y) for x in xs for y in ys),
        description="four local minima of different depths",
    )


def local_minima(surface: ToySurface) -> tuple[Point, ...]:
    """The local minima among ``surface.critical_points``: those where the Hessian is positive definite."""
    minima = []
    for point in surface.critical_points:
        hessian = torch.autograd.functional.hessian(surface, torch.tensor(point, dtype=torch.float64))
        if bool((torch.linalg.eigvalsh(hessian) > 0).all()):
            minima.append(point)
    return tuple(minima)


def plateau(width: float = 1.0) -> ToySurface:
    """``1 - exp(-(x² + y²) / (2 width²))``: a well in a plain. A few widths from the centre the gradient is
    almost zero, so a fixed step size barely moves, while a step normalised by the gradient's size does."""
    if not width > 0:
        raise ValueError(f"Invalid width: width={width!r} (must be > 0)")

    def function(w: Tensor) -> Tensor:
        return 1 - torch.exp(-(w[..., 0] ** 2 + w[..., 1] ** 2) / (2 * width**2))

    return ToySurface(
        name="plateau",
        function=function,
        box=(-5 * width, 5 * width, -5 * width, 5 * width),
        start=(4.0 * width, 3.0 * width),
        minimum=(0.0, 0.0),
        critical_points=((0.0, 0.0),),
        description="a narrow well in a flat plain",
    )


def toy_surfaces() -> dict[str, ToySurface]:
    """One instance of every surface, by short name, with default settings."""
    return {
        "ravine": ravine(),
        "rosenbrock": rosenbrock(),
        "saddle": saddle(),
        "monkey_saddle": monkey_saddle(),
        "four_wells": four_wells(),
        "plateau": plateau(),
    }


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
