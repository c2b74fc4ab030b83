"""AdamW (Loshchilov & Hutter, 2019): weight decay taken out of the gradient and applied to the weights
directly, so it is not rescaled by Adam's per-coordinate step size. At each step::

    w ← w (1 - lr λ)          decoupled decay
    w ← Adam step on w with g (no L2 term)

Plain Adam with L2 decay adds ``λ w`` to ``g``, and a coordinate with a large ``v̂`` then barely decays.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, adam_arguments, decay_weights_
from dldna.optim._checks import check_adam_family
from dldna.optim.adam import adam_update


def adamw_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float | torch.Tensor,
    beta1: float | torch.Tensor = 0.9,
    beta2: float | torch.Tensor = 0.999,
    eps: float | torch.Tensor = 1e-8,
    weight_decay: float | torch.Tensor = 1e-2,
    amsgrad: bool = False,
) -> None:
    """One AdamW step on ``param`` in place: decoupled decay, then :func:`adam_update` without L2."""
    decay_weights_(param, lr, weight_decay)
    adam_update(param, grad, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad)


class AdamW(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.AdamW`` (same arguments and defaults, same numbers)."""

    update = staticmethod(adamw_update)
    sweepable = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        check_adam_family(lr, betas, eps, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        return adam_arguments(group, "eps", "weight_decay", "amsgrad")

