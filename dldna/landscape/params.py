"""Parameter vectors: the trainable parameters of a model in a fixed order, and the flat vector they form.

A direction in weight space, the Hessian's operator and a saved trajectory all use these coordinates: the
parameters with ``requires_grad``, in ``model.parameters()`` order, flattened and concatenated.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

Direction = list[Tensor]
"""One tensor per trainable parameter, shaped like it: a point or a direction in weight space."""


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters a direction covers: those with ``requires_grad``, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def trainable_names(model: nn.Module) -> list[str]:
    """Names of :func:`trainable_parameters`, in the same order (keys for ``torch.func.functional_call``)."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    """All ``tensors`` as one 1-D vector (a copy)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: Sequence[Tensor]) -> Direction:
    """Cut a 1-D ``vector`` into tensors shaped like ``like`` (the inverse of :func:`flatten`)."""
    total = sum(t.numel() for t in like)
    if vector.dim() != 1 or vector.numel() != total:
        raise ValueError(f"vector must be 1-D with {total} entries, got shape {tuple(vector.shape)}")
    pieces = torch.split(vector, [t.numel() for t in like])
    return [piece.reshape(t.shape).to(dtype=t.dtype, device=t.device) for piece, t in zip(pieces, like)]
