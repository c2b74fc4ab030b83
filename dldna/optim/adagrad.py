"""Adagrad (Duchi, Hazan & Singer, 2011): each coordinate's step shrinks with the sum of its squared gradients,
so rarely-updated coordinates keep large steps. At step ``t``, as in ``torch.optim.Adagrad``::

    g ← g + λ w
    η_t ← lr / (1 + (t - 1) · lr_decay)
    G ← G + g²                     (G starts at initial_accumulator_value)
    w ← w - η_t g / (√G + ε)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, init_state, with_weight_decay
from dldna.optim._checks import check_lr, check_non_negative


def adagrad_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    lr_decay: float | torch.Tensor = 0.0,
    weight_decay: float | torch.Tensor = 0.0,
    initial_accumulator_value: float | torch.Tensor = 0.0,
    eps: float | torch.Tensor = 1e-10,
) -> None:
    """One Adagrad step on ``param`` in place; hyperparameters are floats or tensors broadcasting against it."""
    if init_state(state, param, "sum", step=0):
        state["sum"].add_(initial_accumulator_value)
    state["step"] += 1
    t = state["step"]
    grad = with_weight_decay(grad, param, weight_decay)
    step_lr = lr / (1 + (t - 1) * lr_decay)
    total = state["sum"].addcmul_(grad, grad)
    param.sub_(step_lr * grad / (total.sqrt() + eps))


class Adagrad(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.Adagrad`` (same arguments and defaults, same numbers)."""

    update = staticmethod(adagrad_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        check_lr(lr)
        check_non_negative("lr_decay", lr_decay)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("initial_accumulator_value", initial_accumulator_value)
        check_non_negative("eps", eps)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps,
        )
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            lr=group["lr"], lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
            initial_accumulator_value=group["initial_accumulator_value"], eps=group["eps"],
        )

