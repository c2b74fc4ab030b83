"""Train many hyperparameter configurations of one model in a single batched pass.

Every configuration starts from the same initial weights and sees the same batches in the same order (one
shared permutation per epoch, drawn exactly as :func:`~dldna.train.fit` draws it), so configuration ``c``
ends with the numbers that ``fit`` gives for it alone. The weights of all configurations are stacked along a
new leading dimension ``C``; one forward and backward pass, vectorised with :func:`torch.func.vmap` over
:func:`torch.func.functional_call`, computes every configuration's loss and gradient; the optimizer step is
the optimizer class's update function (``SGD.update`` is ``sgd_update``, ``Adam.update`` is ``adam_update``, ...)
called once per stacked tensor, with each hyperparameter a tensor of shape ``(C, 1, ..., 1)`` that broadcasts
against it. The hyperparameters and their defaults are the optimizer class's own
(:func:`dldna.optim.default_hyperparameters`, named as its update function names them).

A configuration whose loss stops being finite (in float32, the precision in which ``fit`` records it) is marked
``"diverged"`` at that step and dropped from the stack, and the others go on; at the end every configuration gets
its status by the same rules as a run of ``fit`` (:meth:`~dldna.history.History.conclude`). Configurations with different batch sizes (or different boolean options such as
``nesterov``) cannot share a pass; they are grouped and each group runs on its own.
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.config import device as resolve_device
from dldna.data import Dataset
from dldna.data.dataset import check_count
from dldna.history import EPOCH_METRICS, STEP_METRICS, History
from dldna.optim import OPTIMIZERS, PerParameterOptimizer, check_hyperparameter, default_hyperparameters
from dldna.train.run import (
    GPU_CHECK_EVERY, LossFn, Progress, check_model_and_data, check_model_fits_data, check_run_arguments, epoch_order,
    evaluation_mode, loss_name,
)

Config = Mapping[str, float | int | bool]
Tensors = dict[str, torch.Tensor]

EVAL_ROWS = 2048
EVAL_ROWS_PER_PASS = 1 << 18


REQUIRED = ("lr",)
"""Hyperparameters every configuration must set: a sweep that silently used an optimizer's default learning
rate would rarely be what was meant."""


def sweepable_optimizers() -> dict[str, type[PerParameterOptimizer]]:
    """The optimizers of :mod:`dldna.optim` a sweep can run, by short name (``"sgd"``, ``"adam"``, ...): those
    that declare themselves ``sweepable`` (their update needs nothing but the gradient and treats every
    coordinate on its own)."""
    return {
        name.lower(): cls
        for name, cls in OPTIMIZERS.items()
        if issubclass(cls, PerParameterOptimizer) and cls.sweepable
    }


def grid(**axes: Sequence[float | int | bool]) -> list[dict[str, float | int | bool]]:
    """Every combination of the given values, e.g. ``grid(lr=[0.01, 0.1], momentum=[0.0, 0.9])`` (4 configs)."""
    for name, values in axes.items():
        if len(values) == 0:
            raise ValueError(f"{name} must list at least one value")
    names = list(axes)
    return [dict(zip(names, combination)) for combination in itertools.product(*axes.values())]


def _hyperparameters(cls: type[PerParameterOptimizer]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(numeric, flags)``: the keyword arguments of ``cls.update`` with the class's defaults, split into
    per-configuration numbers and shared boolean options."""
    numeric, flags = {}, {}
    for name, value in cls.hyperparameters(default_hyperparameters(cls)).items():
        (flags if isinstance(value, bool) else numeric)[name] = value
    return numeric, flags


def _complete(config: Config, numeric: dict[str, Any], flags: dict[str, Any], batch_size: int, optimizer: str) -> dict[str, Any]:
    """``config`` with every default filled in and checked; raises ``ValueError`` naming a bad key or value."""
    unknown = set(config) - set(numeric) - set(flags) - {"batch_size"}
    if unknown:
        raise ValueError(f"configs: unknown hyperparameter(s) {sorted(unknown)} for {optimizer!r}; known: {sorted(numeric) + sorted(flags) + ['batch_size']}")
    for name in REQUIRED:
        if name not in config:
            raise ValueError(f"configs: every configuration needs a value for {name!r}")
    full = {**numeric, **flags, "batch_size": batch_size, **config}
    for name in numeric:
        if isinstance(full[name], bool) or not isinstance(full[name], (int, float)):
            raise ValueError(f"configs: {name} must be a number, got {full[name]!r}")
        check_hyperparameter(name, float(full[name]))
    for name in flags:
        if not isinstance(full[name], bool):
            raise ValueError(f"configs: {name} must be True or False, got {full[name]!r}")
    if not isinstance(full["batch_size"], int) or full["batch_size"] < 1:
        raise ValueError(f"configs: batch_size must be an integer >= 1, got {full['batch_size']!r}")
    return full


class _Stack:
    """The live state of one group: stacked weights, optimizer state, hyperparameters and running sums of the
    configurations that are still training (``slots[i]`` is the index, in the group, of stacked row ``i``)."""

    def __init__(self, model: nn.Module, configs: list[dict[str, Any]], numeric: Sequence[str], device: torch.device) -> None:
        count = len(configs)
        self.slots = torch.arange(count)
        self.params: Tensors = {
            name: p.detach().to(device).unsqueeze(0).repeat(count, *([1] * p.dim())).requires_grad_(True)
            for name, p in model.named_parameters()
            if p.requires_grad
        }
        dtype = next(iter(self.params.values())).dtype
        self.hyper = {name: torch.tensor([float(c[name]) for c in configs], dtype=dtype, device=device) for name in numeric}
        self.states: dict[str, dict[str, Any]] = {name: {} for name in self.params}
        self.loss_sum = torch.zeros(count, dtype=dtype, device=device)
        self.correct = torch.zeros(count, dtype=torch.long, device=device)

    def __len__(self) -> int:
        return len(self.slots)

    def hyper_for(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each hyperparameter shaped ``(C, 1, ..., 1)`` to broadcast against the stacked ``param``."""
        shape = (len(self), *([1] * (param.dim() - 1)))
        return {name: values.view(shape) for name, values in self.hyper.items()}

    def keep(self, rows: torch.Tensor) -> None:
        """Drop every stacked row not in ``rows`` (a 1-D index on the host)."""
        index = rows.to(self.loss_sum.device)
        self.slots = self.slots[rows]
        self.params = {name: p.detach()[index].requires_grad_(True) for name, p in self.params.items()}
        self.states = {
            name: {k: v[index] if isinstance(v, torch.Tensor) and v.dim() > 0 else v for k, v in state.items()}
            for name, state in self.states.items()
        }
        self.hyper = {name: values[index] for name, values in self.hyper.items()}
        self.loss_sum, self.correct = self.loss_sum[index], self.correct[index]


def _per_config_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm over all ``tensors`` taken together, one value per stacked configuration (leading dimension)."""
    return torch.linalg.vector_norm(torch.stack([t.flatten(1).norm(dim=1) for t in tensors]), dim=0)


def _train_group(
    model: nn.Module,
    data: Dataset,
    update: Callable[..., None],
    configs: list[dict[str, Any]],
    numeric: Sequence[str],
    flags: dict[str, bool],
    histories: list[History],
    *,
    epochs: int,
    loss_fn: LossFn,
    device: torch.device,
    seed: int,
    eval_split: str,
    max_steps: int | None,
    progress: Progress,
) -> None:
    """Train one group (shared batch size and flags) and fill its ``histories`` in place."""
    batch_size = configs[0]["batch_size"]
    template = copy.deepcopy(model).to(device)
    x_train, y_train, x_eval, y_eval = check_model_fits_data(template, data, eval_split, loss_fn)
    stack = _Stack(template, configs, numeric, device)

    def loss_and_outputs(params: Tensors, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = torch.func.functional_call(template, params, (inputs,))
        return loss_fn(outputs, targets), outputs

    batched = torch.func.vmap(loss_and_outputs, in_dims=(0, None, None), randomness="different")
    generator = torch.Generator(device=device).manual_seed(seed)
    check_every = 1 if device.type == "cpu" else GPU_CHECK_EVERY
    step = 0
    pending: list[torch.Tensor] = []
    pending_start = 0

    def flush() -> None:
        """Copy the pending step records to the histories; drop configurations whose loss became non-finite."""
        nonlocal pending, pending_start
        if not pending:
            return
        values = torch.stack(pending, dim=1).cpu()
        finite = torch.isfinite(values[:, :, 0])
        for row, slot in enumerate(stack.slots.tolist()):
            history, columns = histories[slot], values[row]
            bad = (~finite[row]).nonzero()
            if len(bad):
                columns = columns[: int(bad[0]) + 1]
                history.diverge(pending_start + int(bad[0]))
            for column, name in enumerate(STEP_METRICS[:-1]):
                history.steps[name].extend(columns[:, column].tolist())
            history.steps["lr"].extend([configs[slot]["lr"]] * len(columns))
        alive = finite.all(dim=1)
        if not alive.all():
            stack.keep(alive.nonzero().squeeze(1))
        pending, pending_start = [], step

    run_start = time.perf_counter()
    template.train()
    for epoch in range(epochs):
        progress.describe(f"batch size {batch_size}, epoch {epoch + 1}/{epochs}")
        epoch_start = time.perf_counter()
        order = epoch_order(generator, len(y_train), device)
        stack.loss_sum.zero_()
        stack.correct.zero_()
        seen = 0
        for start in range(0, len(y_train), batch_size):
            index = order[start : start + batch_size]
            inputs, targets = x_train[index], y_train[index]
            losses, outputs = batched(stack.params, inputs, targets)
            params = list(stack.params.values())
            grads = torch.autograd.grad(losses.sum(), params)
            with torch.no_grad():
                grad_norm = _per_config_norm(grads)
                before = [p.clone() for p in params]
                for (name, param), grad in zip(stack.params.items(), grads):
                    update(param, grad, stack.states[name], **stack.hyper_for(param), **flags)
                update_norm = _per_config_norm([p - b for p, b in zip(params, before)])
                recorded_loss = losses.detach().float().to(grad_norm.dtype)
                pending.append(torch.stack([recorded_loss, grad_norm, update_norm, _per_config_norm(params)], dim=1))
                stack.loss_sum += losses.detach() * len(index)
                stack.correct += (outputs.argmax(dim=-1) == targets).sum(dim=1)
            seen += len(index)
            step += 1
            progress.advance(lambda: {"training": f"{len(stack)}/{len(configs)}", "median loss": f"{losses.detach().median().item():.4f}"})
            if step % check_every == 0:
                flush()
                if not len(stack):
                    break
            if max_steps is not None and step >= max_steps:
                break
        flush()
        if not len(stack):
            break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_time = time.perf_counter() - epoch_start
        test_loss, test_acc = _evaluate_stack(template, stack, x_eval, y_eval, loss_fn)
        train_loss, train_acc = (stack.loss_sum / seen).tolist(), (stack.correct.double() / seen).tolist()
        for row, slot in enumerate(stack.slots.tolist()):
            values = (train_loss[row], train_acc[row], test_loss[row], test_acc[row], train_time)
            for name, value in zip(EPOCH_METRICS, values):
                histories[slot].epochs[name].append(value)
        if max_steps is not None and step >= max_steps:
            break

    total = time.perf_counter() - run_start
    for history in histories:
        history.total_time_s = total
        history.conclude()


@torch.no_grad()
def _evaluate_stack(
    template: nn.Module, stack: _Stack, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
) -> tuple[list[float], list[float]]:
    """Mean loss and accuracy on ``(x, y)`` of every stacked configuration, in eval mode (as ``evaluate``)."""

    def loss_and_correct(params: Tensors, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = torch.func.functional_call(template, params, (inputs,))
        return loss_fn(outputs, targets), (outputs.argmax(dim=1) == targets).sum()

    batched = torch.func.vmap(loss_and_correct, in_dims=(0, None, None))
    rows = max(64, min(EVAL_ROWS, EVAL_ROWS_PER_PASS // len(stack)))
    total_loss = torch.zeros(len(stack), dtype=stack.loss_sum.dtype, device=x.device)
    correct = torch.zeros(len(stack), dtype=torch.long, device=x.device)
    params = {name: p.detach() for name, p in stack.params.items()}
    with evaluation_mode(template):
        for start in range(0, len(y), rows):
            target = y[start : start + rows]
            losses, hits = batched(params, x[start : start + rows], target)
            total_loss += losses * len(target)
            correct += hits
    return (total_loss / len(y)).tolist(), (correct.double() / len(y)).tolist()


def sweep(
    model: nn.Module,
    data: Dataset,
    optimizer: str,
    configs: Sequence[Config],
    *,
    epochs: int = 1,
    batch_size: int = 128,
    loss_fn: LossFn = F.cross_entropy,
    device: torch.device | str | None = None,
    seed: int = 0,
    eval_split: str = "test",
    max_steps: int | None = None,
    progress: bool | None = None,
) -> list[History]:
    """Train ``model`` once per configuration in ``configs`` and return one :class:`History` per configuration.

    ``optimizer`` names an optimizer of :mod:`dldna.optim` by its short name (see :func:`sweepable_optimizers`);
    each configuration maps its update function's hyperparameters (``lr``, ``momentum``, ``beta1``, ...) and
    optionally ``batch_size`` to values; ``lr`` is required, and omitted ones take the optimizer's defaults
    (``batch_size`` the argument).
    Every configuration starts from ``model``'s current weights, which are copied, never changed; with the
    same ``seed`` the result for each configuration equals ``fit(model, Optimizer(...), data, seed=seed)``.
    The model must not update buffers while training (no batch norm); dropout masks differ per configuration.
    A configuration whose loss stops being finite ends ``"diverged"`` with ``diverged_at``; the others go on.
    Statuses follow the rules of :mod:`dldna.history`, as for ``fit``.
    ``time_s`` and ``total_time_s`` are those of the whole batched pass of the configuration's group.
    ``progress`` shows a bar over all groups' steps, as ``fit`` does.
    """
    choices = sweepable_optimizers()
    if optimizer not in choices:
        raise ValueError(f"optimizer must be one of {sorted(choices)}, got {optimizer!r}")
    if not configs:
        raise ValueError("configs must hold at least one configuration")
    check_model_and_data(model, data)
    check_run_arguments(epochs, batch_size, max_steps=max_steps)
    check_count("seed", seed, minimum=0)
    cls = choices[optimizer]
    numeric, flags = _hyperparameters(cls)
    full = [_complete(config, numeric, flags, batch_size, optimizer) for config in configs]

    target = resolve_device(device) if device is not None else data.device
    data = data.to(target)
    train_samples = len(data.y_train)
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    histories = [
        History(
            config={
                "optimizer": cls.__name__,
                "hyperparameters": {name: config[name] for name in (*numeric, *flags)},
                "model": type(model).__name__,
                "parameters": parameters,
                "batch_size": config["batch_size"],
                "epochs": epochs,
                "seed": seed,
                "train_samples": train_samples,
                "classes": data.num_classes,
                "loss": loss_name(loss_fn),
                "amp": False,
                "compile": False,
            },
            device=str(target),
            steps_per_epoch=-(-train_samples // config["batch_size"]),
        )
        for config in full
    ]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for position, config in enumerate(full):
        groups.setdefault((config["batch_size"], *(config[name] for name in flags)), []).append(position)
    group_steps = [epochs * histories[members[0]].steps_per_epoch for members in groups.values()]
    bar = Progress(progress, sum(steps if max_steps is None else min(steps, max_steps) for steps in group_steps))
    try:
        for members in groups.values():
            group_configs = [full[i] for i in members]
            _train_group(
                model, data, cls.update, group_configs, list(numeric), {name: group_configs[0][name] for name in flags},
                [histories[i] for i in members], epochs=epochs, loss_fn=loss_fn, device=target, seed=seed,
                eval_split=eval_split, max_steps=max_steps, progress=bar,
            )
    finally:
        bar.close()
    for history in histories:
        history.config["sweep_size"] = len(configs)
    return histories
