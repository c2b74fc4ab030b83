"""``fit``: the one training loop behind every chapter, widget, sweep and benchmark.

Data stays on the device and batches are taken by indexing with a shuffled permutation
(:func:`~dldna.train.run.epoch_order`), so there is no DataLoader and no per-sample Python. Per-step metrics are
kept as device tensors and copied to the host once per epoch, so the loop does not wait on the GPU at every step
(on the CPU there is nothing to wait for, and the loss is checked at every step). The epoch loop is
:func:`~dldna.train.run.run_epochs`; this module supplies the step, which :func:`~dldna.train.fit_fast`
replays from a CUDA graph.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.callbacks import Callback
from dldna.data import Dataset
from dldna.history import STEP_METRICS, History
from dldna.train.run import LossFn, RunStart, autocast, check_run_arguments, global_norm, run_epochs, start_run


class Step:
    """One training step on the batch ``x_train[index]``: forward, backward, the callbacks' ``after_backward``,
    clipping, the optimizer's step and the step's metrics, written into ``record``.

    :meth:`take` is the same code eagerly (here) and under CUDA-graph capture (:func:`~dldna.train.fit_fast`):
    it allocates nothing that outlives the step and changes ``record``, ``loss_sum`` and ``correct`` only in
    place. Calling the step first sets the gradients to ``None``, as torch's training loops do.
    """

    def __init__(
        self,
        run: RunStart,
        forward: nn.Module,
        *,
        max_grad_norm: float | None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.run, self.forward, self.max_grad_norm, self.augment = run, forward, max_grad_norm, augment
        self.params = [p for p in run.model.parameters() if p.requires_grad]
        record_dtype = torch.promote_types(torch.float32, self.params[0].dtype)
        self.record = torch.zeros(len(STEP_METRICS) - 1, dtype=record_dtype, device=run.device)
        self.loss_sum = torch.zeros((), device=run.device)
        self.correct = torch.zeros((), dtype=torch.long, device=run.device)
        self.before = [torch.empty_like(p) for p in self.params]

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        self.run.optimizer.zero_grad(set_to_none=True)
        self.take(index)
        return self.record.clone()

    def take(self, index: torch.Tensor) -> None:
        """The step itself, onto whatever the gradients hold (``fit_fast`` zeroes them in place or captures it)."""
        run = self.run
        inputs, targets = run.x_train.index_select(0, index), run.y_train.index_select(0, index)
        if self.augment is not None:
            inputs = self.augment(inputs)
        with autocast(run.device, run.amp, cache_enabled=False):
            outputs = self.forward(inputs)
            loss = run.loss_fn(outputs, targets)
        loss.backward()
        run.state.inputs, run.state.targets, run.state.loss = inputs, targets, loss
        for callback in run.callbacks:
            callback.after_backward(run.state)
        with torch.no_grad():
            weights = [p.detach() for p in self.params]
            grad_norm = global_norm([p.grad for p in self.params if p.grad is not None])
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            torch._foreach_copy_(self.before, weights)
            run.optimizer.step()
            update_norm = global_norm(torch._foreach_sub(weights, self.before))
            self.record.copy_(torch.stack([loss.detach().float(), grad_norm, update_norm, global_norm(weights)]))
            self.loss_sum += loss.detach().float() * len(index)
            self.correct += (outputs.argmax(dim=1) == targets).sum()


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    loss_fn: LossFn = F.cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scheduler_interval: str = "step",
    device: torch.device | str | None = None,
    seed: int = 0,
    eval_split: str = "test",
    max_grad_norm: float | None = None,
    max_steps: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    amp: bool = False,
    compile: bool = False,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> History:
    """Train ``model`` with ``optimizer`` on ``data`` and return its :class:`History`.

    Each step records the loss, the global gradient L2 norm (before clipping), the L2 norm of the parameter
    update, the parameters' L2 norm and the learning rate of the first parameter group. After each epoch the
    model is evaluated on ``eval_split`` (``"test"`` or ``"val"``). A non-finite loss ends the run with
    ``status="diverged"`` and the step in ``diverged_at``; a loss that blows up while staying finite is reported
    ``"diverged"`` too, and a run that ends at chance level ``"learned nothing"`` (the rules:
    :mod:`dldna.history`); nothing is raised. A model that does not fit the data (input shape, number of classes),
    an empty split, an unavailable ``device`` or a count that is not a whole number are refused before the first
    step with a sentence that names the fix. The same ``seed`` gives the same batch order (initialise the model
    under :func:`dldna.set_seed` for a fully repeatable run). ``progress`` shows a bar that advances at every step
    (``None``: only for runs that take more than a few seconds, and never with ``DLDNA_PROGRESS=0``).
    ``scheduler`` steps after every optimizer step (``scheduler_interval="step"``) or every epoch
    (``"epoch"``); ``max_grad_norm`` clips the global gradient norm; ``max_steps`` ends the run early.
    ``amp=True`` runs forward passes under bfloat16 autocast; ``compile=True`` trains a ``torch.compile``-d
    version of the model (same parameters; the first steps pay for compilation). ``augment`` maps each training
    batch of inputs to an augmented one on the device (e.g. :func:`dldna.data.random_crop_flip`).
    :func:`~dldna.train.fit_fast` replays the same step from a CUDA graph.
    """
    check_run_arguments(epochs, batch_size, max_grad_norm, max_steps)
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")

    run = start_run(
        model, optimizer, data, device=device, eval_split=eval_split, epochs=epochs, batch_size=batch_size, seed=seed,
        progress=progress, callbacks=callbacks, loss_fn=loss_fn, amp=amp, max_steps=max_steps, compile=compile,
    )
    forward = torch.compile(model) if compile else model
    step_scheduler = scheduler.step if scheduler is not None else None
    return run_epochs(
        run, Step(run, forward, max_grad_norm=max_grad_norm, augment=augment), epochs=epochs,
        batch_size=batch_size, max_steps=max_steps, evaluated=forward,
        after_step=step_scheduler if scheduler_interval == "step" else None,
        after_epoch=step_scheduler if scheduler_interval == "epoch" else None,
    )
