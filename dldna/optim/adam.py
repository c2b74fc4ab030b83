"""Adam (Kingma & Ba, 2015): momentum on the gradient, a per-coordinate step size from the squared gradient,
and bias correction of both running averages. At step ``t``, with L2 weight decay ``λ``::

    g ← g + λ w
    m ← β₁ m + (1 - β₁) g
    v ← β₂ v + (1 - β₂) g²
    m̂ ← m / (1 - β₁ᵗ)        v̂ ← v / (1 - β₂ᵗ)      (v̂ uses max(v) over time with AMSGrad)
    w ← w - lr m̂ / (√v̂ + ε)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, count_step, with_weight_decay
from dldna.optim._checks import check_adam_family


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.9,
    beta2: float | torch.Tensor = 0.999,
    eps: float | torch.Tensor = 1e-8,
    weight_decay: float | torch.Tensor = 0.0,
    amsgrad: bool = False,
) -> None:
    """One Adam step on ``param`` in place; hyperparameters are floats or tensors broadcasting against ``param``."""
    t = count_step(state, param, "exp_avg", "exp_avg_sq", *(["max_exp_avg_sq"] if amsgrad else []))
    grad = with_weight_decay(grad, param, weight_decay)
    m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * grad)
    v = state["exp_avg_sq"].mul_(beta2).add_((1 - beta2) * grad * grad)
    if amsgrad:
        v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


class Adam(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.Adam`` (same arguments and defaults, same numbers)."""

    update = staticmethod(adam_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "eps", "weight_decay", "amsgrad")

