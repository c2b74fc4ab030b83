"""Lookahead (Zhang et al., 2019): "k steps forward, 1 step back". Any inner optimizer moves the fast weights
``θ``; every ``k`` steps the slow weights ``φ`` move part of the way towards them and the fast weights restart
from there::

    θ ← inner step (k times)
    φ ← φ + α (θ - φ)
    θ ← φ

``φ`` starts at the initial weights. With ``k = 1`` and ``α = 1`` Lookahead is its inner optimizer.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


class Lookahead(torch.optim.Optimizer):
    """Wraps ``optimizer``; shares its ``param_groups`` (so LR schedulers on the wrapper reach the inner one)
    and keeps the slow weights in its own ``state``. ``state_dict`` holds both; :func:`dldna.optim.state_bytes`
    counts both."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"Invalid optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"Invalid k: k={k!r} (must be an integer >= 1)")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"Invalid alpha: alpha={alpha!r} (must be in (0, 1])")
        self.optimizer, self.k, self.alpha = optimizer, k, alpha
        self.inner_steps = 0
        super().__init__(optimizer.param_groups, {})

    @torch.no_grad()
    def _init_slow_weights(self) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                if "slow_param" not in self.state[param]:
                    self.state[param]["slow_param"] = param.detach().clone()

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One inner step; every ``k``-th also pulls the slow weights towards the fast ones and resets θ ← φ."""
        loss = self.optimizer.step(closure)
        self.inner_steps += 1
        if self.inner_steps % self.k == 0:
            for group in self.param_groups:
                for param in group["params"]:
                    slow = self.state[param]["slow_param"]
                    slow.add_(self.alpha * (param - slow))
                    param.copy_(slow)
        return loss

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the inner optimizer (unless it is already there), with slow weights at the current ones."""
        if not any(param_group is group for group in self.optimizer.param_groups):
            self.optimizer.add_param_group(param_group)
        self.param_groups = self.optimizer.param_groups
        self._init_slow_weights()

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.optimizer.state_dict(), "slow": super().state_dict(), "inner_steps": self.inner_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict["inner"])
        super().load_state_dict(state_dict["slow"])
        self.param_groups = self.optimizer.param_groups
        self.inner_steps = state_dict["inner_steps"]
