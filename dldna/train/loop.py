"""``fit``: the one training loop behind every chapter, widget, sweep and benchmark.

Data stays on the device and batches are taken by indexing with a shuffled permutation, so there is no
DataLoader and no per-sample Python. Per-step metrics are kept as device tensors and copied to the host once
per epoch, so the loop does not wait on the GPU at every step (on the CPU there is nothing to wait for, and the
loss is checked at every step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.data import Dataset
from dldna.train.callbacks import Callback, TrainState
from dldna.train.history import EPOCH_METRICS, STEP_METRICS, History

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

GPU_CHECK_EVERY = 25
PROGRESS_MIN_STEPS = 500


def _autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast on ``device`` when ``enabled`` (matrix products in bf16, reductions and losses in fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    batch_size: int = 2048,
    amp: bool = False,
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``(x, y)`` in eval mode; the model's train/eval mode is restored."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(y), batch_size):
        with _autocast(x.device, amp):
            out = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        total_loss += loss_fn(out, target).float() * len(target)
        correct += (out.argmax(dim=1) == target).sum()
    model.train(was_training)
    return total_loss.item() / len(y), correct.item() / len(y)


def _global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm of all ``tensors`` taken together, as one device scalar."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))))


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
        import os

        show = os.environ.get("DLDNA_PROGRESS", "1") != "0" and steps >= PROGRESS_MIN_STEPS
    return tqdm(total=epochs, unit="epoch", disable=not show, leave=False)


@dataclass
class RunStart:
    """What every training loop sets up before its first step: the splits on the device, the History it fills,
    the callbacks' state, the batch-order generator and the progress bar."""

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
    **settings: object,
) -> RunStart:
    """Move data and model to the device, describe the run in a fresh History (``settings`` are added to its
    config), seed the batch order and tell the callbacks that training begins."""
    target = torch.device(device) if device is not None else data.device
    data = data.to(target)
    model.to(target)
    x_train, y_train = data.split("train")
    x_eval, y_eval = data.split(eval_split)
    steps_per_epoch = -(-len(y_train) // batch_size)
    history = History(
        config=_describe_run(model, optimizer, batch_size=batch_size, epochs=epochs, seed=seed, train_samples=len(y_train), **settings),
        device=str(target),
        steps_per_epoch=steps_per_epoch,
    )
    state = TrainState(model=model, optimizer=optimizer, history=history)
    for callback in callbacks:
        callback.on_train_begin(state)
    return RunStart(
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


def check_run_arguments(epochs: int, batch_size: int, max_grad_norm: float | None) -> None:
    """The argument checks every training loop makes before it starts."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_grad_norm is not None and max_grad_norm <= 0:
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm}")


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
    fast: bool = False,
) -> History:
    """Train ``model`` with ``optimizer`` on ``data`` and return its :class:`History`.

    Each step records the loss, the global gradient L2 norm (before clipping), the L2 norm of the parameter
    update, the parameters' L2 norm and the learning rate of the first parameter group. After each epoch the
    model is evaluated on ``eval_split`` (``"test"`` or ``"val"``). A non-finite loss ends the run with
    ``status="diverged"`` and the step in ``diverged_at``; nothing is raised. The same ``seed`` gives the same
    batch order (initialise the model under :func:`dldna.set_seed` for a fully repeatable run).
    ``scheduler`` steps after every optimizer step (``scheduler_interval="step"``) or every epoch
    (``"epoch"``); ``max_grad_norm`` clips the global gradient norm; ``max_steps`` ends the run early.
    ``amp=True`` runs forward passes under bfloat16 autocast; ``compile=True`` trains a ``torch.compile``-d
    version of the model (same parameters; the first steps pay for compilation). ``augment`` maps each training
    batch of inputs to an augmented one on the device (e.g. :func:`dldna.data.random_crop_flip`).
    ``fast=True`` hands the run to :func:`dldna.train.fast.fit_fast`: on CUDA the step is replayed from a CUDA
    graph; elsewhere the numbers are the same as here (no ``scheduler``, ``compile`` or ``after_backward``).
    """
    if fast:
        if scheduler is not None or compile:
            raise ValueError("fast=True supports neither scheduler nor compile")
        from dldna.train.fast import fit_fast

        return fit_fast(
            model, optimizer, data, epochs=epochs, batch_size=batch_size, loss_fn=loss_fn, device=device, seed=seed,
            eval_split=eval_split, max_grad_norm=max_grad_norm, max_steps=max_steps, callbacks=callbacks,
            progress=progress, amp=amp, augment=augment,
        )
    check_run_arguments(epochs, batch_size, max_grad_norm)
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")

    run = start_run(
        model, optimizer, data, device=device, eval_split=eval_split, epochs=epochs, batch_size=batch_size, seed=seed,
        progress=progress, callbacks=callbacks, amp=amp, compile=compile,
    )
    target, x_train, y_train, x_eval, y_eval = run.device, run.x_train, run.y_train, run.x_eval, run.y_eval
    history, state, generator, check_every, bar = run.history, run.state, run.generator, run.check_every, run.bar
    params = [p for p in model.parameters() if p.requires_grad]
    forward = torch.compile(model) if compile else model

    run_start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        state.epoch = epoch
        epoch_start = time.perf_counter()
        order = torch.randperm(len(y_train), generator=generator, device=target)
        loss_sum = torch.zeros((), device=target)
        correct = torch.zeros((), device=target, dtype=torch.long)
        seen = 0
        records: list[torch.Tensor] = []
        lrs: list[float] = []
        for start in range(0, len(y_train), batch_size):
            index = order[start : start + batch_size]
            inputs, targets = x_train[index], y_train[index]
            if augment is not None:
                inputs = augment(inputs)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(target, amp):
                outputs = forward(inputs)
                loss = loss_fn(outputs, targets)
            loss.backward()
            state.inputs, state.targets, state.loss = inputs, targets, loss
            for callback in callbacks:
                callback.after_backward(state)

            grads = [p.grad for p in params if p.grad is not None]
            grad_norm = _global_norm(grads)
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            before = [p.detach().clone() for p in params]
            lrs.append(float(optimizer.param_groups[0]["lr"]))
            optimizer.step()
            update_norm = _global_norm(torch._foreach_sub([p.detach() for p in params], before))
            records.append(torch.stack([loss.detach().float(), grad_norm, update_norm, _global_norm([p.detach() for p in params])]))

            loss_sum += loss.detach().float() * len(index)
            correct += (outputs.argmax(dim=1) == targets).sum()
            seen += len(index)
            state.step += 1
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            for callback in callbacks:
                callback.on_step_end(state)
            if state.step % check_every == 0 and not torch.isfinite(torch.stack(records[-check_every:])[:, 0]).all():
                break
            if state.stop or (max_steps is not None and state.step >= max_steps):
                break

        record_steps(history, torch.stack(records).cpu(), lrs, state.step)
        if history.diverged:
            break

        train_time = time.perf_counter() - epoch_start
        if target.type == "cuda":
            torch.cuda.synchronize(target)
            train_time = time.perf_counter() - epoch_start
        test_loss, test_acc = evaluate(forward, x_eval, y_eval, loss_fn, amp=amp)
        record_epoch(history, bar, (loss_sum.item() / seen, correct.item() / seen, test_loss, test_acc, train_time))
        for callback in callbacks:
            callback.on_epoch_end(state)
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        if state.stop or (max_steps is not None and state.step >= max_steps):
            break

    return finish_run(history, state, bar, callbacks, run_start)
