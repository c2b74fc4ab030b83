"""Steps to a target accuracy as a function of batch size, and the critical batch size read off that curve.

Shallue et al. (2019) measure, for each batch size ``B``, the fewest optimizer steps that reach a fixed goal
(with the learning rate tuned per batch size) and find three regimes: *perfect scaling* (doubling ``B`` halves the
steps), *diminishing returns* and *stagnation* (more samples per step buy no fewer steps). McCandlish et al. (2018)
model the same curve as ``S(B) = S_min * (1 + B_crit / B)``: steps fall like ``1 / B`` well below the critical
batch ``B_crit`` and level off at ``S_min`` well above it. :func:`fit_step_curve` fits that model;
:func:`batch_size_sweep` measures the curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from dldna.config import set_seed
from dldna.data import Dataset
from dldna.dynamics.metrics import StopAtTarget
from dldna.train import fit

OptimizerFactory = Callable[[Iterable[nn.Parameter], float], torch.optim.Optimizer]


@dataclass(frozen=True)
class BatchSizeResult:
    """For each entry of ``batch_sizes``: the fewest steps to the target over the tried learning rates
    (``None`` if none reached it within the step limit), the learning rate that achieved it, and every
    ``(lr, steps)`` tried."""

    batch_sizes: tuple[int, ...]
    steps: tuple[int | None, ...]
    best_lrs: tuple[float | None, ...]
    tried: tuple[tuple[tuple[float, int | None], ...], ...]
    target: float

    @property
    def samples(self) -> tuple[int | None, ...]:
        """Training samples processed to reach the target (steps times batch size)."""
        return tuple(None if s is None else s * b for s, b in zip(self.steps, self.batch_sizes))


def batch_size_sweep(
    make_model: Callable[[], nn.Module],
    make_optimizer: OptimizerFactory,
    data: Dataset,
    *,
    batch_sizes: Sequence[int],
    learning_rates: Callable[[int], Sequence[float]],
    target: float,
    max_steps: int,
    eval_every: Callable[[int], int] = lambda batch: 1,
    seed: int = 0,
) -> BatchSizeResult:
    """Train ``make_model()`` (initialised under seed ``seed``) at every batch size and every learning rate
    ``learning_rates(batch_size)``, stopping each run when the accuracy on the evaluation split reaches ``target``.

    The accuracy is evaluated every ``eval_every(batch_size)`` steps, so a step count is exact up to that
    interval. The best learning rate per batch size is the one that needs the fewest steps, which is how Shallue
    et al. compare batch sizes (each at its own tuned learning rate), here on a small grid.
    """
    if not batch_sizes:
        raise ValueError("batch_sizes must not be empty")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be an accuracy in (0, 1], got {target}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    x_eval, y_eval = data.split("test")
    steps, best_lrs, tried = [], [], []
    for batch in batch_sizes:
        epochs = -(-max_steps * batch // len(data.y_train))
        runs = []
        for lr in learning_rates(batch):
            set_seed(seed)
            model = make_model()
            stopper = StopAtTarget(x_eval, y_eval, target, every=eval_every(batch))
            fit(model, make_optimizer(model.parameters(), lr), data, epochs=epochs, batch_size=batch, max_steps=max_steps,
                seed=seed, callbacks=[stopper], progress=False)
            runs.append((lr, stopper.steps_to_target))
        reached = [(s, lr) for lr, s in runs if s is not None]
        best = min(reached) if reached else (None, None)
        steps.append(best[0])
        best_lrs.append(best[1])
        tried.append(tuple(runs))
    return BatchSizeResult(tuple(batch_sizes), tuple(steps), tuple(best_lrs), tuple(tried), target)


def fit_step_curve(batch_sizes: Sequence[float], steps: Sequence[float]) -> tuple[float, float]:
    """``(S_min, B_crit)`` of ``S(B) = S_min * (1 + B_crit / B)`` fitted to measured ``steps``.

    The model is linear in ``1 / B`` (``S = S_min + S_min * B_crit / B``), so ordinary least squares in
    ``1 / B`` gives both numbers. At least two distinct batch sizes are needed.
    """
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    if b.shape != s.shape or len(np.unique(b)) < 2:
        raise ValueError("batch_sizes and steps need the same length and at least two distinct batch sizes")
    slope, intercept = np.polyfit(1.0 / b, s, 1)
    return float(intercept), float(slope / intercept)


def scaling_regimes(
    batch_sizes: Sequence[int], steps: Sequence[float], perfect: float = 0.8, stagnant: float = 0.15
) -> list[tuple[float, str]]:
    """``(efficiency, regime)`` for each move between consecutive batch sizes: how much of the ideal drop in
    steps it achieved, and the regime that makes it.

    Going from ``B1`` to ``B2`` ideally divides the steps by ``B2 / B1``; the efficiency is
    ``log(S1 / S2) / log(B2 / B1)`` (1 for perfect scaling, 0 when the steps do not fall). Efficiencies of at
    least ``perfect`` are called ``"near-perfect"``, at most ``stagnant`` ``"stagnation"``, the rest
    ``"diminishing"``.
    """
    if len(batch_sizes) != len(steps) or len(steps) < 2:
        raise ValueError("need at least two batch sizes with one step count each")
    names = []
    for (b1, s1), (b2, s2) in zip(zip(batch_sizes, steps), zip(batch_sizes[1:], steps[1:])):
        efficiency = np.log(s1 / s2) / np.log(b2 / b1)
        name = "near-perfect" if efficiency >= perfect else "stagnation" if efficiency <= stagnant else "diminishing"
        names.append((float(efficiency), name))
    return names
