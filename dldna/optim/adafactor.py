"""Adafactor (Shazeer & Stern, 2018): Adam-like scaling with a second moment that costs O(n + m) memory for
an n×m matrix instead of O(nm), a step size relative to the weights' scale and update clipping. Following
``torch.optim.Adafactor`` (no first moment), at step ``t``::

    1 - β̂₂ ← t^c                                    (c = beta2_decay = -0.8, so β̂₂ = 1 - t^-0.8)
    ρ_t ← min(lr, 1/√t)                              relative step size
    α_t ← max(ε₂, RMS(w)) ρ_t                        absolute step size, from w before this step
    w ← w (1 - lr λ)                                 decoupled weight decay
    matrix (last two dims n×m):
        R ← β̂₂ R + (1 - β̂₂) mean_cols(g²)          n×1 row statistics
        C ← β̂₂ C + (1 - β̂₂) mean_rows(g²)          1×m column statistics
        V̂ ← R C / max(mean(R), ε₁)                  rank-one reconstruction of the second moment
    vector:
        V̂ ← β̂₂ V̂ + (1 - β̂₂) g²
    U ← g / √max(V̂, ε₁²)
    U ← U / max(1, RMS(U) / d)                       update clipping
    w ← w - α_t U

Differences from the paper, all torch's: ``ε₁`` bounds ``V̂`` from below instead of being added to ``g²``,
the row/column statistics are means rather than sums (the ratio ``R C / ΣR`` is the same), and the weight
decay term is torch's addition.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from dldna.optim._base import PerParameterOptimizer, decay_weights_, init_state
from dldna.optim._checks import check_lr, check_non_negative


def root_mean_square(tensor: torch.Tensor) -> float:
    """``RMS(x) = ‖x‖₂ / √numel``, the scale Adafactor measures weights and updates by."""
    return tensor.norm(2).item() / tensor.numel() ** 0.5


def adafactor_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    *,
    lr: float,
    beta2_decay: float = -0.8,
    eps1: float | None = None,
    eps2: float = 1e-3,
    d: float = 1.0,
    weight_decay: float = 0.0,
) -> None:
    """One Adafactor step on ``param`` in place (``eps1=None``: the machine epsilon of ``param``'s dtype)."""
    factored = grad.dim() > 1
    first = init_state(state, param, *([] if factored else ["variance"]), step=0)
    if first and factored:  # row and column statistics, n×1 and 1×m
        state["row_var"] = grad.new_zeros(*grad.shape[:-1], 1)
        state["col_var"] = grad.new_zeros(*grad.shape[:-2], 1, grad.shape[-1])
    state["step"] += 1
    t = state["step"]
    eps1 = torch.finfo(param.dtype).eps if eps1 is None else eps1

    one_minus_beta2 = t**beta2_decay
    relative_step = min(lr, t**-0.5)
    step_size = max(eps2, root_mean_square(param)) * relative_step
    decay_weights_(param, lr, weight_decay)
    squared = grad * grad
    if factored:
        row = state["row_var"].lerp_(squared.mean(dim=-1, keepdim=True), one_minus_beta2)
        col = state["col_var"].lerp_(squared.mean(dim=-2, keepdim=True), one_minus_beta2)
        second_moment = row @ col / row.mean(dim=-2, keepdim=True).clamp(min=eps1)
    else:
        second_moment = state["variance"].lerp_(squared, one_minus_beta2)
    direction = grad * second_moment.clamp(min=eps1 * eps1).rsqrt()
    direction = direction / max(1.0, root_mean_square(direction) / d)
    param.sub_(step_size * direction)


class Adafactor(PerParameterOptimizer):
    """Drop-in replacement for ``torch.optim.Adafactor`` (same arguments and defaults, same numbers), without
    torch's implementation switches ``foreach`` and ``maximize``."""

    update = staticmethod(adafactor_update)


    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
    ) -> None:
        check_lr(lr)
        if not beta2_decay <= 0.0:
            raise ValueError(f"Invalid beta2_decay: beta2_decay={beta2_decay!r} (must be <= 0)")
        if len(eps) != 2:
            raise ValueError(f"Invalid eps: eps={tuple(eps)!r} (expected (eps1 or None, eps2))")
        if eps[0] is not None:
            check_non_negative("eps[0]", eps[0])
        check_non_negative("eps[1]", eps[1])
        if not d >= 1.0:
            raise ValueError(f"Invalid d: d={d!r} (the clipping threshold must be >= 1)")
        check_non_negative("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d, weight_decay=weight_decay))

    @staticmethod
    def hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
        eps1, eps2 = group["eps"]
        return dict(
            lr=group["lr"], beta2_decay=group["beta2_decay"], eps1=eps1, eps2=eps2, d=group["d"],
            weight_decay=group["weight_decay"],
        )
