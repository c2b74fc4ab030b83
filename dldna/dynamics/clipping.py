"""Gradient clipping as a :func:`~dldna.train.fit` callback that also counts how often it acted.

``fit(max_grad_norm=...)`` already clips by the global norm; this callback adds clipping by value and records
which steps were clipped, because a run that clips at nearly every step is really training with a different
(normalised) update rule, while one that clips rarely is only protected against occasional spikes.

- *By norm* rescales the whole gradient ``g`` to ``g * c / |g|`` when ``|g| > c``: the direction is kept.
- *By value* clamps every coordinate to ``[-c, c]``: large coordinates are cut, so the direction changes.
"""

from __future__ import annotations

import torch

from dldna.callbacks import Callback, TrainState


class GradientClipping(Callback):
    """Clips gradients after the backward pass, by value (``max_value``), then by global L2 norm (``max_norm``).

    Each step's record goes to ``history.extras`` once per epoch (one host copy per epoch): ``"grad_norm_before_clip"``
    (the global norm before any clipping; ``fit``'s own ``grad_norm`` is measured after this callback, so it
    shows the clipped norm) and ``"clipped"`` (1.0 if this step was clipped, else 0.0). At the end of the run
    ``"clip_fraction"`` holds the fraction of clipped steps, also available as :attr:`fraction`.
    """

    def __init__(self, max_norm: float | None = None, max_value: float | None = None) -> None:
        if max_norm is None and max_value is None:
            raise ValueError("give max_norm, max_value or both")
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"Invalid max_norm: {max_norm} (must be > 0)")
        if max_value is not None and not max_value > 0:
            raise ValueError(f"Invalid max_value: {max_value} (must be > 0)")
        self.max_norm, self.max_value = max_norm, max_value
        self._pending: list[torch.Tensor] = []
        self.clipped_steps = 0
        self.steps = 0

    @property
    def fraction(self) -> float:
        """Fraction of the steps so far whose gradient was clipped."""
        return self.clipped_steps / self.steps if self.steps else 0.0

    def on_train_begin(self, state: TrainState) -> None:
        self._pending, self.clipped_steps, self.steps = [], 0, 0

    def after_backward(self, state: TrainState) -> None:
        grads = [p.grad for p in state.model.parameters() if p.grad is not None]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        clipped = torch.zeros((), dtype=torch.bool, device=norm.device)
        if self.max_value is not None:
            largest = torch.stack([g.abs().max() for g in grads]).max()
            clipped = clipped | (largest > self.max_value)
            torch._foreach_clamp_min_(grads, -self.max_value)
            torch._foreach_clamp_max_(grads, self.max_value)
        if self.max_norm is not None:
            after_value = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            clipped = clipped | (after_value > self.max_norm)
            scale = torch.clamp(self.max_norm / (after_value + 1e-6), max=1.0)
            torch._foreach_mul_(grads, scale)
        self._pending.append(torch.stack([norm.float(), clipped.float()]))

    def _flush(self, state: TrainState) -> None:
        if not self._pending:
            return
        rows = torch.stack(self._pending).cpu().tolist()
        self._pending = []
        for norm, clipped in rows:
            state.record("grad_norm_before_clip", norm)
            state.record("clipped", clipped)
            self.clipped_steps += int(clipped)
            self.steps += 1

    def on_epoch_end(self, state: TrainState) -> None:
        self._flush(state)

    def on_train_end(self, state: TrainState) -> None:
        self._flush(state)
        state.history.extras["clip_fraction"] = [self.fraction]
