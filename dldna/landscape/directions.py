"""Directions in weight space along which a loss landscape is drawn.

A direction is a list of tensors shaped like the model's trainable parameters
(:func:`~dldna.landscape.params.trainable_parameters`), so it can be added to the weights layer by layer. Built
here: random Gaussian directions with *filter-wise normalisation* (Li et al., 2018): every filter of a
convolution, every output row of a linear layer, gets the norm of the matching filter of the weights, so that a
step of size 1 means "as large as the weights themselves" in every layer, whatever their scale. The other two
kinds live with what they come from: top Hessian eigenvectors (:func:`dldna.landscape.hessian.hessian_directions`)
and principal components of a training trajectory (:func:`dldna.landscape.trajectory.pca_directions`).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor, nn

from dldna.landscape.params import Direction, trainable_parameters

IgnoreSpec = Literal["biasbn"] | bool


def inner(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Inner product of two directions, summed over all their tensors."""
    return sum((x * y).sum() for x, y in zip(a, b))


def _check_ignore(ignore: IgnoreSpec) -> bool:
    if ignore == "biasbn" or ignore is True:
        return True
    if ignore is False:
        return False
    raise ValueError(f"ignore must be 'biasbn', True or False, got {ignore!r}")


def filter_normalize(direction: Sequence[Tensor], weights: Sequence[Tensor], ignore: IgnoreSpec = "biasbn") -> Direction:
    """Rescale ``direction`` filter by filter to the norms of ``weights`` (Li et al., 2018).

    A tensor with two or more dimensions is split along its first dimension (a convolution's output filters,
    a linear layer's output neurons) and each slice ``d_i`` becomes ``d_i * ||w_i|| / ||d_i||``.
    One-dimensional tensors (biases, norm-layer scales and shifts) are set to zero when ``ignore`` is
    ``"biasbn"`` or ``True``, the usual choice, which keeps them at their trained values across the plot;
    with ``ignore=False`` each is rescaled as a whole to the norm of its weights. A zero slice stays zero.
    """
    drop_vectors = _check_ignore(ignore)
    if len(direction) != len(weights):
        raise ValueError(f"direction has {len(direction)} tensors but weights has {len(weights)}")
    normalized = []
    for d, w in zip(direction, weights):
        if d.shape != w.shape:
            raise ValueError(f"direction tensor of shape {tuple(d.shape)} does not match weight shape {tuple(w.shape)}")
        if d.dim() <= 1 and drop_vectors:
            normalized.append(torch.zeros_like(d))
            continue
        rows_d = d.reshape(d.shape[0], -1) if d.dim() > 1 else d.reshape(1, -1)
        rows_w = w.detach().reshape(rows_d.shape)
        norm_d = torch.linalg.vector_norm(rows_d, dim=1, keepdim=True)
        norm_w = torch.linalg.vector_norm(rows_w, dim=1, keepdim=True)
        scale = torch.where(norm_d > 0, norm_w / torch.where(norm_d > 0, norm_d, 1), 0)
        normalized.append((rows_d * scale).reshape(d.shape))
    return normalized


def gaussian_direction(model: nn.Module, generator: torch.Generator | None = None) -> Direction:
    """Independent standard normal entries, shaped, typed and placed like the trainable parameters.

    Drawn on the CPU from ``generator`` and then moved, so a seed gives the same direction on every device.
    """
    return [
        torch.randn(p.shape, generator=generator, dtype=torch.float64).to(dtype=p.dtype, device=p.device)
        for p in trainable_parameters(model)
    ]


def orthogonalize(direction: Sequence[Tensor], against: Sequence[Tensor]) -> Direction:
    """``direction`` minus its projection on ``against`` (one Gram-Schmidt step over all tensors together)."""
    norm_sq = inner(against, against)
    if norm_sq == 0:
        raise ValueError("against must be a non-zero direction")
    coefficient = inner(direction, against) / norm_sq
    return [d - coefficient * a for d, a in zip(direction, against)]


def _zero_vectors(direction: Sequence[Tensor], ignore: IgnoreSpec) -> Direction:
    drop = _check_ignore(ignore)
    return [torch.zeros_like(d) if (drop and d.dim() <= 1) else d for d in direction]


def random_direction(model: nn.Module, ignore: IgnoreSpec = "biasbn", seed: int = 0) -> Direction:
    """One filter-normalised Gaussian direction for ``model`` (see :func:`filter_normalize`)."""
    generator = torch.Generator().manual_seed(seed)
    return filter_normalize(gaussian_direction(model, generator), trainable_parameters(model), ignore)


def random_plane(model: nn.Module, ignore: IgnoreSpec = "biasbn", seed: int = 0, normalize: bool = True) -> tuple[Direction, Direction]:
    """Two Gaussian directions spanning a plane around ``model``'s weights.

    The second is made orthogonal to the first *before* filter normalisation (on the entries that will be
    kept), then both are normalised. Normalising rescales filters independently, so afterwards the two are
    only nearly orthogonal; in millions of dimensions two Gaussian draws are nearly orthogonal anyway.
    ``normalize=False`` returns the raw (orthogonalised) Gaussians, whose scale ignores the weights': the
    chapter uses them to show why normalisation is needed.
    """
    generator = torch.Generator().manual_seed(seed)
    first = _zero_vectors(gaussian_direction(model, generator), ignore)
    second = orthogonalize(_zero_vectors(gaussian_direction(model, generator), ignore), first)
    if not normalize:
        return first, second
    weights = trainable_parameters(model)
    return filter_normalize(first, weights, ignore), filter_normalize(second, weights, ignore)
