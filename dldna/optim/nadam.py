"""NAdam (Dozat, 2016): Adam with Nesterov momentum, the first moment looked at one step ahead. With the
momentum schedule of ``torch.optim.NAdam`` (``ψ`` = momentum_decay)::

    g ← g + λ w                                    (or w ← w (1 - lr λ) when decoupled)
    μ_t ← β₁ (1 - ½ · 0.96^(t ψ))                   μ_{t+1} likewise
    Π_t ← μ_1 μ_2 ... μ_t
    m ← β₁ m + (1 - β₁) g
    v ← β₂ v + (1 - β₂) g²
    d ← √(v / (1 - β₂ᵗ)) + ε
    w ← w - lr (1 - μ_t) / (1 - Π_t) · g / d - lr μ_{t+1} / (1 - Π_t μ_{t+1}) · m / d

The first term is the current gradient's share, the second the momentum's share one step ahead.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, count_step, weight_decay_gradient
from dldna.optim._checks import check_adam_family, check_non_negative


def nadam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.9,
    beta2: float | torch.Tensor = 0.999,
    eps: float | torch.Tensor = 1e-8,
    weight_decay: float | torch.Tensor = 0.0,
    momentum_decay: float | torch.Tensor = 4e-3,
    decoupled_weight_decay: bool = False,
) -> None:
    """One NAdam step on ``param`` in place; hyperparameters are floats or tensors broadcasting against it."""
    t = count_step(state, param, "exp_avg", "exp_avg_sq", mu_product=1.0)
    grad = weight_decay_gradient(param, grad, lr, weight_decay, decoupled_weight_decay)
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = state["mu_product"] = state["mu_product"] * mu
    m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * grad)
    v = state["exp_avg_sq"].mul_(beta2).add_((1 - beta2) * grad * grad)
    denom = (v / (1 - beta2**t)).sqrt() + eps
    grad_share = lr * (1 - mu) / (1 - mu_product)
    momentum_share = lr * mu_next / (1 - mu_product * mu_next)
    param.sub_(grad_share * grad / denom + momentum_share * m / denom)


class NAdam(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.NAdam`` (same arguments and defaults, same numbers)."""

    update = staticmethod(nadam_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_adam_family(lr, betas, eps, weight_decay)
        check_non_negative("momentum_decay", momentum_decay)
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay")

