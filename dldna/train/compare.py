"""Optimizers side by side: a learning-rate search per optimizer on the validation split, then the final runs
from the same initial weights and batch order.

Everything trains through :func:`dldna.train.fit`; this module only decides what to run and collects the
:class:`~dldna.history.History` objects. The measurements that tell optimizers apart live with their subjects:
state memory in :mod:`dldna.train.memory`, weight decay per coordinate in :mod:`dldna.toy.weight_decay`,
flatness in :func:`dldna.landscape.random_direction_losses`, the figure and table in :mod:`dldna.viz.compare`. An optimizer is given as a *factory*: ``factory(params, lr=...)``
returns a ready optimizer (an optimizer class, or ``functools.partial(AdamW, weight_decay=0.01)``, or a
function that wraps one optimizer in another, such as Lookahead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from dldna.callbacks import Callback
from dldna.config import set_seed
from dldna.data import Dataset
from dldna.history import History
from dldna.train.loop import fit

OptimizerFactory = Callable[..., torch.optim.Optimizer]
CallbackFactory = Callable[[nn.Module, torch.optim.Optimizer], Sequence[Callback]]


@dataclass(frozen=True)
class LRSearch:
    """Result of :func:`tune_lr`: the validation loss and accuracy reached with each learning rate.

    A diverged run has loss ``inf`` and accuracy ``nan``. ``best_index`` points at the lowest validation loss
    (the first learning rate when every run diverged, so a final run with it shows the divergence).
    """

    lrs: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_acc: tuple[float, ...]

    @property
    def best_index(self) -> int:
        return int(np.argmin(self.val_loss))

    @property
    def best_lr(self) -> float:
        return self.lrs[self.best_index]


def train_run(
    data: Dataset,
    model_fn: Callable[[], nn.Module],
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    *,
    seed: int = 0,
    callbacks: CallbackFactory | None = None,
    **fit_options,
) -> tuple[nn.Module, torch.optim.Optimizer, History]:
    """Train a fresh ``model_fn()`` initialised under ``seed`` with :func:`~dldna.train.fit`.

    Every run with the same ``seed`` starts from the same weights and sees the same batches, so runs differ
    only by their optimizer. Returns the trained model, its optimizer (with its state) and the History.
    """
    set_seed(seed)
    model = model_fn().to(data.device)
    optimizer = make_optimizer(model.parameters())
    hooks = callbacks(model, optimizer) if callbacks is not None else ()
    history = fit(model, optimizer, data, seed=seed, callbacks=hooks, progress=False, **fit_options)
    return model, optimizer, history


def tune_lr(
    data: Dataset,
    model_fn: Callable[[], nn.Module],
    factory: OptimizerFactory,
    lrs: Sequence[float],
    *,
    epochs: int = 1,
    batch_size: int = 128,
    seed: int = 0,
    callbacks: CallbackFactory | None = None,
    **fit_options,
) -> LRSearch:
    """Train once per learning rate in ``lrs`` and score each run on the *validation* split.

    The test split is never looked at, so the learning rate chosen here can be used for a fair final run.
    ``data`` must have been loaded with ``val_size > 0``.
    """
    if not lrs or any(not (lr > 0 and math.isfinite(lr)) for lr in lrs):
        raise ValueError(f"lrs must be a non-empty sequence of positive numbers, got {lrs!r}")
    if data.y_val is None:
        raise ValueError("data has no validation split: load it with val_size > 0")
    losses, accs = [], []
    for lr in lrs:
        _, _, run = train_run(
            data, model_fn, lambda params, lr=lr: factory(params, lr=lr), seed=seed, callbacks=callbacks,
            epochs=epochs, batch_size=batch_size, eval_split="val", **fit_options,
        )
        finished = not run.diverged and bool(run.epochs["test_loss"]) and math.isfinite(run.epochs["test_loss"][-1])
        losses.append(run.epochs["test_loss"][-1] if finished else math.inf)
        accs.append(run.epochs["test_acc"][-1] if finished else math.nan)
    return LRSearch(tuple(float(lr) for lr in lrs), tuple(losses), tuple(accs))


def compare_optimizers(
    data: Dataset,
    model_fn: Callable[[], nn.Module],
    optimizers: Mapping[str, Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]],
    *,
    epochs: int = 1,
    batch_size: int = 128,
    seed: int = 0,
    callbacks: Mapping[str, CallbackFactory] | None = None,
    **fit_options,
) -> dict[str, History]:
    """Train the same model from the same initial weights and batch order once per optimizer.

    ``optimizers[name](params)`` builds the optimizer (learning rate included); ``callbacks[name](model,
    optimizer)``, where given, returns that run's callbacks (e.g. one that refreshes a Hessian estimate).
    """
    if not optimizers:
        raise ValueError("optimizers must name at least one optimizer")
    unknown = set(callbacks or {}) - set(optimizers)
    if unknown:
        raise ValueError(f"callbacks names optimizers that are not compared: {sorted(unknown)}")
    return {
        name: train_run(
            data, model_fn, make, seed=seed, callbacks=(callbacks or {}).get(name), epochs=epochs,
            batch_size=batch_size, **fit_options,
        )[2]
        for name, make in optimizers.items()
    }
