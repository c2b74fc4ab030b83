"""Optimizers written from their equations, one short file each, drop-in replacements for ``torch.optim``.

Every class subclasses ``torch.optim.Optimizer`` (param groups, closures, ``state_dict``, LR schedulers) and,
where torch has the same algorithm, uses its name, arguments and defaults. Each keeps its math in a module-level
``*_update`` function for one tensor, which the class names as its ``update`` and which :func:`dldna.train.sweep`
also calls on stacked weights (see :mod:`dldna.optim._base`). :data:`OPTIMIZERS` maps each class name to its
class, :func:`default_hyperparameters` gives a class's defaults (what the widgets and the sweep start from) and
:func:`state_bytes` measures an optimizer's memory.
"""

from __future__ import annotations

import torch

from dldna.optim._base import PerParameterOptimizer, default_hyperparameters
from dldna.optim._checks import check_hyperparameter
from dldna.optim.adabelief import AdaBelief, adabelief_update
from dldna.optim.adafactor import Adafactor, adafactor_update
from dldna.optim.adagrad import Adagrad, adagrad_update
from dldna.optim.adam import Adam, adam_update
from dldna.optim.adamw import AdamW, adamw_update
from dldna.optim.lamb import LAMB, lamb_trust_ratio, lamb_update
from dldna.optim.lars import LARS, lars_trust_ratio, lars_update
from dldna.optim.lion import Lion, lion_update
from dldna.optim.lookahead import Lookahead
from dldna.optim.nadam import NAdam, nadam_update
from dldna.optim.radam import RAdam, radam_update
from dldna.optim.rmsprop import RMSprop, rmsprop_update
from dldna.optim.sgd import SGD, sgd_update
from dldna.optim.sophia import (
    Sophia,
    SophiaHessianRefresh,
    estimate_hessian_diagonal,
    gauss_newton_bartlett_diagonal,
    hutchinson_diagonal,
    sophia_update,
)
from dldna.optim.swa import StochasticWeightAveraging, running_average

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    cls.__name__: cls
    for cls in (SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, RAdam, AdaBelief, Lion, Sophia, Adafactor, LARS, LAMB)
}
"""Every optimizer that takes ``params`` directly, by class name (:class:`Lookahead` wraps one of these)."""


def state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the tensors in ``optimizer.state`` (momenta, second moments, ...), not the parameters.

    A wrapper such as :class:`Lookahead` adds its inner optimizer's state. Counts only what exists, so call it
    after at least one step (state is allocated lazily).
    """
    total = 0
    for value in optimizer.state.values():
        entries = value.values() if isinstance(value, dict) else [value]
        total += sum(entry.numel() * entry.element_size() for entry in entries if isinstance(entry, torch.Tensor))
    inner = getattr(optimizer, "optimizer", None)
    if isinstance(inner, torch.optim.Optimizer):
        total += state_bytes(inner)
    return total


__all__ = [
    "LAMB",
    "LARS",
    "OPTIMIZERS",
    "SGD",
    "AdaBelief",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Lion",
    "Lookahead",
    "NAdam",
    "PerParameterOptimizer",
    "RAdam",
    "RMSprop",
    "Sophia",
    "SophiaHessianRefresh",
    "StochasticWeightAveraging",
    "adabelief_update",
    "adafactor_update",
    "adagrad_update",
    "adam_update",
    "adamw_update",
    "check_hyperparameter",
    "default_hyperparameters",
    "estimate_hessian_diagonal",
    "gauss_newton_bartlett_diagonal",
    "hutchinson_diagonal",
    "lamb_trust_ratio",
    "lamb_update",
    "lars_trust_ratio",
    "lars_update",
    "lion_update",
    "nadam_update",
    "radam_update",
    "rmsprop_update",
    "running_average",
    "sgd_update",
    "sophia_update",
    "state_bytes",
]
