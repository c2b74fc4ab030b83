"""Learning-rate schedules, their curves without training, and the learning-rate range test.

Every schedule is a ``torch.optim.lr_scheduler`` object, stepped once per optimizer step by
:func:`dldna.train.fit` (``scheduler_interval="step"``). torch already has each shape; this module only gives them
one calling convention, :func:`make_scheduler` with a name from :data:`SCHEDULES`, and adds linear warm-up in
front of any decay through ``SequentialLR``:

======================  ==================================================================  ==========================
name                    learning rate at step ``t`` of ``T`` (base rate ``lr``)               torch class
======================  ==================================================================  ==========================
``constant``            ``lr``                                                              ``ConstantLR(factor=1)``
``step``                ``lr * gamma ** floor(t / step_size)``                              ``StepLR``
``polynomial``          ``lr * (1 - t / T) ** power``                                       ``PolynomialLR``
``cosine``              ``min_lr + (lr - min_lr) * (1 + cos(pi t / T)) / 2``                ``CosineAnnealingLR``
``warmup_cosine``       linear from ``lr * warmup_start`` to ``lr`` over ``warmup`` steps,  ``SequentialLR`` of
                        then cosine to ``min_lr``                                           ``LinearLR``, cosine
``warmup_linear``       the same warm-up, then linear decay to 0                            ``LinearLR`` twice
``cyclical``            triangle between ``lr / 10`` and ``lr``, half-period ``half_cycle``  ``CyclicLR``
                        (Smith, 2017)
``one_cycle``           up from ``lr / 25`` to ``lr`` over 30 % of ``T``, then down to       ``OneCycleLR``
                        ``lr / 25e4`` (Smith & Topin, 2019); cycles momentum too
======================  ==================================================================  ==========================

:func:`lr_curve` returns any schedule's learning rate at every step without training, for plotting them all;
the learning-rate range test, which trains, is :func:`dldna.dynamics.lr_range_test`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.optim import lr_scheduler

SCHEDULES = ("constant", "step", "polynomial", "cosine", "warmup_cosine", "warmup_linear", "cyclical", "one_cycle")

SchedulerFactory = Callable[[torch.optim.Optimizer], lr_scheduler.LRScheduler]


def _has_momentum(optimizer: torch.optim.Optimizer) -> bool:
    defaults = optimizer.defaults
    return bool(defaults.get("momentum")) or "betas" in defaults


def warmup_then(optimizer: torch.optim.Optimizer, warmup: int, after: lr_scheduler.LRScheduler, start: float = 0.01) -> lr_scheduler.LRScheduler:
    """Linear warm-up from ``start * lr`` to ``lr`` over ``warmup`` steps, then ``after`` (built on the same
    optimizer, counting its steps from the end of the warm-up)."""
    if warmup < 1:
        raise ValueError(f"warmup must be >= 1 step, got {warmup}")
    if not 0.0 < start <= 1.0:
        raise ValueError(f"start must be in (0, 1], got {start}")
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=start, end_factor=1.0, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, after], milestones=[warmup])


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, total_steps: int, **options: Any) -> lr_scheduler.LRScheduler:
    """The schedule ``name`` (one of :data:`SCHEDULES`) over ``total_steps`` optimizer steps, for ``optimizer``
    whose current learning rate is the schedule's base (peak) rate.

    Options, with their defaults: ``step``: ``step_size=total_steps // 3``, ``gamma=0.1``; ``polynomial``:
    ``power=1.0``; ``cosine`` and ``warmup_cosine``: ``min_lr=0.0``; warm-ups: ``warmup=total_steps // 10``,
    ``warmup_start=0.01``; ``cyclical``: ``min_lr=lr / 10``, ``half_cycle=total_steps // 8``;
    ``one_cycle``: ``pct_start=0.3``.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    lr = optimizer.param_groups[0]["lr"]
    warmup = options.pop("warmup", max(1, total_steps // 10))
    warmup_start = options.pop("warmup_start", 0.01)
    if name == "constant":
        scheduler = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    elif name == "step":
        scheduler = lr_scheduler.StepLR(optimizer, step_size=options.pop("step_size", max(1, total_steps // 3)), gamma=options.pop("gamma", 0.1))
    elif name == "polynomial":
        scheduler = lr_scheduler.PolynomialLR(optimizer, total_iters=total_steps, power=options.pop("power", 1.0))
    elif name == "cosine":
        scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=options.pop("min_lr", 0.0))
    elif name == "warmup_cosine":
        decay = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup), eta_min=options.pop("min_lr", 0.0))
        scheduler = warmup_then(optimizer, warmup, decay, warmup_start)
    elif name == "warmup_linear":
        decay = lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=max(1, total_steps - warmup))
        scheduler = warmup_then(optimizer, warmup, decay, warmup_start)
    elif name == "cyclical":
        half = options.pop("half_cycle", max(1, total_steps // 8))
        scheduler = lr_scheduler.CyclicLR(
            optimizer, base_lr=options.pop("min_lr", lr / 10), max_lr=lr, step_size_up=half, mode="triangular", cycle_momentum=False
        )
    else:
        scheduler = lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps, pct_start=options.pop("pct_start", 0.3), cycle_momentum=_has_momentum(optimizer)
        )
    if options:
        raise ValueError(f"options {sorted(options)} do not apply to the {name!r} schedule")
    return scheduler


def lr_curve(schedule: str | SchedulerFactory, total_steps: int, lr: float = 1.0, **options: Any) -> np.ndarray:
    """The learning rate a schedule gives at each of ``total_steps`` steps, computed without training.

    ``schedule`` is a name from :data:`SCHEDULES` (with ``options`` as in :func:`make_scheduler`) or a function
    ``optimizer -> scheduler``. Entry ``t`` is the rate used by step ``t``, as ``fit`` records it.
    """
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    scheduler = make_scheduler(optimizer, schedule, total_steps, **options) if isinstance(schedule, str) else schedule(optimizer)
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates)
