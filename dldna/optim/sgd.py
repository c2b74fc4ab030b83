"""Stochastic gradient descent with momentum, dampening and Nesterov's look-ahead.

With weight decay ``λ``, momentum ``μ`` and dampening ``τ`` the step is, as in ``torch.optim.SGD``::

    g ← g + λ w
    b ← g                          (first step)
    b ← μ b + (1 - τ) g            (later steps)
    d ← g + μ b   (Nesterov)   or   d ← b
    w ← w - lr d

With ``μ = 0`` the buffer is skipped and ``d = g``: plain SGD.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, init_state, with_weight_decay
from dldna.optim._checks import check_lr, check_non_negative


def sgd_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    momentum: float | torch.Tensor = 0.0,
    dampening: float | torch.Tensor = 0.0,
    weight_decay: float | torch.Tensor = 0.0,
    nesterov: bool = False,
) -> None:
    """One SGD step on ``param`` in place. Hyperparameters are floats or tensors that broadcast against
    ``param`` (one value per stacked configuration, for :mod:`dldna.train.sweep`). The momentum buffer is kept
    unless ``momentum`` is the plain number 0 (as torch does)."""
    grad = with_weight_decay(grad, param, weight_decay)
    if not isinstance(momentum, torch.Tensor) and momentum == 0:
        param.sub_(lr * grad)
        return
    if init_state(state, param, "momentum_buffer"):
        buffer = state["momentum_buffer"].copy_(grad)
    else:
        buffer = state["momentum_buffer"].mul_(momentum).add_((1 - dampening) * grad)
    direction = grad + momentum * buffer if nesterov else buffer
    param.sub_(lr * direction)


class SGD(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.SGD`` (same arguments and defaults, same numbers)."""

    update = staticmethod(sgd_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        check_lr(lr)
        check_non_negative("momentum", momentum)
        check_non_negative("dampening", dampening)
        check_non_negative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Invalid nesterov: nesterov=True needs momentum > 0 and dampening = 0")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return dict(
            lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
            weight_decay=group["weight_decay"], nesterov=group["nesterov"],
        )
