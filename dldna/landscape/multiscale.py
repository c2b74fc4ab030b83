"""Two summaries of a computed loss surface: how its variation splits across scales, and how many basins it has.

- :func:`wavelet_energy`: a 2-D discrete wavelet transform (PyWavelets ``wavedec2``) splits the surface into a
  coarse approximation and detail coefficients per level; the share of energy per level says whether the
  surface varies mostly at the scale of the whole grid (a smooth bowl) or cell to cell (roughness).
- :func:`sublevel_persistence`: persistent homology of the sublevel sets ``{loss <= t}`` as ``t`` rises
  (ripser on the lower-star filtration of the grid). Each connected component is born at a local minimum and
  dies when it merges into an older, deeper one; its persistence is the height of the barrier between them.
  Components with persistence above a threshold are separate basins *of this grid*: a 2-D slice at one
  resolution, not of the full weight space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WaveletEnergy:
    """Energy (sum of squared coefficients) of the approximation and of each detail level, coarse to fine.

    ``energy[0]`` is the coarsest approximation, ``energy[i]`` for ``i >= 1`` the details of level ``i``
    (level 1 coarsest); ``fraction`` divides by their total.
    """

    wavelet: str
    energy: np.ndarray
    fraction: np.ndarray


def wavelet_energy(surface: np.ndarray, wavelet: str = "haar", level: int | None = None, subtract_mean: bool = True) -> WaveletEnergy:
    """Energy per level of the 2-D wavelet decomposition of ``surface`` (``mode="periodization"``).

    With an orthogonal wavelet (``haar``, ``db*``) and sides divisible by ``2**level`` the energies add up to
    the energy of the surface. ``subtract_mean`` removes the mean loss first, which otherwise dominates the
    approximation and says nothing about shape.
    """
    import pywt

    values = np.asarray(surface, dtype=np.float64)
    if values.ndim != 2 or min(values.shape) < 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"surface must be a finite 2-D array with both sides >= 2, got shape {values.shape}")
    if subtract_mean:
        values = values - values.mean()
    coefficients = pywt.wavedec2(values, wavelet, mode="periodization", level=level)
    energy = [float(np.sum(coefficients[0] ** 2))]
    energy += [float(sum(np.sum(band**2) for band in details)) for details in coefficients[1:]]
    energy_array = np.asarray(energy)
    total = energy_array.sum()
    return WaveletEnergy(wavelet, energy_array, energy_array / total if total > 0 else np.zeros_like(energy_array))


@dataclass(frozen=True)
class Persistence:
    """H0 persistence pairs of the sublevel-set filtration: ``births`` (basin floors) and ``deaths`` (the
    level at which a basin merges into a deeper one; ``inf`` for the deepest)."""

    births: np.ndarray
    deaths: np.ndarray

    @property
    def persistence(self) -> np.ndarray:
        return self.deaths - self.births

    def basins(self, min_persistence: float = 0.0) -> int:
        """Number of components living longer than ``min_persistence`` (the deepest basin always counts)."""
        return int(np.sum(self.persistence > min_persistence))


def sublevel_persistence(surface: np.ndarray, diagonal_neighbours: bool = True) -> Persistence:
    """Persistent H0 of the sublevel sets of a 2-D grid, via ripser on its lower-star filtration.

    Grid points are vertices entering at their own value; neighbouring points (4 or, with
    ``diagonal_neighbours``, 8 per point) are joined by an edge entering at the larger of the two values.
    """
    from ripser import ripser
    from scipy import sparse

    values = np.asarray(surface, dtype=np.float64)
    if values.ndim != 2 or not np.all(np.isfinite(values)):
        raise ValueError(f"surface must be a finite 2-D array, got shape {values.shape}")
    rows, cols = values.shape
    index = np.arange(values.size).reshape(rows, cols)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if diagonal_neighbours else [])
    sources, targets = [index.ravel()], [index.ravel()]
    for dr, dc in offsets:
        sources.append(index[: rows - dr, max(0, -dc) : cols - max(0, dc)].ravel())
        targets.append(index[dr:, max(0, dc) : cols - max(0, -dc)].ravel())
    i, j = np.concatenate(sources), np.concatenate(targets)
    flat = values.ravel()
    weights = np.maximum(flat[i], flat[j])
    distances = sparse.coo_matrix((weights, (i, j)), shape=(values.size, values.size)).tocsr()
    diagram = ripser(distances, distance_matrix=True, maxdim=0)["dgms"][0]
    return Persistence(diagram[:, 0], diagram[:, 1])
