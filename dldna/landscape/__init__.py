"""Loss landscapes: interpolation between models, directions in weight space, 1-D and 2-D surfaces evaluated
with ``vmap``, training trajectories, multi-scale summaries, and the Hessian (curvature) routines."""

from dldna.landscape.directions import (
    filter_normalize,
    flatten,
    gaussian_direction,
    hessian_directions,
    inner,
    orthogonalize,
    pca_directions,
    random_direction,
    random_plane,
    trainable_names,
    trainable_parameters,
    unflatten,
)
from dldna.landscape.hessian import HessianOperator, full_hessian, hessian_trace, hvp, spectral_density, top_eigenvalues
from dldna.landscape.interpolation import interpolate
from dldna.landscape.multiscale import Persistence, WaveletEnergy, sublevel_persistence, wavelet_energy
from dldna.landscape.surface import Surface, evaluate_combinations, loss_line, loss_plane
from dldna.landscape.toy import *  # noqa: F403  (2-D toy surfaces for the optimizer chapters)
from dldna.landscape.toy import __all__ as _toy_names
from dldna.landscape.trajectory import TrajectoryPCA, WeightTrajectory, embed_snapshots, project_on_plane, trajectory_pca

__all__ = [
    "HessianOperator",
    "Persistence",
    "Surface",
    "TrajectoryPCA",
    "WaveletEnergy",
    "WeightTrajectory",
    "embed_snapshots",
    "evaluate_combinations",
    "filter_normalize",
    "flatten",
    "full_hessian",
    "gaussian_direction",
    "hessian_trace",
    "hessian_directions",
    "hvp",
    "inner",
    "interpolate",
    "loss_line",
    "loss_plane",
    "orthogonalize",
    "pca_directions",
    "project_on_plane",
    "random_direction",
    "random_plane",
    "spectral_density",
    "sublevel_persistence",
    "top_eigenvalues",
    "trainable_names",
    "trainable_parameters",
    "trajectory_pca",
    "unflatten",
    "wavelet_energy",
    *_toy_names,
]
