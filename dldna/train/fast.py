"""The fast path of :func:`~dldna.train.fit`: one training step recorded once as a CUDA graph and replayed.

Launching the few dozen kernels of a small network's step one by one from Python costs more than running
them. A CUDA graph records the whole step (gather of the batch from the device-resident data, forward,
backward, the step metrics, the optimizer update) and replays it with a single launch. A replay reads the
same memory every time, so the step reads its batch indices from a static buffer, keeps its gradients in
fixed tensors, and the optimizer must keep all of its state in tensors that it changes in place
(``torch.optim`` optimizers with ``capturable=True``, ``torch.optim.SGD``, and the :mod:`dldna.optim`
optimizers once their step counters are tensors). The first steps run eagerly on a side stream (CUDA's
libraries initialise lazily), a short last batch runs eagerly, and anything the graph cannot hold falls back
to the eager step with a warning saying why. Without CUDA the same step code runs eagerly, step for step the
numbers of ``fit``.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.data import Dataset
from dldna.optim._base import ElementwiseOptimizer
from dldna.train.callbacks import Callback
from dldna.train.history import STEP_METRICS, History
from dldna.train.loop import (
    LossFn,
    _global_norm,
    check_run_arguments,
    evaluate,
    finish_run,
    record_epoch,
    record_steps,
    start_run,
)

GRAPH_WARMUP_STEPS = 3


class _Step:
    """One training step on the batch ``x_train[index]``, writing its metrics into static tensors.

    The same code runs eagerly and under graph capture: it allocates nothing that outlives the step and
    changes ``record``, ``loss_sum`` and ``correct`` only in place.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        *,
        batch_size: int,
        loss_fn: LossFn,
        max_grad_norm: float | None,
        amp: bool,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.model, self.optimizer, self.loss_fn, self.augment = model, optimizer, loss_fn, augment
        self.x_train, self.y_train = x_train, y_train
        self.max_grad_norm, self.amp = max_grad_norm, amp
        self.params = [p for p in model.parameters() if p.requires_grad]
        device = x_train.device
        record_dtype = torch.promote_types(torch.float32, self.params[0].dtype)
        self.index = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.record = torch.zeros(len(STEP_METRICS) - 1, dtype=record_dtype, device=device)
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        self.before = [torch.empty_like(p) for p in self.params]

    def __call__(self, index: torch.Tensor) -> None:
        inputs, targets = self.x_train.index_select(0, index), self.y_train.index_select(0, index)
        if self.augment is not None:
            inputs = self.augment(inputs)
        # The autocast weight cache must stay off under graph capture (the graph would keep stale casts).
        with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
            outputs = self.model(inputs)
            loss = self.loss_fn(outputs, targets)
        loss.backward()
        with torch.no_grad():
            weights = [p.detach() for p in self.params]
            grad_norm = _global_norm([p.grad for p in self.params if p.grad is not None])
            if self.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            torch._foreach_copy_(self.before, weights)
            self.optimizer.step()
            update_norm = _global_norm(torch._foreach_sub(weights, self.before))
            self.record.copy_(torch.stack([loss.detach().float(), grad_norm, update_norm, _global_norm(weights)]))
            self.loss_sum += loss.detach().float() * len(index)
            self.correct += (outputs.argmax(dim=1) == targets).sum()

    def eager(self, index: torch.Tensor) -> None:
        """The step without a graph; gradients are zeroed in place so a captured graph's tensors stay valid."""
        self.optimizer.zero_grad(set_to_none=False)
        self(index)


def _state_snapshot(optimizer: torch.optim.Optimizer) -> dict[Any, dict[str, Any]]:
    return {param: dict(state) for param, state in optimizer.state.items()}


def _prepare_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Make the optimizer's state graph-ready: ``capturable=True`` for ``torch.optim`` optimizers that have
    the flag (step counters moved to the parameter's device), and number-valued state of the
    :mod:`dldna.optim` optimizers (step counters) turned into float64 tensors on the parameter's device."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = True
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key == "step":
                state[key] = value.to(param.device)
            elif isinstance(optimizer, ElementwiseOptimizer) and isinstance(value, (int, float)) and not isinstance(value, bool):
                state[key] = torch.tensor(float(value), dtype=torch.float64, device=param.device)


def _capture(step: _Step) -> torch.cuda.CUDAGraph:
    """Record ``step`` on ``step.index`` as a CUDA graph; raises ``RuntimeError`` when the step cannot be
    replayed correctly (its optimizer rebinds state instead of changing it in place), with the state restored."""
    optimizer = step.optimizer
    snapshot = _state_snapshot(optimizer)
    _prepare_optimizer(optimizer)
    prepared = _state_snapshot(optimizer)
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize(step.index.device)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            step(step.index)
        rebound = [
            key for param, state in optimizer.state.items() for key, value in state.items() if prepared[param].get(key) is not value
        ]
        if rebound:
            raise RuntimeError(f"{type(optimizer).__name__} replaces its state {sorted(set(rebound))} at every step instead of updating it in place")
    except Exception:
        for param, state in snapshot.items():
            optimizer.state[param] = state
        optimizer.zero_grad(set_to_none=True)
        raise
    return graph


@contextlib.contextmanager
def _side_stream(device: torch.device, enabled: bool) -> Iterator[None]:
    """Run the block on a side stream (warm-up before capture, as CUDA graphs require) when ``enabled``."""
    if not enabled:
        yield
        return
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        yield
    torch.cuda.current_stream(device).wait_stream(stream)


def _graph_unavailable(device: torch.device, callbacks: Sequence[Callback]) -> str | None:
    """Why CUDA graphs cannot be used here, or ``None`` when they can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device, training is on {device.type}"
    if any(type(c).after_backward is not Callback.after_backward for c in callbacks):
        return "a callback uses after_backward, which cannot run inside a captured step"
    return None


def fit_fast(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Dataset,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    loss_fn: LossFn = F.cross_entropy,
    device: torch.device | str | None = None,
    seed: int = 0,
    eval_split: str = "test",
    max_grad_norm: float | None = None,
    max_steps: int | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    amp: bool = False,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    cuda_graph: bool | None = None,
) -> History:
    """:func:`~dldna.train.fit` with the training step replayed from a CUDA graph; the same History.

    ``cuda_graph=None`` uses a graph on CUDA devices and the eager step elsewhere; ``True`` asks for one and
    warns when it falls back; ``False`` runs the identical step code eagerly. The batch order, metrics and
    divergence handling are those of ``fit``; learning-rate schedulers and ``compile`` are not supported
    (a replayed graph cannot see a changed learning rate); ``augment`` must draw its randomness from torch's
    default generator on the device (as :func:`dldna.data.random_crop_flip` does without ``generator=``) to be
    replayed with fresh draws; a step that cannot be captured runs eagerly, with a warning. Callbacks get
    ``on_step_end`` between replays without ``state.inputs/targets/loss``; a callback with ``after_backward``
    forces the eager step.
    ``history.config["cuda_graph"]`` says whether a graph ran.
    """
    check_run_arguments(epochs, batch_size, max_grad_norm)
    if cuda_graph not in (None, True, False):
        raise ValueError(f"cuda_graph must be None, True or False, got {cuda_graph!r}")

    run = start_run(
        model, optimizer, data, device=device, eval_split=eval_split, epochs=epochs, batch_size=batch_size, seed=seed,
        progress=progress, callbacks=callbacks, amp=amp, compile=False, fast=True, cuda_graph=False,
    )
    target, x_train, y_train, x_eval, y_eval = run.device, run.x_train, run.y_train, run.x_eval, run.y_eval
    history, state, generator, check_every, bar = run.history, run.state, run.generator, run.check_every, run.bar
    reason = _graph_unavailable(target, callbacks)
    use_graph = cuda_graph is not False and reason is None
    if cuda_graph and reason is not None:
        warnings.warn(f"fit_fast: running the eager step: {reason}", RuntimeWarning, stacklevel=2)

    step = _Step(model, optimizer, x_train, y_train, batch_size=batch_size, loss_fn=loss_fn, max_grad_norm=max_grad_norm, amp=amp, augment=augment)
    steps_per_epoch = history.steps_per_epoch
    graph: torch.cuda.CUDAGraph | None = None

    run_start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        state.epoch = epoch
        epoch_start = time.perf_counter()
        order = torch.randperm(len(y_train), generator=generator, device=target)
        records = torch.zeros(steps_per_epoch, len(STEP_METRICS) - 1, dtype=step.record.dtype, device=target)
        step.loss_sum.zero_()
        step.correct.zero_()
        seen = done = 0
        for start in range(0, len(y_train), batch_size):
            index = order[start : start + batch_size]
            full_batch = len(index) == batch_size
            if use_graph and graph is None and full_batch and state.step >= GRAPH_WARMUP_STEPS:
                try:
                    graph = _capture(step)
                    history.config["cuda_graph"] = True
                except RuntimeError as error:
                    use_graph = False
                    warnings.warn(f"fit_fast: CUDA graph capture failed, running the eager step: {error}", RuntimeWarning, stacklevel=2)
            if graph is not None and full_batch:
                step.index.copy_(index)
                graph.replay()
            else:
                with _side_stream(target, use_graph and graph is None):
                    step.eager(index)
            records[done].copy_(step.record)
            seen += len(index)
            done += 1
            state.step += 1
            for callback in callbacks:
                callback.on_step_end(state)
            if done % check_every == 0 and not torch.isfinite(records[done - check_every : done, 0]).all():
                break
            if state.stop or (max_steps is not None and state.step >= max_steps):
                break

        record_steps(history, records[:done].cpu(), [float(optimizer.param_groups[0]["lr"])] * done, state.step)
        if history.diverged:
            break

        if target.type == "cuda":
            torch.cuda.synchronize(target)
        train_time = time.perf_counter() - epoch_start
        test_loss, test_acc = evaluate(model, x_eval, y_eval, loss_fn, amp=amp)
        record_epoch(history, bar, (step.loss_sum.item() / seen, step.correct.item() / seen, test_loss, test_acc, train_time))
        for callback in callbacks:
            callback.on_epoch_end(state)
        if state.stop or (max_steps is not None and state.step >= max_steps):
            break

    return finish_run(history, state, bar, callbacks, run_start)
