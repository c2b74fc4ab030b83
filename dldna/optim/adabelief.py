"""AdaBelief (Zhuang et al., 2020): Adam whose denominator tracks how far the gradient strays from its own
running mean (the "belief"), not its raw size. With the official implementation's placement of ``ε``::

    g ← g + λ w                                    (or w ← w (1 - lr λ) when decoupled, the default)
    m ← β₁ m + (1 - β₁) g
    s ← β₂ s + (1 - β₂) (g - m)² + ε               the belief term (g - m)² replaces Adam's g²
    m̂ ← m / (1 - β₁ᵗ)        ŝ ← s / (1 - β₂ᵗ)
    w ← w - lr m̂ / (√ŝ + ε)

A gradient that agrees with the momentum gives a small ``s`` and a large step; a surprising one, a small
step. :func:`belief_term` is the one line that differs from Adam: replace it by ``g²`` (and set ``ε = 0``)
and the update is Adam's.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, count_step, weight_decay_gradient
from dldna.optim._checks import check_adam_family


def belief_term(grad: torch.Tensor, exp_avg: torch.Tensor) -> torch.Tensor:
    """``(g - m)²``: the squared surprise of the gradient relative to the momentum."""
    residual = grad - exp_avg
    return residual * residual


def adabelief_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.9,
    beta2: float | torch.Tensor = 0.999,
    eps: float | torch.Tensor = 1e-16,
    weight_decay: float | torch.Tensor = 0.0,
    decoupled_weight_decay: bool = True,
) -> None:
    """One AdaBelief step on ``param`` in place; hyperparameters are floats or tensors broadcasting against it."""
    t = count_step(state, param, "exp_avg", "exp_avg_var")
    grad = weight_decay_gradient(param, grad, lr, weight_decay, decoupled_weight_decay)
    m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * grad)
    s = state["exp_avg_var"].mul_(beta2).add_((1 - beta2) * belief_term(grad, m)).add_(eps)
    m_hat = m / (1 - beta1**t)
    s_hat = s / (1 - beta2**t)
    param.sub_(lr * m_hat / (s_hat.sqrt() + eps))


class AdaBelief(PerParameterOptimizer):
    """AdaBelief with the defaults of the authors' ``adabelief-pytorch`` (``eps=1e-16``, decoupled decay),
    without its optional rectification."""

    update = staticmethod(adabelief_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = True,
    ) -> None:
        check_adam_family(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay
        )
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "eps", "weight_decay", "decoupled_weight_decay")

