"""Optimizers written from their equations, one short file each, drop-in replacements for ``torch.optim``.

Every class subclasses ``torch.optim.Optimizer`` (param groups, closures, ``state_dict``, LR schedulers) and,
where torch has the same algorithm, uses its name, arguments and defaults. Elementwise optimizers keep their
math in a module-level ``*_update`` function that :mod:`dldna.train.sweep` also calls on stacked weights.
"""

from dldna.optim.adam import Adam, adam_update
from dldna.optim.sgd import SGD, sgd_update

__all__ = ["SGD", "Adam", "adam_update", "sgd_update"]
