"""Up-front checks of optimizer hyperparameters, shared by every optimizer in :mod:`dldna.optim`.

Each check raises ``ValueError`` naming the argument, its value and what it must be, as ``torch.optim`` does, so a
typo such as ``lr=-1e-3`` or a ``nan`` that slipped in from a computation fails when the optimizer is built rather
than as a silent divergence many steps later. Every value must be finite: an infinite learning rate, momentum or
weight decay has no meaning (``torch.optim`` accepts ``inf``; these optimizers refuse it).
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence


def _is_finite_number(value: object) -> bool:
    """A real number (Python's or NumPy's) that is neither NaN nor infinite; ``True`` and ``False`` are not numbers
    here."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_lr(lr: float) -> None:
    """A learning rate must be a finite number >= 0."""
    if not (_is_finite_number(lr) and lr >= 0.0):
        raise ValueError(f"Invalid learning rate: lr={lr!r} (must be a finite number >= 0, such as lr=1e-3)")


def check_non_negative(name: str, value: float) -> None:
    """``eps``, ``weight_decay``, ``momentum`` and friends must be finite and >= 0."""
    if not (_is_finite_number(value) and value >= 0.0):
        raise ValueError(f"Invalid {name}: {name}={value!r} (must be a finite number >= 0)")


def check_positive(name: str, value: float) -> None:
    """``value`` must be finite and > 0."""
    if not (_is_finite_number(value) and value > 0.0):
        raise ValueError(f"Invalid {name}: {name}={value!r} (must be a finite number > 0)")


def check_unit_interval(name: str, value: float, *, closed: bool = False) -> None:
    """``value`` must lie in [0, 1), or in [0, 1] when ``closed``."""
    upper_ok = _is_finite_number(value) and (value <= 1.0 if closed else value < 1.0)
    if not (upper_ok and value >= 0.0):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"Invalid {name}: {name}={value!r} (must be in {interval})")


def check_betas(betas: Sequence[float], count: int = 2) -> None:
    """``betas`` must hold ``count`` numbers, each in [0, 1)."""
    if len(betas) != count:
        raise ValueError(f"Invalid betas: betas={tuple(betas)!r} (expected {count} values)")
    for index, beta in enumerate(betas):
        if not (_is_finite_number(beta) and 0.0 <= beta < 1.0):
            raise ValueError(f"Invalid beta parameter at index {index}: betas[{index}]={beta!r} (must be in [0, 1))")


def check_hyperparameter(name: str, value: float) -> None:
    """The check a per-coordinate hyperparameter gets by its name, for values given without their optimizer's
    constructor (:func:`dldna.train.sweep`): ``lr`` >= 0, ``beta*`` in [0, 1), anything else >= 0, all finite."""
    if name == "lr":
        check_lr(value)
    elif name.startswith("beta"):
        check_unit_interval(name, value)
    else:
        check_non_negative(name, value)


def check_adam_family(lr: float, betas: Sequence[float], eps: float, weight_decay: float) -> None:
    """The checks every Adam-like optimizer makes: ``lr`` and ``eps`` and ``weight_decay`` >= 0, betas in [0, 1)."""
    check_lr(lr)
    check_betas(betas)
    check_non_negative("eps", eps)
    check_non_negative("weight_decay", weight_decay)
