"""What every training run shares: the batch order, the set-up before the first step, the epoch driver, the
records it keeps, evaluation, and putting a model in training or evaluation mode for a while.

:func:`~dldna.train.fit` and :func:`~dldna.train.fit_fast` differ only in how one step is taken (eagerly, or
replayed from a CUDA graph); both hand their step to :func:`run_epochs`, which draws the batches, counts steps,
calls the callbacks, catches divergence, evaluates after each epoch and fills the :class:`~dldna.history.History`.
:func:`~dldna.train.sweep` draws its batches with the same :func:`epoch_order`.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.callbacks import Callback, TrainState
from dldna.config import device as resolve_device
from dldna.data import Dataset
from dldna.data.dataset import check_count
from dldna.history import EPOCH_METRICS, STEP_METRICS, History

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(outputs, targets)``: the mean loss of a batch, as ``F.cross_entropy`` computes it."""

GPU_CHECK_EVERY = 25
"""On a GPU the loss is checked for divergence every this many steps (on the CPU, at every step)."""

PROGRESS_ENV = "DLDNA_PROGRESS"
"""``DLDNA_PROGRESS=0`` turns progress bars off (the book build does, so that no bar reaches a page)."""
PROGRESS_DELAY_S = 3.0
"""A progress bar appears only once a run has taken this long, so runs of a few seconds never show one."""
PROGRESS_POSTFIX_EVERY_S = 0.5
"""How often the bar's loss and accuracy are read from the device (each read waits for the device)."""


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


def check_run_arguments(epochs: int, batch_size: int, max_grad_norm: float | None = None, max_steps: int | None = None) -> None:
    """The argument checks every training loop makes before it starts: whole numbers where steps are counted, a
    finite positive clipping norm; each refusal names the argument and what to pass instead."""
    check_count("epochs", epochs)
    check_count("batch_size", batch_size)
    if max_steps is not None:
        check_count("max_steps", max_steps)
    if max_grad_norm is not None and not (
        isinstance(max_grad_norm, numbers.Real) and math.isfinite(max_grad_norm) and max_grad_norm > 0
    ):
        raise ValueError(f"max_grad_norm must be a finite number > 0, got {max_grad_norm!r}: pass e.g. max_grad_norm=1.0, or None for no clipping")


def check_model_and_data(model: object, data: object) -> None:
    """A training run's model must be a module and its data a :class:`Dataset`."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}: pass the network itself, e.g. MLP()")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a dldna.data.Dataset, got {type(data).__name__}: load one with dldna.data.load_fashion_mnist() or build a Dataset(...)")


def check_optimizer(optimizer: object) -> None:
    """``fit``'s optimizer must be a :class:`torch.optim.Optimizer` instance (a class is a common slip)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        hint = f"{optimizer.__name__}(model.parameters(), lr=...)" if isinstance(optimizer, type) else "Adam(model.parameters(), lr=1e-3)"
        raise TypeError(f"optimizer must be a torch.optim.Optimizer built on the model's parameters, got {optimizer!r}: pass e.g. {hint}")


def loss_name(loss_fn: LossFn) -> str:
    """``"cross_entropy"`` for the cross-entropy family (``F.cross_entropy``, a ``functools.partial`` of it such
    as label smoothing, ``nn.CrossEntropyLoss``), else the function's or class's own name. A run's config keeps
    it: the number of classes, and what a loss that learned nothing looks like, mean something only for
    cross-entropy."""
    base = loss_fn.func if isinstance(loss_fn, functools.partial) else loss_fn
    if base is F.cross_entropy or isinstance(base, nn.CrossEntropyLoss):
        return "cross_entropy"
    return getattr(base, "__name__", type(base).__name__)


def check_model_fits_data(
    model: nn.Module, data: Dataset, eval_split: str, loss_fn: LossFn
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training and evaluation splits ``(x_train, y_train, x_eval, y_eval)``, after checking that neither is
    empty, that ``model`` takes the inputs and, under a cross-entropy ``loss_fn``, that it gives a score for
    every class the labels name.

    The model runs once, in evaluation mode and without gradients, on two training samples: nothing it holds
    changes (batch norm keeps its statistics, dropout is off). A shape mismatch then fails here, in a sentence,
    and not as torch's message from inside the first step (on a GPU, an out-of-range label would even end the
    process's use of the device).
    """
    x_train, y_train = data.split("train")
    x_eval, y_eval = data.split(eval_split)
    larger = {"train": "a larger train_size or a smaller val_size", "val": "a larger val_size", "test": "a larger test_size"}
    for name, labels in (("train", y_train), (eval_split, y_eval)):
        if len(labels) == 0:
            raise ValueError(f"data has no {name} samples: load it with {larger[name]}")
    try:
        with torch.no_grad(), evaluation_mode(model):
            outputs = model(x_train[:2])
    except torch.OutOfMemoryError:
        raise
    except RuntimeError as error:
        shape = tuple(x_train.shape[1:])
        raise ValueError(
            f"model cannot take this data's inputs, of shape {shape} per sample (torch: {str(error).splitlines()[0]}): "
            f"make its first layer take that shape ({math.prod(shape)} features once flattened)"
        ) from error
    if loss_name(loss_fn) != "cross_entropy" or y_train.is_floating_point() or not isinstance(outputs, torch.Tensor):
        return x_train, y_train, x_eval, y_eval
    classes = max(int(y_train.max()), int(y_eval.max())) + 1
    if outputs.dim() < 2 or outputs.shape[1] < classes:
        given = "one number" if outputs.dim() < 2 or outputs.shape[1] == 1 else f"{outputs.shape[1]} scores"
        raise ValueError(
            f"model gives {given} per sample but the labels go up to {classes - 1}: make its last layer output "
            f"{max(classes, data.num_classes)} values, one per class (data.num_classes)"
        )
    return x_train, y_train, x_eval, y_eval


def _describe_run(model: nn.Module, optimizer: torch.optim.Optimizer, **settings: object) -> dict[str, object]:
    hyper = {k: v for k, v in optimizer.param_groups[0].items() if k != "params" and isinstance(v, (int, float, tuple, bool))}
    return {
        "optimizer": type(optimizer).__name__,
        "hyperparameters": hyper,
        "model": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        **settings,
    }


class Progress:
    """A tqdm bar over a run's steps (``tqdm.auto``: a widget in a notebook, text in a terminal) that advances at
    every step and shows the epoch, the running loss and accuracy of the epoch, and the last test accuracy.

    ``show=None`` shows it unless ``$DLDNA_PROGRESS`` is ``0``, and only once the run has taken
    :data:`PROGRESS_DELAY_S` seconds; ``True`` shows it at once, ``False`` never. Reading the loss syncs with the
    device, so it happens at most every :data:`PROGRESS_POSTFIX_EVERY_S` seconds, and never while the bar is off.
    """

    def __init__(self, show: bool | None, total: int) -> None:
        from tqdm.auto import tqdm

        delay = 0.0
        if show is None:
            show, delay = os.environ.get(PROGRESS_ENV, "1") != "0", PROGRESS_DELAY_S
        self.bar = tqdm(total=total, unit="step", disable=not show, delay=delay, leave=False, dynamic_ncols=True)
        self.shown: dict[str, str] = {}
        self.next_postfix = time.monotonic() + delay

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def describe(self, text: str) -> None:
        if self.enabled:
            self.bar.set_description(text, refresh=False)

    def advance(self, metrics: Callable[[], dict[str, str]]) -> None:
        """One step done; ``metrics()`` gives the postfix's values, and is called only when they are shown."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now >= self.next_postfix:
            self.shown.update(metrics())
            self.bar.set_postfix(self.shown, refresh=False)
            self.next_postfix = now + PROGRESS_POSTFIX_EVERY_S
        self.bar.update(1)

    def keep(self, **values: str) -> None:
        """Values shown from now on beside the running ones (the last test accuracy)."""
        if self.enabled:
            self.shown.update(values)
            self.bar.set_postfix(self.shown, refresh=False)

    def close(self) -> None:
        self.bar.close()


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
    progress: Progress


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
    max_steps: int | None,
    **settings: object,
) -> RunStart:
    """Check the model, optimizer and data, move data and model to the device, describe the run in a fresh
    History (``amp`` and ``settings`` are added to its config), seed the batch order, open the progress bar and
    tell the callbacks that training begins."""
    check_model_and_data(model, data)
    check_optimizer(optimizer)
    check_count("seed", seed, minimum=0)
    target = resolve_device(device) if device is not None else data.device
    data = data.to(target)
    model.to(target)
    x_train, y_train, x_eval, y_eval = check_model_fits_data(model, data, eval_split, loss_fn)
    steps_per_epoch = -(-len(y_train) // batch_size)
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    history = History(
        config=_describe_run(
            model, optimizer, batch_size=batch_size, epochs=epochs, seed=seed, train_samples=len(y_train),
            classes=data.num_classes, loss=loss_name(loss_fn), amp=amp, **settings,
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
        progress=Progress(progress, total_steps),
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
        history.diverge(step - len(values) + first_bad)
        values, lrs = values[: first_bad + 1], lrs[: first_bad + 1]
    for column, name in enumerate(STEP_METRICS[:-1]):
        history.steps[name].extend(values[:, column].tolist())
    history.steps["lr"].extend(lrs)


def record_epoch(history: History, progress: Progress, values: Sequence[float]) -> None:
    """Append one epoch's :data:`EPOCH_METRICS` and show its test accuracy on the progress bar."""
    for name, value in zip(EPOCH_METRICS, values):
        history.epochs[name].append(value)
    progress.keep(test_acc=f"{history.epochs['test_acc'][-1]:.1%}")


def finish_run(history: History, state: TrainState, progress: Progress, callbacks: Sequence[Callback], run_start: float) -> History:
    """Close the progress bar, set the run's time and final status (:meth:`History.conclude`), and tell the
    callbacks."""
    progress.close()
    history.total_time_s = time.perf_counter() - run_start
    history.conclude(stopped=state.stop)
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
    epochs, at a non-finite loss (``"diverged"``), when a callback sets ``state.stop`` or after ``max_steps`` steps;
    then :meth:`~dldna.history.History.conclude` says how it ended. The progress bar advances at every step.
    """
    history, state, callbacks, progress = run.history, run.state, run.callbacks, run.progress
    started = time.perf_counter()
    run.model.train()
    for epoch in range(epochs):
        state.epoch = epoch
        progress.describe(f"epoch {epoch + 1}/{epochs}")
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
            progress.advance(lambda: {"loss": f"{step.loss_sum.item() / seen:.4f}", "acc": f"{step.correct.item() / seen:.1%}"})
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
        record_epoch(history, progress, (step.loss_sum.item() / seen, step.correct.item() / seen, test_loss, test_acc, train_time))
        for callback in callbacks:
            callback.on_epoch_end(state)
        if after_epoch is not None:
            after_epoch()
        if state.stop or (max_steps is not None and state.step >= max_steps):
            break

    return finish_run(history, state, progress, callbacks, started)
