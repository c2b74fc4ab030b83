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
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.callbacks import Callback
from dldna.data import Dataset
from dldna.history import History
from dldna.optim import PerParameterOptimizer
from dldna.train.loop import Step
from dldna.train.run import LossFn, RunStart, check_run_arguments, run_epochs, start_run

GRAPH_WARMUP_STEPS = 3


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
            elif isinstance(optimizer, PerParameterOptimizer) and isinstance(value, (int, float)) and not isinstance(value, bool):
                state[key] = torch.tensor(float(value), dtype=torch.float64, device=param.device)


def _capture(step: Step, index: torch.Tensor) -> torch.cuda.CUDAGraph:
    """Record ``step`` on the static batch indices ``index`` as a CUDA graph; raises ``RuntimeError`` when the step
    cannot be replayed correctly (its optimizer rebinds state instead of changing it in place), with the state
    restored."""
    optimizer = step.run.optimizer
    snapshot = _state_snapshot(optimizer)
    _prepare_optimizer(optimizer)
    prepared = _state_snapshot(optimizer)
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize(index.device)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            step.take(index)
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


class _GraphStep:
    """The step :func:`fit_fast` hands to the epoch driver: :class:`~dldna.train.loop.Step` eagerly for the first
    steps (on a side stream when a graph will follow), then captured once and replayed for every full batch; a
    short last batch runs eagerly. Eager steps zero the gradients in place, so a captured graph's tensors stay
    valid."""

    def __init__(
        self,
        run: RunStart,
        use_graph: bool,
        *,
        batch_size: int,
        max_grad_norm: float | None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.run, self.use_graph = run, use_graph
        self.step = Step(run, run.model, max_grad_norm=max_grad_norm, augment=augment)
        self.loss_sum, self.correct = self.step.loss_sum, self.step.correct
        self.index = torch.zeros(batch_size, dtype=torch.long, device=run.device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        run, step = self.run, self.step
        full_batch = len(index) == len(self.index)
        if self.use_graph and self.graph is None and full_batch and run.state.step >= GRAPH_WARMUP_STEPS:
            try:
                self.graph = _capture(step, self.index)
                run.history.config["cuda_graph"] = True
            except RuntimeError as error:
                self.use_graph = False
                warnings.warn(f"fit_fast: CUDA graph capture failed, running the eager step: {error}", RuntimeWarning, stacklevel=4)
        if self.graph is not None and full_batch:
            self.index.copy_(index)
            self.graph.replay()
        else:
            with _side_stream(run.device, self.use_graph and self.graph is None):
                run.optimizer.zero_grad(set_to_none=False)
                step.take(index)
        return step.record.clone()


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
    ``on_step_end`` between replays; a callback with ``after_backward`` forces the eager step.
    ``history.config["cuda_graph"]`` says whether a graph ran.
    """
    check_run_arguments(epochs, batch_size, max_grad_norm, max_steps)
    if cuda_graph not in (None, True, False):
        raise ValueError(f"cuda_graph must be None, True or False, got {cuda_graph!r}")

    run = start_run(
        model, optimizer, data, device=device, eval_split=eval_split, epochs=epochs, batch_size=batch_size, seed=seed,
        progress=progress, callbacks=callbacks, loss_fn=loss_fn, amp=amp, max_steps=max_steps, compile=False, fast=True,
        cuda_graph=False,
    )
    reason = _graph_unavailable(run.device, callbacks)
    use_graph = cuda_graph is not False and reason is None
    if cuda_graph and reason is not None:
        warnings.warn(f"fit_fast: running the eager step: {reason}", RuntimeWarning, stacklevel=2)

    step = _GraphStep(run, use_graph, batch_size=batch_size, max_grad_norm=max_grad_norm, augment=augment)
    return run_epochs(run, step, epochs=epochs, batch_size=batch_size, max_steps=max_steps, evaluated=model)
