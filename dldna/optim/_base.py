"""What every optimizer of :mod:`dldna.optim` shares: the loop over parameters, the start of each parameter's
state, weight decay, and the defaults an optimizer class declares.

An optimizer file holds two things. A module-level update function, ``<name>_update(param, grad, state, *,
hyperparameters...)``, is the chapter's equations for one tensor: it changes ``param`` in place, creates its
``state`` with :func:`init_state` or :func:`count_step` and applies weight decay with :func:`with_weight_decay`
or :func:`decay_weights_`. The class, a :class:`PerParameterOptimizer`, checks torch's constructor arguments,
names its function as :attr:`~PerParameterOptimizer.update` and maps a parameter group to the function's
keyword arguments in :meth:`~PerParameterOptimizer.hyperparameters`, naming every group key it reads
(:func:`adam_arguments` reads torch's ``betas`` as the equations' ``beta1`` and ``beta2``).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

import torch


def init_state(state: dict[str, Any], param: torch.Tensor, *zero_buffers: str, **values: Any) -> bool:
    """At a parameter's first step (``state`` still empty) set ``values`` (step counters, scalars) and create
    ``zero_buffers`` as zeros shaped like ``param``; returns whether this was the first step."""
    if state:
        return False
    state.update(values)
    state.update({name: torch.zeros_like(param) for name in zero_buffers})
    return True


def count_step(state: dict[str, Any], param: torch.Tensor, *zero_buffers: str, **values: Any) -> Any:
    """:func:`init_state` with a step counter, then advance ``state["step"]`` and return it, the ``t`` of the
    equations (bias corrections)."""
    init_state(state, param, *zero_buffers, step=0, **values)
    state["step"] += 1
    return state["step"]


def with_weight_decay(direction: torch.Tensor, param: torch.Tensor, weight_decay: Any) -> torch.Tensor:
    """``d + λ w``: weight decay as a term of the step, added to the gradient (L2 regularisation, coupled) or
    to an update direction (Lion, LAMB, LARS)."""
    return direction + weight_decay * param


def decay_weights_(param: torch.Tensor, lr: Any, weight_decay: Any) -> torch.Tensor:
    """``w ← w (1 - lr λ)`` in place: decoupled weight decay (Loshchilov & Hutter, 2019), taken before the step
    and left out of the gradient."""
    return param.mul_(1 - lr * weight_decay)


def weight_decay_gradient(param: torch.Tensor, grad: torch.Tensor, lr: Any, weight_decay: Any, decoupled: bool) -> torch.Tensor:
    """Apply weight decay ``λ`` and return the gradient the rest of the update uses: decoupled,
    :func:`decay_weights_` with ``g`` unchanged; coupled, ``g + λ w``."""
    if decoupled:
        decay_weights_(param, lr, weight_decay)
        return grad
    return with_weight_decay(grad, param, weight_decay)


def adam_arguments(group: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """``lr``, torch's ``betas`` as the equations' ``beta1`` and ``beta2``, then the group's ``keys`` as they
    are: the arguments of an Adam-family update function, read from a param group."""
    beta1, beta2 = group["betas"]
    return dict(lr=group["lr"], beta1=beta1, beta2=beta2, **{key: group[key] for key in keys})


class PerParameterOptimizer(torch.optim.Optimizer):
    """Base class: ``step`` calls :attr:`update` once per parameter that has a gradient, with the keyword
    arguments :meth:`hyperparameters` reads from the parameter's group."""

    update: ClassVar[Callable[..., None]]
    """``update(param, grad, state, **hyperparameters)``: the module's update function (a ``staticmethod``)."""

    sweepable: ClassVar[bool] = False
    """Whether :func:`dldna.train.sweep` can run :attr:`update` on stacked configurations: it needs nothing but
    the gradient and treats every coordinate on its own (a per-tensor norm would mix the configurations)."""

    hyperparameters: ClassVar[Callable[[Mapping[str, Any]], dict[str, Any]]]
    """``hyperparameters(group)``: the keyword arguments of :attr:`update`, read by name from a parameter group
    (or from the optimizer's ``defaults``); a ``staticmethod`` that spells out any renaming, such as torch's
    ``betas`` into the equations' ``beta1`` and ``beta2``."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One optimizer step; ``closure`` (if given) re-evaluates the loss with gradients enabled."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyperparameters = self.hyperparameters(group)
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                self.update(param, param.grad, self.state[param], **hyperparameters)
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


def default_hyperparameters(cls: type[torch.optim.Optimizer]) -> dict[str, Any]:
    """The settings an optimizer class uses when none are given, as its param groups hold them (torch's names:
    ``betas`` for the Adam family). Read from ``defaults`` of an instance on a dummy parameter, the record
    ``torch.optim.Optimizer`` keeps of the constructor's arguments; works for ``torch.optim`` classes too."""
    return dict(cls([torch.zeros(1, requires_grad=True)]).defaults)
