"""Training: :func:`fit` (the one loop), its :class:`History`, callbacks, and :func:`evaluate`."""

from dldna.train.callbacks import Callback, StopFlag, TrainState
from dldna.train.history import History
from dldna.train.loop import evaluate, fit

__all__ = ["Callback", "History", "StopFlag", "TrainState", "evaluate", "fit"]
