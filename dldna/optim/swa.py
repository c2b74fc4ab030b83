"""Stochastic weight averaging (Izmailov et al., 2018): average the weights visited late in training, with a
constant or cyclic learning rate, to land nearer the centre of a wide flat region. The average of ``n + 1``
snapshots is kept as a running mean, one snapshot at a time::

    w̄_{n+1} ← w̄_n + (w - w̄_n) / (n + 1)

:func:`running_average` is that line; :class:`StochasticWeightAveraging` applies it every ``every`` steps of
:func:`dldna.train.fit` through ``torch.optim.swa_utils.AveragedModel``. Pair it with
``torch.optim.swa_utils.SWALR`` for the constant SWA learning rate, and for networks with batch norm run
``torch.optim.swa_utils.update_bn`` on the averaged model before evaluating it (averaged weights need their
own running statistics).
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel

from dldna.callbacks import Callback, TrainState


def running_average(average: torch.Tensor, new: torch.Tensor, count: int | torch.Tensor) -> torch.Tensor:
    """Mean of ``count`` earlier snapshots (``average``) and one more (``new``): ``w̄ + (w - w̄) / (count + 1)``.

    Its signature is ``AveragedModel``'s ``avg_fn``.
    """
    return average + (new - average) / (count + 1)


class StochasticWeightAveraging(Callback):
    """Averages the model's parameters every ``every`` steps from step ``start`` on (steps counted from 1).

    After :func:`~dldna.train.fit`, ``callback.averaged`` is an ``AveragedModel`` holding the average (its
    ``.module`` is a plain copy of the model) and ``callback.snapshots`` the number of snapshots in it.
    """

    def __init__(self, every: int = 1, start: int = 0) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Invalid every: every={every!r} (must be an integer >= 1)")
        if not isinstance(start, int) or start < 0:
            raise ValueError(f"Invalid start: start={start!r} (must be an integer >= 0)")
        self.every, self.start = every, start
        self.averaged: AveragedModel | None = None

    @property
    def snapshots(self) -> int:
        return 0 if self.averaged is None else int(self.averaged.n_averaged.item())

    def on_train_begin(self, state: TrainState) -> None:
        self.averaged = AveragedModel(state.model, avg_fn=running_average)

    def on_step_end(self, state: TrainState) -> None:
        if state.step >= self.start and state.step % self.every == 0:
            self.averaged.update_parameters(state.model)
