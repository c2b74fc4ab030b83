"""LARS (You, Gitman & Ginsburg, 2017): SGD with momentum whose learning rate is rescaled per layer by a
trust ratio, so every layer moves by about the same fraction of its weight norm, whatever its gradient's size::

    r ← η ‖w‖ / (‖g‖ + λ ‖w‖)          per tensor (r ← 1 if ‖w‖ or ‖g‖ is 0, or for excluded 1-D tensors)
    b ← μ b + lr · r · (g + λ w)
    w ← w - b

``η`` is the trust coefficient. With ``exclude_1d=True`` biases and normalisation scales (1-D tensors) keep
``r = 1``: their norms say little about a sensible step size.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, init_state, with_weight_decay
from dldna.optim._checks import check_lr, check_non_negative, check_positive


def lars_trust_ratio(
    param: torch.Tensor, grad: torch.Tensor, *, weight_decay: float, trust_coefficient: float
) -> torch.Tensor:
    """``η ‖w‖ / (‖g‖ + λ ‖w‖)`` for one tensor, or 1 where either norm is zero."""
    weight_norm, grad_norm = param.norm(), grad.norm()
    ratio = trust_coefficient * weight_norm / (grad_norm + weight_decay * weight_norm)
    return torch.where((weight_norm > 0) & (grad_norm > 0), ratio, torch.ones_like(ratio))


def lars_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    exclude_1d: bool = True,
) -> None:
    """One LARS step on ``param`` in place; the trust ratio is a norm over the whole tensor."""
    if exclude_1d and param.dim() <= 1:
        ratio = torch.ones((), dtype=param.dtype, device=param.device)
    else:
        ratio = lars_trust_ratio(param, grad, weight_decay=weight_decay, trust_coefficient=trust_coefficient)
    init_state(state, param, "momentum_buffer")
    buffer = state["momentum_buffer"].mul_(momentum)
    buffer.add_(lr * ratio * with_weight_decay(grad, param, weight_decay))
    param.sub_(buffer)


class LARS(PerParameterOptimizer):
    """Layer-wise adaptive rate scaling on top of heavy-ball momentum (torch has no LARS)."""

    update = staticmethod(lars_update)

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 1e-3,
        exclude_1d: bool = True,
    ) -> None:
        check_lr(lr)
        check_non_negative("momentum", momentum)
        check_non_negative("weight_decay", weight_decay)
        check_positive("trust_coefficient", trust_coefficient)
        defaults = dict(
            lr=lr, momentum=momentum, weight_decay=weight_decay,
            trust_coefficient=trust_coefficient, exclude_1d=exclude_1d,
        )
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"],
            trust_coefficient=group["trust_coefficient"], exclude_1d=group["exclude_1d"],
        )
