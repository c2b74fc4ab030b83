"""LAMB (You et al., 2020): Adam's direction plus decoupled decay, rescaled per tensor so that the step's norm
is ``lr`` times the weight's norm (the trust ratio), which keeps very large batches stable::

    m ← β₁ m + (1 - β₁) g ;   m̂ ← m / (1 - β₁ᵗ)
    v ← β₂ v + (1 - β₂) g² ;  v̂ ← v / (1 - β₂ᵗ)
    u ← m̂ / (√v̂ + ε) + λ w
    r ← ‖w‖ / ‖u‖                   per tensor (r ← 1 if either norm is 0)
    w ← w - lr · r · u
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, count_step, with_weight_decay
from dldna.optim._checks import check_adam_family


def lamb_trust_ratio(param: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """``‖w‖ / ‖u‖`` for one tensor, or 1 where either norm is zero."""
    weight_norm, update_norm = param.norm(), update.norm()
    ratio = weight_norm / update_norm
    return torch.where((weight_norm > 0) & (update_norm > 0), ratio, torch.ones_like(ratio))


def lamb_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
) -> None:
    """One LAMB step on ``param`` in place; the trust ratio is a norm over the whole tensor."""
    t = count_step(state, param, "exp_avg", "exp_avg_sq")
    m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * grad)
    v = state["exp_avg_sq"].mul_(beta2).add_((1 - beta2) * grad * grad)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    update = with_weight_decay(m_hat / (v_hat.sqrt() + eps), param, weight_decay)
    param.sub_(lr * lamb_trust_ratio(param, update) * update)


class LAMB(PerParameterOptimizer):
    """Layer-wise adaptive moments for large batches (torch has no LAMB)."""

    update = staticmethod(lamb_update)

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "eps", "weight_decay")
