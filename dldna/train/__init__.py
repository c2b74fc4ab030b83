"""Training: :func:`fit` (the one loop), its :class:`History`, callbacks, :func:`evaluate`, the CUDA-graph fast
path :func:`fit_fast`, :func:`sweep`, which trains many configurations in one batched pass, and
:func:`activation_bytes`, the memory a step keeps for its backward pass."""

from dldna.train.callbacks import Callback, StopFlag, TrainState
from dldna.train.history import History
from dldna.train.fast import fit_fast
from dldna.train.loop import evaluate, fit
from dldna.train.memory import activation_bytes
from dldna.train.sweep import grid, sweep

__all__ = ["Callback", "activation_bytes", "History", "StopFlag", "TrainState", "evaluate", "fit", "fit_fast", "grid", "sweep"]
