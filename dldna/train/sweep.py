"""Train many hyperparameter configurations of one model in a single batched pass.

Every configuration starts from the same initial weights and sees the same batches in the same order (one
shared permutation per epoch, drawn exactly as :func:`~dldna.train.fit` draws it), so configuration ``c``
ends with the numbers that ``fit`` gives for it alone. The weights of all configurations are stacked along a
new leading dimension ``C``; one forward and backward pass, vectorised with :func:`torch.func.vmap` over
:func:`torch.func.functional_call`, computes every configuration's loss and gradient; the optimizer step is
the functional update of :mod:`dldna.optim` (``sgd_update``, ``adam_update``, ...) called once per stacked
tensor, with each hyperparameter a tensor of shape ``(C, 1, ..., 1)`` that broadcasts against it.

A configuration whose loss stops being finite (in float32, the precision in which ``fit`` records it) is marked ``"diverged"`` at that step and dropped from the
stack, and the others go on. Configurations with different batch sizes (or different boolean options such as
``nesterov``) cannot share a pass; they are grouped and each group runs on its own.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import time
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.data import Dataset
from dldna.optim._checks import check_lr, check_non_negative, check_unit_interval
from dldna.train.history import EPOCH_METRICS, STEP_METRICS, History
from dldna.train.loop import GPU_CHECK_EVERY, LossFn

Config = Mapping[str, float | int | bool]
Tensors = dict[str, torch.Tensor]

EVAL_ROWS = 2048
EVAL_ROWS_PER_PASS = 1 << 18


# Updates that need more than the gradient: Sophia's Hessian estimate is refreshed by its optimizer class.
NOT_GRADIENT_ONLY = frozenset({"sophia"})


def functional_updates() -> dict[str, Callable[..., None]]:
    """The functional optimizer steps of :mod:`dldna.optim` that a sweep can run, by short name
    (``"sgd"``, ``"adam"``, ...): every ``*_update`` whose step needs nothing but the gradient."""
    import dldna.optim as optim

    return {
        name.removesuffix("_update"): getattr(optim, name)
        for name in optim.__all__
        if name.endswith("_update") and name.removesuffix("_update") not in NOT_GRADIENT_ONLY
    }


def _check_per_configuration(update: Callable[..., None], optimizer: str, config: dict[str, Any], numeric: Sequence[str], flags: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``update`` on a stacked tensor does what it does on each slice alone (an
    update that normalises over the whole tensor would mix configurations)."""
    generator = torch.Generator().manual_seed(0)
    params = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    grads = torch.randn(3, 2, 3, 4, generator=generator, dtype=torch.float64)
    hyper = {name: torch.full((2, 1, 1), float(config[name]), dtype=torch.float64) for name in numeric}
    options = {name: config[name] for name in flags}
    stacked, state = params.clone(), {}
    slices, slice_states = [params[i].clone() for i in range(2)], [{}, {}]
    for grad in grads:
        update(stacked, grad, state, **hyper, **options)
        for i in range(2):
            update(slices[i], grad[i], slice_states[i], **{name: float(config[name]) for name in numeric}, **options)
    if not torch.allclose(stacked, torch.stack(slices), rtol=1e-10, atol=1e-12, equal_nan=True):
        raise ValueError(f"optimizer {optimizer!r}: its update mixes the stacked configurations, so it cannot be swept")


def grid(**axes: Sequence[float | int | bool]) -> list[dict[str, float | int | bool]]:
    """Every combination of the given values, e.g. ``grid(lr=[0.01, 0.1], momentum=[0.0, 0.9])`` (4 configs)."""
    for name, values in axes.items():
        if len(values) == 0:
            raise ValueError(f"{name} must list at least one value")
    names = list(axes)
    return [dict(zip(names, combination)) for combination in itertools.product(*axes.values())]


def _update_signature(update: Callable[..., None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(numeric, flags)``: the update's keyword hyperparameters with their defaults (``inspect.Parameter.empty``
    when required), split into per-configuration numbers and shared boolean options."""
    numeric, flags = {}, {}
    for name, parameter in inspect.signature(update).parameters.items():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        (flags if isinstance(parameter.default, bool) else numeric)[name] = parameter.default
    return numeric, flags


def _check_value(name: str, value: float) -> None:
    if name == "lr":
        check_lr(value)
    elif name.startswith("beta"):
        check_unit_interval(name, value)
    else:
        check_non_negative(name, value)


def _complete(config: Config, numeric: dict[str, Any], flags: dict[str, Any], batch_size: int, optimizer: str) -> dict[str, Any]:
    """``config`` with every default filled in and checked; raises ``ValueError`` naming a bad key or value."""
    unknown = set(config) - set(numeric) - set(flags) - {"batch_size"}
    if unknown:
        raise ValueError(f"configs: unknown hyperparameter(s) {sorted(unknown)} for {optimizer!r}; known: {sorted(numeric) + sorted(flags) + ['batch_size']}")
    full = {**numeric, **flags, "batch_size": batch_size, **config}
    for name in numeric:
        if full[name] is inspect.Parameter.empty:
            raise ValueError(f"configs: every configuration needs a value for {name!r}")
        if isinstance(full[name], bool) or not isinstance(full[name], (int, float)):
            raise ValueError(f"configs: {name} must be a number, got {full[name]!r}")
        _check_value(name, float(full[name]))
    for name in flags:
        if not isinstance(full[name], bool):
            raise ValueError(f"configs: {name} must be True or False, got {full[name]!r}")
    if not isinstance(full["batch_size"], int) or full["batch_size"] < 1:
        raise ValueError(f"configs: batch_size must be an integer >= 1, got {full['batch_size']!r}")
    return full


def _class_name(optimizer: str) -> str:
    """``"adam"`` -> ``"Adam"``: the :mod:`dldna.optim` class with that name, for the History's config."""
    import dldna.optim as optim

    return next((name for name in optim.__all__ if name.lower() == optimizer), optimizer)


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
) -> None:
    """Train one group (shared batch size and flags) and fill its ``histories`` in place."""
    batch_size = configs[0]["batch_size"]
    template = copy.deepcopy(model).to(device)
    x_train, y_train = data.split("train")
    x_eval, y_eval = data.split(eval_split)
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
                history.status, history.diverged_at = "diverged", pending_start + int(bad[0])
            for column, name in enumerate(STEP_METRICS[:-1]):
                history.steps[name].extend(columns[:, column].tolist())
            history.steps["lr"].extend([configs[slot]["lr"]] * len(columns))
        alive = finite.all(dim=1)
        if not alive.all():
            stack.keep(alive.nonzero().squeeze(1))
        pending, pending_start = [], step

    run_start = time.perf_counter()
    template.train()
    for _epoch in range(epochs):
        epoch_start = time.perf_counter()
        order = torch.randperm(len(y_train), generator=generator, device=device)
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
        if history.status == "running":
            history.status = "completed"


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
    template.eval()
    for start in range(0, len(y), rows):
        target = y[start : start + rows]
        losses, hits = batched(params, x[start : start + rows], target)
        total_loss += losses * len(target)
        correct += hits
    template.train()
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
) -> list[History]:
    """Train ``model`` once per configuration in ``configs`` and return one :class:`History` per configuration.

    ``optimizer`` names a functional update of :mod:`dldna.optim` (see :func:`functional_updates`); each
    configuration maps that update's hyperparameters (``lr``, ``momentum``, ``beta1``, ...) and optionally
    ``batch_size`` to values, and omitted ones take the update's defaults (``batch_size`` the argument).
    Every configuration starts from ``model``'s current weights, which are copied, never changed; with the
    same ``seed`` the result for each configuration equals ``fit(model, Optimizer(...), data, seed=seed)``.
    The model must not update buffers while training (no batch norm); dropout masks differ per configuration.
    A configuration whose loss stops being finite ends ``"diverged"`` with ``diverged_at``; the others go on.
    ``time_s`` and ``total_time_s`` are those of the whole batched pass of the configuration's group.
    """
    updates = functional_updates()
    if optimizer not in updates:
        raise ValueError(f"optimizer must be one of {sorted(updates)}, got {optimizer!r}")
    if not configs:
        raise ValueError("configs must hold at least one configuration")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    update = updates[optimizer]
    numeric, flags = _update_signature(update)
    full = [_complete(config, numeric, flags, batch_size, optimizer) for config in configs]
    _check_per_configuration(update, optimizer, full[0], list(numeric), list(flags))

    target = torch.device(device) if device is not None else data.device
    data = data.to(target)
    train_samples = len(data.y_train)
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    histories = [
        History(
            config={
                "optimizer": _class_name(optimizer),
                "hyperparameters": {name: config[name] for name in (*numeric, *flags)},
                "model": type(model).__name__,
                "parameters": parameters,
                "batch_size": config["batch_size"],
                "epochs": epochs,
                "seed": seed,
                "train_samples": train_samples,
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
    for members in groups.values():
        group_configs = [full[i] for i in members]
        _train_group(
            model, data, update, group_configs, list(numeric), {name: group_configs[0][name] for name in flags},
            [histories[i] for i in members], epochs=epochs, loss_fn=loss_fn, device=target, seed=seed,
            eval_split=eval_split, max_steps=max_steps,
        )
    for history in histories:
        history.config["sweep_size"] = len(configs)
    return histories
