"""How strongly an optimizer's weight decay acts on coordinates whose gradients have different sizes.

A toy problem with no network: every coordinate receives pure gradient noise of its own scale, and the same
noise is fed to a copy trained with weight decay and one without; the gap between the two, per coordinate, is
what the decay did. The modern-optimizers chapter uses it to set L2 decay (Adam) beside decoupled decay (AdamW).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch


def decay_response(
    factory: Callable[..., torch.optim.Optimizer],
    grad_scales: Sequence[float] | np.ndarray,
    *,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    steps: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """How strongly weight decay acts on coordinates whose gradients have different sizes.

    Each coordinate ``i`` starts at 1 and receives gradients ``grad_scales[i] * z`` with ``z`` standard normal
    noise (the same stream in both runs below, and independent of the weights). Two copies are trained for
    ``steps`` steps, with ``weight_decay`` and without; the gap between them is the decay's effect. It is
    returned divided by what plain decoupled decay would do, ``1 - (1 - lr * weight_decay) ** steps``, so
    1 means "decayed exactly like ``w <- w - lr * weight_decay * w``" and 0.01 means a hundred times weaker.
    Runs in float64 on the CPU.
    """
    scales = torch.as_tensor(np.asarray(grad_scales, dtype=np.float64))
    if scales.dim() != 1 or len(scales) == 0 or not bool((scales > 0).all()):
        raise ValueError("grad_scales must be a non-empty 1-D sequence of positive numbers")
    if not (lr > 0 and weight_decay > 0):
        raise ValueError(f"lr and weight_decay must be > 0, got lr={lr}, weight_decay={weight_decay}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(steps, len(scales), generator=generator, dtype=torch.float64)
    finals = []
    for decay in (weight_decay, 0.0):
        weights = torch.ones(len(scales), dtype=torch.float64, requires_grad=True)
        optimizer = factory([weights], lr=lr, weight_decay=decay)
        for step in range(steps):
            weights.grad = scales * noise[step]
            optimizer.step()
        finals.append(weights.detach().clone())
    with_decay, without_decay = finals
    nominal = 1.0 - (1.0 - lr * weight_decay) ** steps
    return ((without_decay - with_decay) / nominal).numpy()
