"""A model at a given point of weight space: the network a saved weight vector stands for.

:class:`~dldna.landscape.trajectory.WeightTrajectory` keeps flat weight vectors, and a surface or an
interpolation needs models; :func:`with_weights` turns the one into the other without touching the model the
vector came from.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from dldna.landscape.params import trainable_parameters, unflatten


def with_weights(model: nn.Module, vector: Tensor) -> nn.Module:
    """A copy of ``model`` whose trainable parameters are the flat ``vector`` (in the order of
    :func:`~dldna.landscape.params.flatten`); buffers such as BatchNorm statistics are copied from ``model``,
    and ``model`` itself is left unchanged."""
    if not isinstance(vector, Tensor):
        raise TypeError(f"vector must be a torch.Tensor (a flat weight vector), got {type(vector).__name__}")
    clone = copy.deepcopy(model)
    parameters = trainable_parameters(clone)
    with torch.no_grad():
        for parameter, value in zip(parameters, unflatten(vector.detach(), parameters)):
            parameter.copy_(value)
    return clone
