"""Network loss landscapes: interpolation between models, directions in weight space, 1-D and 2-D surfaces,
training trajectories, multi-scale summaries, and the Hessian (curvature).

- :mod:`~dldna.landscape.params`: the parameter vector every other module works in.
- :mod:`~dldna.landscape.directions`: random filter-normalised directions and planes.
- :mod:`~dldna.landscape.first_layer`: the first layer, affine in its weights, where most arithmetic can be skipped.
- :mod:`~dldna.landscape.surface` and :mod:`~dldna.landscape.interpolation`: the loss along lines and planes.
- :mod:`~dldna.landscape.products`, :mod:`~dldna.landscape.hessian` and :mod:`~dldna.landscape.split`:
  Hessian-vector products, what :mod:`dldna.linalg` computes from them, and the Hessian split at the first layer.
- :mod:`~dldna.landscape.costs`: what each of these costs, measured.
- :mod:`~dldna.landscape.trajectory`: weights saved during training, projected to two dimensions.
- :mod:`~dldna.landscape.multiscale`: wavelet energy and sublevel-set persistence of a computed surface.
- :mod:`~dldna.landscape.weights`: the model at a saved weight vector.
- :mod:`~dldna.landscape.stand_in`: an inverted Gaussian fitted to a surface, and where it is not convex.

The toy surfaces of the optimizer chapters are :mod:`dldna.toy`.
"""

from dldna.landscape.costs import Cost, landscape_costs
from dldna.landscape.directions import (
    filter_normalize,
    gaussian_direction,
    inner,
    orthogonalize,
    random_direction,
    random_plane,
)
from dldna.landscape.hessian import (
    HessianOperator,
    full_hessian,
    hessian_directions,
    hessian_trace,
    hvp,
    spectral_density,
    top_eigenvalues,
)
from dldna.landscape.interpolation import interpolate
from dldna.landscape.multiscale import Persistence, WaveletEnergy, sublevel_persistence, wavelet_energy
from dldna.landscape.params import flatten, trainable_names, trainable_parameters, unflatten
from dldna.landscape.split import SplitHessian
from dldna.landscape.stand_in import InvertedGaussian, fit_inverted_gaussian
from dldna.landscape.surface import Surface, evaluate_combinations, loss_line, loss_plane, random_direction_losses
from dldna.landscape.trajectory import (
    TrajectoryPCA,
    WeightTrajectory,
    embed_snapshots,
    pca_directions,
    project_on_plane,
    trajectory_pca,
)
from dldna.landscape.weights import with_weights

__all__ = [
    "Cost",
    "HessianOperator",
    "InvertedGaussian",
    "Persistence",
    "SplitHessian",
    "Surface",
    "TrajectoryPCA",
    "WaveletEnergy",
    "WeightTrajectory",
    "embed_snapshots",
    "evaluate_combinations",
    "filter_normalize",
    "fit_inverted_gaussian",
    "flatten",
    "full_hessian",
    "gaussian_direction",
    "hessian_directions",
    "hessian_trace",
    "hvp",
    "inner",
    "interpolate",
    "landscape_costs",
    "loss_line",
    "loss_plane",
    "orthogonalize",
    "pca_directions",
    "project_on_plane",
    "random_direction",
    "random_direction_losses",
    "random_plane",
    "spectral_density",
    "sublevel_persistence",
    "top_eigenvalues",
    "trainable_names",
    "trainable_parameters",
    "trajectory_pca",
    "unflatten",
    "wavelet_energy",
    "with_weights",
]
