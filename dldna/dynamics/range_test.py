"""Smith's learning-rate range test (2017): how the loss responds as the learning rate grows, in one short run.

The schedules themselves (:func:`dldna.train.make_scheduler`, :func:`dldna.train.lr_curve`) belong to training;
this module trains a copy of a model while one of them raises the rate, and reads the curve.
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

from dldna.callbacks import Callback, TrainState
from dldna.data import Dataset
from dldna.history import History
from dldna.train import fit
from dldna.train.run import LossFn


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
    loss_fn: LossFn = F.cross_entropy,
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
