"""A fitted stand-in for a computed loss surface, and where it is not convex.

A common shortcut fits an inverted Gaussian bump to a 2-D slice of the loss and runs optimizers on the fit. The
bump has one minimum but is convex only near it: :meth:`InvertedGaussian.smallest_curvature` computes, with
``torch.func.hessian``, the smallest eigenvalue of its Hessian at any points, which is negative wherever the
bump curves downwards (beyond about one standard deviation from the centre along that axis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import curve_fit
from torch import Tensor


def _bump(points: tuple[np.ndarray, np.ndarray], offset: float, amplitude: float, a0: float, b0: float, sa: float, sb: float) -> np.ndarray:
    a, b = points
    return offset - amplitude * np.exp(-((a - a0) ** 2) / (2 * sa**2) - ((b - b0) ** 2) / (2 * sb**2))


@dataclass(frozen=True)
class InvertedGaussian:
    """``f(a, b) = offset - amplitude * exp(-(a - a0)^2 / (2 sa^2) - (b - b0)^2 / (2 sb^2))`` with
    ``centre = (a0, b0)`` and ``widths = (sa, sb)`` (standard deviations, positive)."""

    offset: float
    amplitude: float
    centre: tuple[float, float]
    widths: tuple[float, float]

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The bump's value at the points ``(a, b)`` (arrays of the same shape)."""
        return _bump((np.asarray(a, dtype=float), np.asarray(b, dtype=float)), self.offset, self.amplitude, *self.centre, *self.widths)

    def at(self, point: Tensor) -> Tensor:
        """The bump at one ``point = (a, b)``, in torch (float64), so that ``torch.func`` can differentiate it."""
        offset, amplitude, a0, b0, sa, sb = (
            torch.tensor(v, dtype=torch.float64) for v in (self.offset, self.amplitude, *self.centre, *self.widths)
        )
        return offset - amplitude * torch.exp(-((point[0] - a0) ** 2) / (2 * sa**2) - ((point[1] - b0) ** 2) / (2 * sb**2))

    def smallest_curvature(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The smallest eigenvalue of the bump's 2x2 Hessian at every point ``(a, b)``, shaped like ``a``: negative
        where the bump is not locally convex."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape (use np.meshgrid), got {a.shape} and {b.shape}")
        points = torch.tensor(np.stack([a.ravel(), b.ravel()], axis=1), dtype=torch.float64)
        hessians = torch.vmap(torch.func.hessian(self.at))(points)
        return torch.linalg.eigvalsh(hessians)[:, 0].numpy().reshape(a.shape)

    def r_squared(self, a: np.ndarray, b: np.ndarray, values: np.ndarray) -> float:
        """The share of the variation of ``values`` (at the points ``(a, b)``) that the bump explains."""
        values = np.asarray(values, dtype=float)
        residual = np.sum((values - self(a, b)) ** 2)
        return float(1 - residual / np.sum((values - values.mean()) ** 2))

    def box(self, widths: float = 3.0, points: int = 61) -> tuple[np.ndarray, np.ndarray]:
        """A ``points x points`` grid (``np.meshgrid``) reaching ``widths`` standard deviations either side of the
        centre along each axis."""
        axes = [np.linspace(c - widths * s, c + widths * s, points) for c, s in zip(self.centre, self.widths)]
        return np.meshgrid(*axes)


def fit_inverted_gaussian(a: np.ndarray, b: np.ndarray, values: np.ndarray) -> InvertedGaussian:
    """The least-squares :class:`InvertedGaussian` through ``values`` at the grid points ``(a, b)`` (arrays of
    one shape, e.g. from ``np.meshgrid`` of a surface's axes), started at the grid's lowest point with a quarter
    of the grid's extent as widths."""
    a, b, values = (np.asarray(v, dtype=float) for v in (a, b, values))
    if not a.shape == b.shape == values.shape:
        raise ValueError(f"a, b and values must have one shape (use np.meshgrid of the axes), got {a.shape}, {b.shape}, {values.shape}")
    if values.size < 6 or not np.all(np.isfinite(values)):
        raise ValueError("values must hold at least 6 finite numbers to fit the bump's 6 parameters")
    lowest = np.unravel_index(np.argmin(values), values.shape)
    start = (values.max(), np.ptp(values), a[lowest], b[lowest], np.ptp(a) / 4, np.ptp(b) / 4)
    fitted, _ = curve_fit(_bump, (a.ravel(), b.ravel()), values.ravel(), p0=start, maxfev=20000)
    offset, amplitude, a0, b0, sa, sb = (float(v) for v in fitted)
    return InvertedGaussian(offset, amplitude, (a0, b0), (abs(sa), abs(sb)))
