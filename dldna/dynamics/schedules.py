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
:func:`lr_range_test` runs Smith's range test on a copy of a model.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from dldna.data import Dataset
from dldna.train import Callback, History, TrainState, fit

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


@dataclass
class RangeTestResult:
    """Outcome of :func:`lr_range_test`: the learning rate and loss of every step, the loss smoothed, and two
    readings of the curve.

    ``lr_at_min`` is where the smoothed loss was lowest; ``suggested_lr`` is a tenth of it, a cautious pick
    below the region where the loss turns up; ``steepest_lr`` is where the smoothed loss fell fastest per unit
    of ``log(lr)`` (before the minimum), the other common reading.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    lr_at_min: float
    suggested_lr: float
    steepest_lr: float
    history: History


class _StopWhenExploding(Callback):
    """Stops the range test once the smoothed loss exceeds ``factor`` times its best value."""

    def __init__(self, factor: float, smoothing: float) -> None:
        self.factor, self.smoothing = factor, smoothing
        self.average, self.best, self.count = 0.0, math.inf, 0

    def on_step_end(self, state: TrainState) -> None:
        self.count += 1
        self.average = self.smoothing * self.average + (1 - self.smoothing) * state.loss.item()
        value = self.average / (1 - self.smoothing**self.count)
        self.best = min(self.best, value)
        if self.count > 5 and (value > self.factor * self.best or not math.isfinite(value)):
            state.stop = True


def smooth_ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Bias-corrected exponential moving average (weight ``1 - smoothing`` on each new value)."""
    out, average = np.empty(len(values)), 0.0
    for i, value in enumerate(values):
        average = smoothing * average + (1 - smoothing) * value
        out[i] = average / (1 - smoothing ** (i + 1))
    return out


def lr_range_test(
    model: nn.Module,
    make_optimizer: Callable[[Any], torch.optim.Optimizer],
    data: Dataset,
    *,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    steps: int = 100,
    batch_size: int = 128,
    smoothing: float = 0.9,
    stop_factor: float = 4.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    seed: int = 0,
) -> RangeTestResult:
    """Smith's learning-rate range test (2017): train a *copy* of ``model`` for ``steps`` steps while the learning
    rate grows exponentially from ``min_lr`` to ``max_lr``, and record the loss at every rate.

    ``make_optimizer(parameters)`` builds the optimizer (its own ``lr`` is replaced). The run stops early once the
    smoothed loss exceeds ``stop_factor`` times its minimum or becomes non-finite. Smith's version increases the
    rate linearly over a few epochs and reads accuracy; the exponential sweep read on the loss, used here, covers
    several decades in one short run.
    """
    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if steps < 10:
        raise ValueError(f"steps must be >= 10, got {steps}")
    trial = copy.deepcopy(model)
    optimizer = make_optimizer(trial.parameters())
    for group in optimizer.param_groups:
        group["lr"] = min_lr
    ratio = max_lr / min_lr
    scheduler = lr_scheduler.LambdaLR(optimizer, lambda step: ratio ** (min(step, steps - 1) / (steps - 1)))
    epochs = math.ceil(steps / math.ceil(len(data.y_train) / batch_size))
    history = fit(
        trial, optimizer, data, epochs=epochs, batch_size=batch_size, loss_fn=loss_fn, scheduler=scheduler,
        max_steps=steps, seed=seed, callbacks=[_StopWhenExploding(stop_factor, smoothing)], progress=False,
    )
    lrs = np.array(history.steps["lr"])
    losses = np.array(history.steps["loss"])
    finite = np.isfinite(losses)
    lrs, losses = lrs[finite], losses[finite]
    smoothed = smooth_ema(losses, smoothing)
    best = int(np.argmin(smoothed))
    slopes = np.gradient(smoothed[: best + 1], np.log(lrs[: best + 1])) if best >= 2 else np.zeros(1)
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        lr_at_min=float(lrs[best]),
        suggested_lr=float(lrs[best]) / 10,
        steepest_lr=float(lrs[int(np.argmin(slopes))]),
        history=history,
    )
