"""Up-front checks of optimizer hyperparameters, shared by every optimizer in :mod:`dldna.optim`.

Each check raises ``ValueError`` naming the argument and its value, as ``torch.optim`` does, so a typo such
as ``lr=-1e-3`` fails when the optimizer is built rather than as a silent divergence many steps later.
"""

from __future__ import annotations

from typing import Sequence


def check_lr(lr: float) -> None:
    """A learning rate must be a number >= 0."""
    if not isinstance(lr, (int, float)) or lr < 0.0:
        raise ValueError(f"Invalid learning rate: lr={lr!r} (must be a number >= 0)")


def check_non_negative(name: str, value: float) -> None:
    """``eps``, ``weight_decay``, ``momentum`` and friends must be >= 0."""
    if not value >= 0.0:
        raise ValueError(f"Invalid {name}: {name}={value!r} (must be >= 0)")


def check_positive(name: str, value: float) -> None:
    if not value > 0.0:
        raise ValueError(f"Invalid {name}: {name}={value!r} (must be > 0)")


def check_unit_interval(name: str, value: float, *, closed: bool = False) -> None:
    """``value`` must lie in [0, 1), or in [0, 1] when ``closed``."""
    upper_ok = value <= 1.0 if closed else value < 1.0
    if not (value >= 0.0 and upper_ok):
        interval = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"Invalid {name}: {name}={value!r} (must be in {interval})")


def check_betas(betas: Sequence[float], count: int = 2) -> None:
    """``betas`` must hold ``count`` numbers, each in [0, 1)."""
    if len(betas) != count:
        raise ValueError(f"Invalid betas: betas={tuple(betas)!r} (expected {count} values)")
    for index, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: betas[{index}]={beta!r} (must be in [0, 1))")


def check_hyperparameter(name: str, value: float) -> None:
    """The check a per-coordinate hyperparameter gets by its name, for values given without their optimizer's
    constructor (:func:`dldna.train.sweep`): ``lr`` >= 0, ``beta*`` in [0, 1), anything else >= 0."""
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
