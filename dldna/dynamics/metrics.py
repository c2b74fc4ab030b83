"""Callbacks for :func:`dldna.train.fit` that measure how a run unfolds, each switched on only where needed.

Every callback measures once every ``every`` optimizer steps (step 0 included) and writes one record per
measurement to ``history.extras`` through ``state.record``. A record is a dict holding the 0-based ``step`` it
describes and the measured numbers; :func:`series` turns a list of them into arrays for plotting.

- :class:`LayerStats`: per-layer gradient norm, weight norm and update-to-weight ratio ``||dW|| / ||W||``.
- :class:`EffectiveLR`: the per-coordinate step size ``lr / (sqrt(v_hat) + eps)`` of an Adam-family optimizer.
- :class:`LossImprovement`: how much the training and evaluation losses fell in each epoch.
- :class:`StopAtTarget`: evaluates every ``every`` steps and stops the run when a target accuracy is reached.
- :class:`Sharpness`: the top eigenvalue of the loss Hessian (power iteration, :func:`top_hessian_eigenvalue`).

The gradient noise scale lives in :mod:`dldna.dynamics.noise` and gradient clipping in
:mod:`dldna.dynamics.clipping`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dldna.callbacks import Callback, TrainState
from dldna.data import Dataset
from dldna.history import History
from dldna.landscape.hessian import top_eigenvalues
from dldna.train import evaluate
from dldna.train.run import LossFn


def _check_every(every: int) -> int:
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    return every


def series(history: History, name: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The records ``history.extras[name]`` as ``(steps, {field: values})``, one array entry per record.

    Works for every callback of this package: scalar records (``{"step": 40, "median": ...}``) give one array per
    field, per-layer records (``{"step": 40, "net.1": ...}``) one array per layer.
    """
    records = history.extras.get(name)
    if not records:
        known = ", ".join(sorted(history.extras)) or "none"
        raise KeyError(f"history has no records named {name!r}; it has: {known}")
    steps = np.array([record["step"] for record in records])
    fields = [key for key in records[0] if key != "step"]
    return steps, {key: np.array([record[key] for record in records], dtype=float) for key in fields}


def layer_parameters(model: nn.Module, weights_only: bool = True) -> list[tuple[str, nn.Parameter]]:
    """The trainable parameters whose statistics :class:`LayerStats` reports, with readable names.

    With ``weights_only`` only weight matrices and kernels (two or more dimensions) count, named after their module
    (``"net.1"`` for ``net.1.weight``); otherwise every parameter counts, under its full name.
    """
    chosen = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad or (weights_only and parameter.ndim < 2):
            continue
        chosen.append((name.removesuffix(".weight") if weights_only else name, parameter))
    return chosen


class LayerStats(Callback):
    """Per-layer gradient norm, weight norm and update-to-weight ratio, every ``every`` steps.

    Records under ``"layer_grad_norm"`` (the gradient of the step, before any clipping by ``fit``),
    ``"layer_weight_norm"`` (the weights before the step) and ``"layer_update_ratio"`` (``||W_after - W_before||
    / ||W_before||``, the relative change the step made; about 1e-3 per step is a common rule of thumb for SGD).
    Norms of all layers are computed in one fused call and copied to the host once per measurement.
    """

    def __init__(self, every: int = 10, weights_only: bool = True) -> None:
        self.every = _check_every(every)
        self.weights_only = weights_only
        self._named: list[tuple[str, nn.Parameter]] = []
        self._before: list[torch.Tensor] | None = None
        self._grad_norms: torch.Tensor | None = None
        self._step = 0

    def on_train_begin(self, state: TrainState) -> None:
        self._named = layer_parameters(state.model, self.weights_only)
        if not self._named:
            raise ValueError("LayerStats found no trainable weight matrices in the model")

    def after_backward(self, state: TrainState) -> None:
        if state.step % self.every:
            return
        params = [p for _, p in self._named]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        self._grad_norms = torch.stack(torch._foreach_norm(grads))
        self._before = [p.detach().clone() for p in params]
        self._step = state.step

    def on_step_end(self, state: TrainState) -> None:
        if self._before is None or self._grad_norms is None:
            return
        after = [p.detach() for _, p in self._named]
        weight = torch.stack(torch._foreach_norm(self._before))
        update = torch.stack(torch._foreach_norm(torch._foreach_sub(after, self._before)))
        values = torch.stack([self._grad_norms, weight, update / weight]).cpu().tolist()
        names = [name for name, _ in self._named]
        for metric, row in zip(("layer_grad_norm", "layer_weight_norm", "layer_update_ratio"), values):
            state.record(metric, {"step": self._step, **dict(zip(names, row))})
        self._before = self._grad_norms = None


class EffectiveLR(Callback):
    """Quantiles of the per-coordinate step size ``lr / (sqrt(v_hat) + eps)`` of an Adam-family optimizer.

    Adam moves coordinate ``i`` by ``lr * m_hat_i / (sqrt(v_hat_i) + eps)``: the bias-corrected first moment
    ``m_hat`` scaled by its own effective learning rate, ``v_hat = exp_avg_sq / (1 - beta2^t)``. This callback
    reads ``exp_avg_sq`` and ``step`` from the optimizer state (the names ``torch.optim.Adam``/``AdamW`` and
    ``dldna.optim.Adam`` use; ``max_exp_avg_sq`` with ``amsgrad``) and records, under ``"effective_lr"``, the
    10th, 50th and 90th percentiles and the mean over all coordinates, for the learning rate of the step just
    taken (read before a scheduler changes it).
    """

    QUANTILES = (0.1, 0.5, 0.9)

    def __init__(self, every: int = 10) -> None:
        self.every = _check_every(every)
        self._lrs: list[float] | None = None

    def after_backward(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._lrs = [group["lr"] for group in state.optimizer.param_groups]

    def on_step_end(self, state: TrainState) -> None:
        if self._lrs is None:
            return
        values = effective_lr(state.optimizer, self._lrs)
        stats = torch.quantile(values, torch.tensor(self.QUANTILES, dtype=values.dtype, device=values.device))
        p10, median, p90, mean = torch.cat([stats, values.mean()[None]]).tolist()
        state.record("effective_lr", {"step": state.step - 1, "p10": p10, "median": median, "p90": p90, "mean": mean})
        self._lrs = None


def effective_lr(optimizer: torch.optim.Optimizer, lrs: Sequence[float] | None = None) -> torch.Tensor:
    """Every coordinate's ``lr / (sqrt(v_hat) + eps)`` for an Adam-family optimizer, as one flat float32 tensor.

    ``lrs`` gives each parameter group's learning rate (default: the groups' current ``lr``). Parameters that
    have no state yet (never stepped) are skipped.
    """
    lrs = [group["lr"] for group in optimizer.param_groups] if lrs is None else lrs
    pieces = []
    for group, lr in zip(optimizer.param_groups, lrs):
        if "betas" not in group:
            continue
        beta2, eps = group["betas"][1], group.get("eps", 1e-8)
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            second = state.get("max_exp_avg_sq") if group.get("amsgrad") else state.get("exp_avg_sq")
            if second is None:
                continue
            step = float(state["step"])
            v_hat = second.float() / (1 - beta2**step)
            pieces.append((lr / (v_hat.sqrt() + eps)).flatten())
    if not pieces:
        raise ValueError(
            f"{type(optimizer).__name__} has no Adam-style state (exp_avg_sq and step): effective_lr needs an "
            "Adam-family optimizer that has taken at least one step"
        )
    return torch.cat(pieces)


class LossImprovement(Callback):
    """How much the training and evaluation losses fell in each epoch, absolute and relative.

    Before training, measures the initial loss on (up to ``max_samples`` of) the training split and on ``split``;
    after each epoch records under ``"loss_improvement"``: ``train`` (previous minus current training loss; the
    current one is ``fit``'s running average over the epoch), ``eval`` (the same for ``split``, which must be
    the split ``fit`` evaluates on) and ``eval_relative`` (``eval`` divided by the previous evaluation loss).
    A run that has stopped learning shows improvements near zero; negative ones mean the loss went up.
    """

    def __init__(self, data: Dataset, split: str = "test", loss_fn: LossFn = F.cross_entropy, max_samples: int = 10_000) -> None:
        self.data, self.split, self.loss_fn, self.max_samples = data, split, loss_fn, max_samples
        self._previous: tuple[float, float] = (float("nan"), float("nan"))

    def on_train_begin(self, state: TrainState) -> None:
        device = next(state.model.parameters()).device
        x_train, y_train = (t[: self.max_samples].to(device) for t in self.data.split("train"))
        x_eval, y_eval = (t.to(device) for t in self.data.split(self.split))
        self._previous = (
            evaluate(state.model, x_train, y_train, self.loss_fn)[0],
            evaluate(state.model, x_eval, y_eval, self.loss_fn)[0],
        )

    def on_epoch_end(self, state: TrainState) -> None:
        train, test = state.history.epochs["train_loss"][-1], state.history.epochs["test_loss"][-1]
        before_train, before_test = self._previous
        state.record(
            "loss_improvement",
            {
                "step": state.step - 1,
                "epoch": state.epoch,
                "train": before_train - train,
                "eval": before_test - test,
                "eval_relative": (before_test - test) / before_test,
            },
        )
        self._previous = (train, test)


class StopAtTarget(Callback):
    """Evaluates accuracy on ``(x, y)`` every ``every`` steps and stops the run once it reaches ``target``.

    Records ``{"step", "loss", "acc"}`` under ``"eval"`` at each evaluation, and sets :attr:`steps_to_target`
    to the number of optimizer steps taken when the target was first reached (``None`` if never). This is how the
    batch-size experiment measures steps to a target without evaluating after every step.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, target: float, every: int = 10, loss_fn: LossFn = F.cross_entropy) -> None:
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target must be an accuracy in (0, 1], got {target}")
        self.x, self.y, self.target, self.every, self.loss_fn = x, y, target, _check_every(every), loss_fn
        self.steps_to_target: int | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.steps_to_target = None

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every:
            return
        loss, acc = evaluate(state.model, self.x, self.y, self.loss_fn)
        state.record("eval", {"step": state.step - 1, "loss": loss, "acc": acc})
        if acc >= self.target:
            self.steps_to_target = state.step
            state.stop = True

    def on_train_end(self, state: TrainState) -> None:
        state.history.extras["steps_to_target"] = [self.steps_to_target]


class Sharpness(Callback):
    """The sharpness (top eigenvalue of the loss Hessian) on ``(x, y)``, every ``every`` steps, under ``"sharpness"``.

    Gradient descent on a quadratic with curvature ``lambda`` is stable only while ``lr < 2 / lambda``; this is
    the number to compare with ``2 / lr`` (the "edge of stability" of Cohen et al., 2021). Each record holds the
    0-based ``step`` and ``top``, measured by :func:`top_hessian_eigenvalue` on the weights after that step;
    ``iterations`` bounds its cost.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, every: int = 10, loss_fn: LossFn = F.cross_entropy, iterations: int = 20) -> None:
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.x, self.y, self.every, self.loss_fn, self.iterations = x, y, _check_every(every), loss_fn, iterations

    def on_step_end(self, state: TrainState) -> None:
        if (state.step - 1) % self.every:
            return
        top = top_hessian_eigenvalue(state.model, self.x, self.y, self.loss_fn, self.iterations)
        state.record("sharpness", {"step": state.step - 1, "top": top})


def top_hessian_eigenvalue(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
    iterations: int = 20,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> float:
    """The eigenvalue of largest magnitude of the Hessian of ``loss_fn(model(x), y)`` in the model's parameters.

    Lanczos on Hessian-vector products (:func:`dldna.landscape.hessian.top_eigenvalues`; the Hessian is never
    formed), from a seeded random start, for at most ``iterations`` products or until the eigenvalue's estimated
    error falls below ``tolerance * |λ|``. The Hessian is taken in eval mode (batch-norm layers use
    their running statistics). Near a minimum, and along a training run, this is the largest positive
    eigenvalue. The model's ``.grad``, buffers and mode are left as they were.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    result = top_eigenvalues(
        model, x, y, loss_fn, k=1, method="lanczos", tol=tolerance, max_iter=iterations, seed=seed, which="magnitude"
    )
    return float(result.eigenvalues[0])
