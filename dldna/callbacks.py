"""Hooks into a training run (:func:`dldna.train.fit`, :func:`dldna.train.fit_fast`), for metrics and control
that not every run needs.

A callback overrides any of the methods below; each receives the live :class:`TrainState`. Setting
``state.stop = True`` ends the run after the current step with status ``"stopped"``. This module sits below
both :mod:`dldna.optim` (whose Sophia and SWA come with callbacks) and :mod:`dldna.train` (which calls them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dldna.history import History


@dataclass
class TrainState:
    """What a callback can see and change during a training run."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    step: int = 0
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    stop: bool = False
    scratch: dict[str, Any] = field(default_factory=dict)

    def record(self, name: str, value: Any) -> None:
        """Append ``value`` to ``history.extras[name]``."""
        self.history.extras.setdefault(name, []).append(value)


class Callback:
    """Base class: every hook does nothing until overridden."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def after_backward(self, state: TrainState) -> None:
        """Gradients are in ``.grad``; the optimizer has not stepped yet."""

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None:
        """The epoch's metrics are already in ``state.history.epochs``."""

    def on_train_end(self, state: TrainState) -> None: ...


class StopFlag(Callback):
    """Stops a run from outside (another thread, a widget): call :meth:`set` and the run ends at its next step."""

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def on_step_end(self, state: TrainState) -> None:
        if self.requested:
            state.stop = True
