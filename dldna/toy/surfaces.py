"""Two-dimensional test surfaces: losses of two numbers that show in isolation what a network's loss does in
millions of dimensions.

A ravine whose curvature differs by a factor ``kappa`` between directions, Rosenbrock's curved valley, saddles,
several minima of different depths, and a plateau with almost no gradient. Every surface function takes a tensor
whose last dimension holds the two coordinates, so a whole grid of points is evaluated in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

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
