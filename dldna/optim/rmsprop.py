"""RMSprop (Tieleman & Hinton, 2012): divide the gradient by a running root-mean-square of recent gradients.
With decay ``α``, as in ``torch.optim.RMSprop``::

    g ← g + λ w
    s ← α s + (1 - α) g²
    ḡ ← α ḡ + (1 - α) g                            (centered only)
    r ← √(s - ḡ²) + ε   (centered)   or   r ← √s + ε
    b ← μ b + g / r ;   w ← w - lr b              (momentum μ > 0)
    w ← w - lr g / r                              (μ = 0)

Centering divides by an estimate of the gradient's standard deviation instead of its root mean square.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, count_step, with_weight_decay
from dldna.optim._checks import check_lr, check_non_negative


def rmsprop_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    alpha: float | torch.Tensor = 0.99,
    eps: float | torch.Tensor = 1e-8,
    weight_decay: float | torch.Tensor = 0.0,
    momentum: float | torch.Tensor = 0.0,
    centered: bool = False,
) -> None:
    """One RMSprop step on ``param`` in place; hyperparameters are floats or tensors broadcasting against it.

    The momentum buffer is allocated unless ``momentum`` is the plain number 0 (as torch does), so the state
    holds only what the step uses.
    """
    with_momentum = isinstance(momentum, torch.Tensor) or momentum != 0
    count_step(state, param, "square_avg", *(["momentum_buffer"] if with_momentum else []), *(["grad_avg"] if centered else []))
    grad = with_weight_decay(grad, param, weight_decay)
    square_avg = state["square_avg"].mul_(alpha).add_((1 - alpha) * grad * grad)
    if centered:
        grad_avg = state["grad_avg"].mul_(alpha).add_((1 - alpha) * grad)
        rms = (square_avg - grad_avg * grad_avg).sqrt() + eps
    else:
        rms = square_avg.sqrt() + eps
    if "momentum_buffer" in state:
        buffer = state["momentum_buffer"].mul_(momentum).add_(grad / rms)
        param.sub_(lr * buffer)
    else:
        param.sub_(lr * grad / rms)


class RMSprop(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.RMSprop`` (same arguments and defaults, same numbers)."""

    update = staticmethod(rmsprop_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        check_lr(lr)
        check_non_negative("alpha", alpha)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("momentum", momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            lr=group["lr"], alpha=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
            momentum=group["momentum"], centered=group["centered"],
        )

