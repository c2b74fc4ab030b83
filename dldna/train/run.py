"""What every training run shares: the batch order, the set-up before the first step, the epoch driver, the
records it keeps, evaluation, and putting a model in training or evaluation mode for a while.

:func:`~dldna.train.fit` and :func:`~dldna.train.fit_fast` differ only in how one step is taken (eagerly, or
replayed from a CUDA graph); both hand their step to :func:`run_epochs`, which draws the batches, counts steps,
calls the callbacks, catches divergence, evaluates after each epoch and fills the :class:`~dldna.history.History`.
:func:`~dldna.train.sweep` draws its batches with the same :func:`epoch_order`.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.callbacks import Callback, TrainState
from dldna.data import Dataset
from dldna.history import EPOCH_METRICS, STEP_METRICS, History

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(outputs, targets)``: the mean loss of a batch, as ``F.cross_entropy`` computes it."""

GPU_CHECK_EVERY = 25
"""On a GPU the loss is checked for divergence every this many steps (on the CPU, at every step)."""

PROGRESS_MIN_STEPS = 500


def epoch_order(generator: torch.Generator, samples: int, device: torch.device | str) -> torch.Tensor:
    """The order in which an epoch visits the training samples: a permutation of ``range(samples)`` drawn from
    ``generator`` on ``device``. Batches are consecutive slices of it. A run seeds ``generator`` with its
    ``seed`` once and calls this at the start of every epoch, so the same seed gives the same batches, in
    :func:`~dldna.train.fit`, :func:`~dldna.train.fit_fast` and :func:`~dldna.train.sweep` alike."""
    return torch.randperm(samples, generator=generator, device=device)


@contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[nn.Module]:
    modes = [(module, module.training) for module in model.modules()]
    model.train(training)
    try:
        yield model
    finally:
        for module, was_training in modes:
            module.training = was_training


def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Context manager: ``model`` in evaluation mode for the block (dropout off, batch norm on its running
    statistics), then every submodule back in its own mode."""
    return _mode(model, False)


def training_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Context manager: ``model`` in training mode for the block, then every submodule back in its own mode."""
    return _mode(model, True)


def autocast(device: torch.device, enabled: bool, *, cache_enabled: bool = True) -> torch.autocast:
    """bfloat16 autocast on ``device`` when ``enabled`` (matrix products in bf16, reductions and losses in fp32).
    ``cache_enabled=False`` recasts the weights at every use, as a step captured in a CUDA graph needs (the graph
    would otherwise keep stale casts)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled, cache_enabled=cache_enabled)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    batch_size: int = 2048,
    amp: bool = False,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``(x, y)`` in eval mode; the model's modes are restored."""
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    with evaluation_mode(model):
        for start in range(0, len(y), batch_size):
            with autocast(x.device, amp):
                out = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            total_loss += loss_fn(out, target).float() * len(target)
            correct += (out.argmax(dim=1) == target).sum()
    return total_loss.item() / len(y), correct.item() / len(y)


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all ``tensors`` taken together, as one device scalar."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))


def check_run_arguments(epochs: int, batch_size: int, max_grad_norm: float | None) -> None:
    """The argument checks every training loop makes before it starts."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm}")


def _describe_run(model: nn.Module, optimizer: torch.optim.Optimizer, **settings: object) -> dict[str, object]:
    hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params" and isinstance(v, (int, float, tuple, bool))}
    return {
        "optimizer": type(optimizer).__name__,
        "hyperparameters": hyper,
        "model": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        **settings,
    }


def _progress_bar(show: bool | None, epochs: int, steps: int):
    from tqdm.auto import tqdm

    if show is None:
        show = os.environ.get("DLDNA_PROGRESS", "1") != "0" and steps >= PROGRESS_MIN_STEPS
    return tqdm(total=epochs, unit="epoch", disable=not show, leave=False)


@dataclass
class RunStart:
    """What a training loop sets up before its first step: the model, optimizer and callbacks, the splits on the
    device, the History it fills, the callbacks' state, the batch-order generator and the progress bar."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    callbacks: Sequence[Callback]
    loss_fn: LossFn
    amp: bool
    device: torch.device
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    history: History
    state: TrainState
    generator: torch.Generator
    check_every: int
    bar: object


def start_run(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    *,
    device: torch.device | str | None,
    eval_split: str,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool | None,
    callbacks: Sequence[Callback],
    loss_fn: LossFn,
    amp: bool,
    **settings: object,
) -> RunStart:
    """Move data and model to the device, describe the run in a fresh History (``amp`` and ``settings`` are
    added to its config), seed the batch order and tell the callbacks that training begins."""
    target = torch.device(device) if device is not None else data.device
    data = data.to(target)
    model.to(target)
    x_train, y_train = data.split("train")
    x_eval, y_eval = data.split(eval_split)
    steps_per_epoch = -(-len(y_train) // batch_size)
    history = History(
        config=_describe_run(
            model, optimizer, batch_size=batch_size, epochs=epochs, seed=seed, train_samples=len(y_train), amp=amp, **settings
        ),
        device=str(target),
        steps_per_epoch=steps_per_epoch,
    )
    state = TrainState(model=model, optimizer=optimizer, history=history)
    for callback in callbacks:
        callback.on_train_begin(state)
    return RunStart(
        model=model,
        optimizer=optimizer,
        callbacks=callbacks,
        loss_fn=loss_fn,
        amp=amp,
        device=target,
        x_train=x_train,
        y_train=y_train,
        x_eval=x_eval,
        y_eval=y_eval,
        history=history,
        state=state,
        generator=torch.Generator(device=target).manual_seed(seed),
        check_every=1 if target.type == "cpu" else GPU_CHECK_EVERY,
        bar=_progress_bar(progress, epochs, epochs * steps_per_epoch),
    )


class TrainingStep(Protocol):
    """One optimizer step on the training batch ``x_train[index]``, as :func:`run_epochs` calls it.

    A call returns the step's row of :data:`~dldna.history.STEP_METRICS` without the learning rate, ``(loss,
    grad_norm, update_norm, weight_norm)``, as a device tensor, and adds the batch's summed loss and its number
    of correct predictions to ``loss_sum`` and ``correct`` (zeroed by the driver at every epoch).
    """

    loss_sum: torch.Tensor
    correct: torch.Tensor

    def __call__(self, index: torch.Tensor) -> torch.Tensor: ...


def record_steps(history: History, values: torch.Tensor, lrs: list[float], step: int) -> None:
    """Append one epoch's per-step rows ``(loss, grad_norm, update_norm, weight_norm)`` (on the host) and learning
    rates to ``history``; ``step`` counts the steps taken so far. Rows after the first non-finite loss are
    dropped and the run is marked diverged at that step."""
    nonfinite = (~torch.isfinite(values[:, 0])).nonzero()
    if len(nonfinite):
        first_bad = int(nonfinite[0])
        history.status = "diverged"
        history.diverged_at = step - len(values) + first_bad
        values, lrs = values[: first_bad + 1], lrs[: first_bad + 1]
    for column, name in enumerate(STEP_METRICS[:-1]):
        history.steps[name].extend(values[:, column].tolist())
    history.steps["lr"].extend(lrs)


def record_epoch(history: History, bar: object, values: Sequence[float]) -> None:
    """Append one epoch's :data:`EPOCH_METRICS` and show its test loss and accuracy on the progress bar."""
    for name, value in zip(EPOCH_METRICS, values):
        history.epochs[name].append(value)
    bar.update(1)
    bar.set_postfix(loss=f"{history.epochs['test_loss'][-1]:.4f}", acc=f"{history.epochs['test_acc'][-1]:.2%}")


def finish_run(history: History, state: TrainState, bar: object, callbacks: Sequence[Callback], run_start: float) -> History:
    """Close the progress bar, set the run's time and final status, and tell the callbacks."""
    bar.close()
    history.total_time_s = time.perf_counter() - run_start
    if history.status == "running":
        history.status = "stopped" if state.stop else "completed"
    for callback in callbacks:
        callback.on_train_end(state)
    return history


def run_epochs(
    run: RunStart,
    step: TrainingStep,
    *,
    epochs: int,
    batch_size: int,
    max_steps: int | None,
    evaluated: nn.Module,
    after_step: Callable[[], None] | None = None,
    after_epoch: Callable[[], None] | None = None,
) -> History:
    """The epoch loop of every training run: batches in :func:`epoch_order`, ``step`` on each, the step counter,
    the callbacks, the divergence check, evaluation of ``evaluated`` after each epoch and the records.

    ``after_step`` runs after every step, before the callbacks' ``on_step_end``, and ``after_epoch`` after every
    epoch, after their ``on_epoch_end`` (where a learning-rate scheduler steps). The run ends after ``epochs``
    epochs, at a non-finite loss (``"diverged"``), when a callback sets ``state.stop`` or after ``max_steps`` steps.
    """
    history, state, callbacks = run.history, run.state, run.callbacks
    started = time.perf_counter()
    run.model.train()
    for epoch in range(epochs):
        state.epoch = epoch
        epoch_start = time.perf_counter()
        order = epoch_order(run.generator, len(run.y_train), run.device)
        step.loss_sum.zero_()
        step.correct.zero_()
        seen = 0
        rows: list[torch.Tensor] = []
        lrs: list[float] = []
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            lrs.append(float(run.optimizer.param_groups[0]["lr"]))
            rows.append(step(index))
            seen += len(index)
            state.step += 1
            if after_step is not None:
                after_step()
            for callback in callbacks:
                callback.on_step_end(state)
            if state.step % run.check_every == 0 and not torch.isfinite(torch.stack(rows[-run.check_every :])[:, 0]).all():
                break
            if state.stop or (max_steps is not None and state.step >= max_steps):
                break

        record_steps(history, torch.stack(rows).cpu(), lrs, state.step)
        if history.diverged:
            break

        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        train_time = time.perf_counter() - epoch_start
        test_loss, test_acc = evaluate(evaluated, run.x_eval, run.y_eval, run.loss_fn, amp=run.amp)
        record_epoch(history, run.bar, (step.loss_sum.item() / seen, step.correct.item() / seen, test_loss, test_acc, train_time))
        for callback in callbacks:
            callback.on_epoch_end(state)
        if after_epoch is not None:
            after_epoch()
        if state.stop or (max_steps is not None and state.step >= max_steps):
            break

    return finish_run(history, state, run.bar, callbacks, started)
