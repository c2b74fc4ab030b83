"""Directions in weight space along which a loss landscape is drawn.

A direction is a list of tensors shaped like the model's trainable parameters (``trainable_parameters``), so
it can be added to the weights layer by layer. Three kinds are built here:

- random Gaussian directions with *filter-wise normalisation* (Li et al., 2018): every filter of a
  convolution, every output row of a linear layer, gets the norm of the matching filter of the weights, so
  that a step of size 1 means "as large as the weights themselves" in every layer, whatever their scale;
- top Hessian eigenvectors (directions of largest curvature), via :mod:`dldna.landscape.hessian`;
- principal components of a training trajectory (scikit-learn PCA), the plane in which a run moved most.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

Direction = list[Tensor]
IgnoreSpec = Literal["biasbn"] | bool
LossFn = Callable[[Tensor, Tensor], Tensor]


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


def hessian_directions(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn = F.cross_entropy,
    k: int = 2,
    seed: int = 0,
) -> tuple[list[Direction], np.ndarray]:
    """The top-``k`` Hessian eigenvectors of the loss on ``(x, y)`` as directions, and their eigenvalues.

    Eigenvectors have unit norm over all parameters (they are not filter-normalised: their scale is what
    makes the eigenvalue the curvature along them), so a step of 1 moves the weights by distance 1.
    """
    from dldna.landscape.hessian import top_eigenvalues

    result = top_eigenvalues(model, x, y, loss_fn=loss_fn, k=k, seed=seed)
    params = trainable_parameters(model)
    directions = [[t.detach().to(dtype=p.dtype, device=p.device) for t, p in zip(vector, params)] for vector in result.eigenvectors]
    return directions, np.asarray(result.eigenvalues)


def pca_directions(model: nn.Module, trajectory: Tensor | np.ndarray, k: int = 2) -> tuple[list[Direction], np.ndarray]:
    """The first ``k`` principal components of a weight trajectory as directions, with explained variance ratios.

    ``trajectory`` holds one flattened weight vector per row (as saved by
    :class:`dldna.landscape.trajectory.WeightTrajectory`); components have unit norm.
    """
    from dldna.landscape.trajectory import trajectory_pca

    pca = trajectory_pca(trajectory, k)
    params = trainable_parameters(model)
    device, dtype = params[0].device, params[0].dtype
    directions = [unflatten(torch.as_tensor(c, device=device, dtype=dtype), params) for c in pca.components]
    return directions, pca.explained_variance_ratio
