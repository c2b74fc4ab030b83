"""The loop every elementwise optimizer shares: for each parameter with a gradient, apply the update rule.

A subclass names its module's update function as :attr:`ElementwiseOptimizer.rule` (the chapter's equations
for one tensor), or overrides :meth:`ElementwiseOptimizer.update`, and gets param groups, closures,
``state_dict``/``load_state_dict`` and learning-rate schedulers from ``torch.optim.Optimizer``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, ClassVar

import torch


def count_step(state: dict[str, Any], param: torch.Tensor, *buffers: str) -> Any:
    """Advance ``state["step"]`` and return it, the ``t`` of the equations; at the first step, create the
    ``buffers`` (moment estimates) as zeros shaped like ``param``."""
    if not state:
        state["step"] = 0
        state.update({name: torch.zeros_like(param) for name in buffers})
    state["step"] += 1
    return state["step"]


def weight_decay_gradient(
    param: torch.Tensor, grad: torch.Tensor, lr: Any, weight_decay: Any, decoupled: bool
) -> torch.Tensor:
    """Apply weight decay ``λ`` and return the gradient the rest of the update uses: decoupled (as in AdamW),
    ``w ← w (1 - lr λ)`` with ``g`` unchanged; coupled (L2 regularisation), ``g + λ w``."""
    if decoupled:
        param.mul_(1 - lr * weight_decay)
        return grad
    return grad + weight_decay * param


@functools.cache
def _keywords(rule: Callable[..., None]) -> tuple[str, ...]:
    """Names of the keyword-only arguments of an update rule: its hyperparameters."""
    return tuple(name for name, p in inspect.signature(rule).parameters.items() if p.kind is p.KEYWORD_ONLY)


class ElementwiseOptimizer(torch.optim.Optimizer):
    """Base class: ``step`` calls :meth:`update` once per parameter that has a gradient."""

    rule: ClassVar[Callable[..., None]]
    """``rule(param, grad, state, **hyperparameters)``: the module's ``*_update`` function (a ``staticmethod``)."""

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Change ``param`` in place from its ``grad``, its per-parameter ``state`` and its group's settings:
        :attr:`rule` called with the group's values of its keyword arguments (``betas`` as ``beta1``, ``beta2``)."""
        rule = type(self).rule
        hyperparameters = {name: group[name] for name in _keywords(rule) if name in group}
        if "betas" in group:
            hyperparameters["beta1"], hyperparameters["beta2"] = group["betas"]
        rule(param, grad, state, **hyperparameters)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One optimizer step; ``closure`` (if given) re-evaluates the loss with gradients enabled."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                self.update(param, param.grad, self.state[param], group)
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict, ours or ``torch.optim``'s where the state keys match.

        torch keeps the step count as a 0-d tensor (float32 unless the default dtype is float64); it is turned
        back into an exact ``int`` so bias corrections such as ``1 - β₂ᵗ`` keep full precision.
        """
        super().load_state_dict(state_dict)
        for state in self.state.values():
            if isinstance(state.get("step"), torch.Tensor):
                state["step"] = int(state["step"].item())
