"""RAdam (Liu et al., 2020): Adam whose adaptive step is switched on only once the variance of ``v̂`` is
tractable, and then scaled by a rectification factor. As in ``torch.optim.RAdam``::

    g ← g + λ w                                    (or w ← w (1 - lr λ) when decoupled)
    m ← β₁ m + (1 - β₁) g ;   m̂ ← m / (1 - β₁ᵗ)
    v ← β₂ v + (1 - β₂) g²
    ρ_∞ ← 2 / (1 - β₂) - 1
    ρ_t ← ρ_∞ - 2 t β₂ᵗ / (1 - β₂ᵗ)
    if ρ_t > 5:   r_t ← √((ρ_t - 4)(ρ_t - 2) ρ_∞ / ((ρ_∞ - 4)(ρ_∞ - 2) ρ_t))
                  w ← w - lr m̂ · r_t √(1 - β₂ᵗ) / (√v + ε)
    else:         w ← w - lr m̂                     (SGD with momentum during warm-up)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, count_step, weight_decay_gradient
from dldna.optim._checks import check_adam_family

RECTIFICATION_THRESHOLD = 5.0


def radam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.9,
    beta2: float | torch.Tensor = 0.999,
    eps: float | torch.Tensor = 1e-8,
    weight_decay: float | torch.Tensor = 0.0,
    decoupled_weight_decay: bool = False,
) -> None:
    """One RAdam step on ``param`` in place; hyperparameters are floats or tensors broadcasting against it.

    The ``ρ_t > 5`` switch is a ``torch.where``, so a tensor ``beta2`` may switch on at a different step for
    each stacked configuration.
    """
    t = count_step(state, param, "exp_avg", "exp_avg_sq")
    grad = weight_decay_gradient(param, grad, lr, weight_decay, decoupled_weight_decay)
    m = state["exp_avg"].mul_(beta1).add_((1 - beta1) * grad)
    v = state["exp_avg_sq"].mul_(beta2).add_((1 - beta2) * grad * grad)
    m_hat = m / (1 - beta1**t)
    bias_correction2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = torch.as_tensor(rho_inf - 2 * t * beta2**t / bias_correction2, dtype=param.dtype, device=param.device)
    rectification = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).clamp(min=0).sqrt()
    adaptive = rectification * bias_correction2**0.5 / (v.sqrt() + eps)
    param.sub_(lr * m_hat * torch.where(rho_t > RECTIFICATION_THRESHOLD, adaptive, 1.0))


class RAdam(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.RAdam`` (same arguments and defaults, same numbers)."""

    update = staticmethod(radam_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_adam_family(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay
        )
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "eps", "weight_decay", "decoupled_weight_decay")

