"""Training: :func:`fit` (the one loop), the CUDA-graph fast path :func:`fit_fast`, :func:`sweep`, which trains
many configurations in one batched pass, :func:`evaluate`, learning-rate schedules (:func:`make_scheduler`), the
memory a step keeps (:func:`activation_bytes`, :func:`state_memory`), several seeds of one experiment and their
spread (:func:`repeat`, :func:`spread`, :func:`separated`), and side-by-side runs of optimizers
(:mod:`~dldna.train.compare`, :mod:`~dldna.train.scale`).

A run is described by a :class:`~dldna.history.History` and watched by :class:`~dldna.callbacks.Callback`
objects; both live below this package (the optimizers use callbacks too) and are exported here as well, as the
names a training run hands back and takes.
"""

from dldna.callbacks import Callback, StopFlag, TrainState
from dldna.history import History
from dldna.train.fast import fit_fast
from dldna.train.loop import fit
from dldna.train.memory import activation_bytes, state_memory
from dldna.train.run import epoch_order, evaluate
from dldna.train.schedules import SCHEDULES, lr_curve, make_scheduler, warmup_then
from dldna.train.seeds import Spread, repeat, separated, spread
from dldna.train.sweep import grid, sweep

__all__ = [
    "SCHEDULES",
    "Callback",
    "Spread",
    "History",
    "StopFlag",
    "TrainState",
    "activation_bytes",
    "epoch_order",
    "evaluate",
    "fit",
    "fit_fast",
    "grid",
    "lr_curve",
    "make_scheduler",
    "repeat",
    "separated",
    "spread",
    "state_memory",
    "sweep",
    "warmup_then",
]
