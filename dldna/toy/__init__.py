"""Toy problems for the optimizer chapters: two-dimensional surfaces, any optimizer run on them, the momentum
analysis on quadratics, and weight decay on pure gradient noise.

- :mod:`~dldna.toy.surfaces`: :class:`ToySurface` and the surfaces (:func:`ravine`, :func:`rosenbrock`,
  :func:`saddle`, :func:`monkey_saddle`, :func:`four_wells`, :func:`plateau`, :func:`toy_surfaces`).
- :mod:`~dldna.toy.runs`: :func:`run_optimizer`, :func:`race`, :func:`trajectory_grid` and the
  :class:`Trajectory` they record (the path of two numbers, not a network's weights: that is
  :class:`dldna.landscape.WeightTrajectory`).
- :mod:`~dldna.toy.momentum`: heavy-ball momentum on a quadratic, rates predicted and measured.
- :mod:`~dldna.toy.weight_decay`: :func:`decay_response`.
"""

from dldna.toy.runs import (
    Trajectory,
    TrajectoryGrid,
    effective_step_sizes,
    momentum_hyper,
    race,
    run_optimizer,
    trajectory_grid,
)
from dldna.toy.surfaces import (
    ToySurface,
    four_wells,
    local_minima,
    monkey_saddle,
    plateau,
    ravine,
    rosenbrock,
    saddle,
    toy_surfaces,
)
from dldna.toy.weight_decay import decay_response

__all__ = [
    "ToySurface",
    "Trajectory",
    "TrajectoryGrid",
    "decay_response",
    "effective_step_sizes",
    "four_wells",
    "local_minima",
    "momentum_hyper",
    "monkey_saddle",
    "plateau",
    "race",
    "ravine",
    "rosenbrock",
    "run_optimizer",
    "saddle",
    "toy_surfaces",
    "trajectory_grid",
]
