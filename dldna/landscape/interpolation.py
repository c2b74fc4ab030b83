"""Linear interpolation between two trained models: the loss along ``(1 - a) * w1 + a * w2``.

The oldest picture of a loss landscape (Goodfellow, Vinyals & Saxe, 2015): if the loss falls monotonically
from an early model to a late one, nothing on the straight path between them stood in the optimizer's way.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dldna.landscape.surface import Method, Surface, _as_axis, _check_data, evaluate_combinations
from dldna.train.run import LossFn


def _interpolated_entries(model: nn.Module) -> dict[str, Tensor]:
    """Trainable parameters and floating-point buffers (BatchNorm running statistics), by name."""
    entries = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    entries.update({name: b for name, b in model.named_buffers() if torch.is_floating_point(b)})
    return entries


def interpolate(
    model_a: nn.Module,
    model_b: nn.Module,
    x: Tensor,
    y: Tensor,
    alphas: Sequence[float] | np.ndarray = np.linspace(-0.25, 1.25, 31),
    loss_fn: LossFn = F.cross_entropy,
    samples: int | None = None,
    batch_size: int = 1024,
    chunk_size: int = 16,
    method: Method = "auto",
) -> Surface:
    """Loss and accuracy of the weights ``(1 - a) * w_a + a * w_b`` for each ``a`` in ``alphas``.

    Both models must share an architecture. Floating-point buffers (BatchNorm running statistics) are
    interpolated with the same coefficients; evaluation is in eval mode. At ``a = 0`` and ``a = 1`` the
    weights are exactly ``w_a`` and ``w_b``, so the ends of the curve are the two models' own losses.
    Neither model is modified.
    """
    x, y = _check_data(x, y, samples)
    axis = _as_axis(alphas, "alphas")
    entries_a, entries_b = _interpolated_entries(model_a), _interpolated_entries(model_b)
    if list(entries_a) != list(entries_b) or any(entries_a[n].shape != entries_b[n].shape for n in entries_a):
        raise ValueError("model_a and model_b must have the same architecture (same parameter names and shapes)")
    names = list(entries_a)
    first = next(iter(entries_a.values()))
    coefficients = torch.as_tensor(np.stack([1 - axis, axis], axis=1), dtype=first.dtype, device=first.device)
    vectors = [[entries_a[n] for n in names], [entries_b[n].to(first.device) for n in names]]
    loss, accuracy = evaluate_combinations(
        model_a, x, y, names, vectors, coefficients, loss_fn=loss_fn, batch_size=batch_size, chunk_size=chunk_size, method=method
    )
    return Surface((axis,), loss, accuracy, len(y))
