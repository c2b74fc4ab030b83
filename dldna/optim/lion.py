"""Lion (Chen et al., 2023), found by program search: the step is the *sign* of an interpolation between the
momentum and the gradient, so every coordinate moves by exactly ``lr`` (plus decoupled decay)::

    c ← β₁ m + (1 - β₁) g
    w ← w - lr (sign(c) + λ w)
    m ← β₂ m + (1 - β₂) g

Only one buffer is kept (Adam keeps two); because the step's size ignores the gradient's scale, Lion's
``lr`` is typically 3-10x smaller than AdamW's and its ``λ`` as much larger.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, init_state, with_weight_decay
from dldna.optim._checks import check_betas, check_lr, check_non_negative


def lion_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.9,
    beta2: float | torch.Tensor = 0.99,
    weight_decay: float | torch.Tensor = 0.0,
) -> None:
    """One Lion step on ``param`` in place; hyperparameters are floats or tensors broadcasting against it."""
    init_state(state, param, "exp_avg")
    m = state["exp_avg"]
    direction = torch.sign(beta1 * m + (1 - beta1) * grad)
    param.sub_(lr * with_weight_decay(direction, param, weight_decay))
    m.mul_(beta2).add_((1 - beta2) * grad)


class Lion(PerParameterOptimizer):
    """Lion with the defaults of the paper's reference code (``lr=1e-4``, ``betas=(0.9, 0.99)``)."""

    update = staticmethod(lion_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        check_lr(lr)
        check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "weight_decay")
