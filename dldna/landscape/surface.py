"""Loss along a line and over a plane in weight space, evaluated many grid points per forward pass.

Every point of a grid is a weight vector ``offset + sum_i c_i * v_i``. Instead of loading each point into the
model (one ``load_state_dict`` and one forward pass per point), the points of a chunk are stacked and
``torch.func.vmap`` runs ``functional_call`` on all of them at once; chunks bound the memory. A plain loop over
points (``method="loop"``) computes the same numbers and serves as the reference in tests and benchmarks.
Batching pays where each forward pass is dominated by launching kernels (a GPU); on a CPU both are bound by
the same matrix products and ``bench/landscape.py`` measured the loop 10-25 % faster, so ``method="auto"``
(the default) batches on CUDA only.

The model is evaluated in eval mode, so BatchNorm layers use their running statistics (the statistics of the
trained model at every grid point: they are not recomputed for the moved weights) and dropout is off. The
model's mode and weights are left as they were. :func:`random_direction_losses` probes how flat a solution is
from a few such lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from dldna.landscape.directions import random_direction
from dldna.landscape.params import trainable_names, trainable_parameters
from dldna.train.run import LossFn, evaluation_mode

Method = Literal["auto", "vmap", "loop"]


@dataclass(frozen=True)
class Surface:
    """Loss and accuracy on a 1-D or 2-D grid of step sizes along given directions.

    ``axes`` holds one array of coordinates per direction; ``loss`` and ``accuracy`` have shape
    ``(len(axes[0]),)`` for a line and ``(len(axes[1]), len(axes[0]))`` for a plane (rows follow the second
    direction, as ``matplotlib.contour(x, y, z)`` expects). ``samples`` is how many examples each point
    was evaluated on. ``accuracy`` is NaN when the targets are not class labels.
    """

    axes: tuple[np.ndarray, ...]
    loss: np.ndarray
    accuracy: np.ndarray
    samples: int

    @property
    def centre_loss(self) -> float:
        """Loss at the point nearest the origin of the grid (the unmoved weights when the grid contains 0)."""
        index = tuple(int(np.argmin(np.abs(axis))) for axis in reversed(self.axes))
        return float(self.loss[index])


def _check_data(x: Tensor, y: Tensor, samples: int | None) -> tuple[Tensor, Tensor]:
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if samples is not None:
        if not 1 <= samples <= len(y):
            raise ValueError(f"samples must be between 1 and {len(y)}, got {samples}")
        x, y = x[:samples], y[:samples]
    return x, y


@torch.no_grad()
def evaluate_combinations(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    names: Sequence[str],
    vectors: Sequence[Sequence[Tensor]],
    coefficients: Tensor,
    offset: Sequence[Tensor] | None = None,
    loss_fn: LossFn = F.cross_entropy,
    batch_size: int = 1024,
    chunk_size: int = 16,
    method: Method = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss and accuracy on ``(x, y)`` at every weight vector ``offset + coefficients[j] @ vectors``.

    ``names`` are the model entries (parameters or buffers) the vectors replace; everything else keeps the
    model's values. ``coefficients`` has shape ``(points, len(vectors))``. ``method="vmap"`` evaluates
    ``chunk_size`` points per forward pass; ``"loop"`` one point at a time; ``"auto"`` batches on CUDA and loops
    elsewhere. All use eval mode.
    """
    if method not in ("auto", "vmap", "loop"):
        raise ValueError(f"method must be 'auto', 'vmap' or 'loop', got {method!r}")
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}")
    if coefficients.dim() != 2 or coefficients.shape[1] != len(vectors):
        raise ValueError(f"coefficients must have shape (points, {len(vectors)}), got {tuple(coefficients.shape)}")
    if any(len(v) != len(names) for v in vectors):
        raise ValueError(f"every vector must have {len(names)} tensors, one per name")
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    frozen = {name: value for name, value in state.items() if name not in set(names)}
    stacked = [torch.stack([v[k] for v in vectors]) for k in range(len(names))]
    coefficients = coefficients.to(device=stacked[0].device, dtype=stacked[0].dtype)
    classify = not torch.is_floating_point(y)
    if method == "auto":
        method = "vmap" if x.device.type == "cuda" else "loop"

    def weights_at(c: Tensor) -> dict[str, Tensor]:
        """Weight tensors for the coefficient rows ``c`` (shape ``(points, vectors)``), stacked along dim 0."""
        combined = {}
        for k, name in enumerate(names):
            moved = torch.tensordot(c, stacked[k], dims=1)
            combined[name] = moved if offset is None else offset[k].unsqueeze(0) + moved
        return combined

    def loss_and_correct(weights: dict[str, Tensor], xb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
        out = functional_call(model, (weights, frozen), (xb,))
        correct = (out.argmax(dim=-1) == yb).sum() if classify else torch.zeros((), device=out.device)
        return loss_fn(out, yb) * len(yb), correct

    batched = vmap(loss_and_correct, in_dims=(0, None, None))
    with evaluation_mode(model):
        losses, corrects = [], []
        step = chunk_size if method == "vmap" else 1
        for start in range(0, len(coefficients), step):
            weights = weights_at(coefficients[start : start + step])
            loss_sum = torch.zeros(len(coefficients[start : start + step]), dtype=torch.float64, device=x.device)
            correct = torch.zeros_like(loss_sum)
            for b in range(0, len(y), batch_size):
                xb, yb = x[b : b + batch_size], y[b : b + batch_size]
                if method == "vmap":
                    batch_loss, batch_correct = batched(weights, xb, yb)
                else:
                    batch_loss, batch_correct = loss_and_correct({n: w[0] for n, w in weights.items()}, xb, yb)
                loss_sum += batch_loss.double()
                correct += batch_correct.double()
            losses.append(loss_sum / len(y))
            corrects.append(correct / len(y))
    accuracy = torch.cat(corrects).cpu().numpy()
    return torch.cat(losses).cpu().numpy(), accuracy if classify else np.full_like(accuracy, np.nan)


def _as_axis(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    axis = np.asarray(values, dtype=np.float64)
    if axis.ndim != 1 or len(axis) == 0 or not np.all(np.isfinite(axis)):
        raise ValueError(f"{name} must be a non-empty 1-D sequence of finite numbers")
    return axis


def loss_line(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    direction: Sequence[Tensor],
    alphas: Sequence[float] | np.ndarray = np.linspace(-1, 1, 41),
    loss_fn: LossFn = F.cross_entropy,
    samples: int | None = None,
    batch_size: int = 1024,
    chunk_size: int = 16,
    method: Method = "auto",
) -> Surface:
    """Loss at ``w + alpha * direction`` for each ``alpha`` (trainable parameters only; eval mode, see module)."""
    return _surface(model, x, y, [direction], [_as_axis(alphas, "alphas")], loss_fn, samples, batch_size, chunk_size, method)


def loss_plane(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    directions: tuple[Sequence[Tensor], Sequence[Tensor]],
    xs: Sequence[float] | np.ndarray = np.linspace(-1, 1, 21),
    ys: Sequence[float] | np.ndarray = np.linspace(-1, 1, 21),
    loss_fn: LossFn = F.cross_entropy,
    samples: int | None = None,
    batch_size: int = 1024,
    chunk_size: int = 16,
    method: Method = "auto",
) -> Surface:
    """Loss at ``w + a * d1 + b * d2`` for every ``a`` in ``xs`` and ``b`` in ``ys`` (eval mode, see module).

    ``samples`` evaluates on the first ``samples`` examples of ``(x, y)`` (all by default), in batches of
    ``batch_size``; with 0 in both ``xs`` and ``ys`` the centre of the grid is the model's own loss.
    """
    if len(directions) != 2:
        raise ValueError(f"directions must hold two directions, got {len(directions)}")
    axes = [_as_axis(xs, "xs"), _as_axis(ys, "ys")]
    return _surface(model, x, y, list(directions), axes, loss_fn, samples, batch_size, chunk_size, method)


def _surface(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    directions: list[Sequence[Tensor]],
    axes: list[np.ndarray],
    loss_fn: LossFn,
    samples: int | None,
    batch_size: int,
    chunk_size: int,
    method: Method,
) -> Surface:
    """Shared body of :func:`loss_line` and :func:`loss_plane`: grid of coefficients -> :class:`Surface`."""
    x, y = _check_data(x, y, samples)
    params = trainable_parameters(model)
    for direction in directions:
        if [tuple(d.shape) for d in direction] != [tuple(p.shape) for p in params]:
            raise ValueError("each direction must hold one tensor per trainable parameter, with the same shapes")
    grid = np.stack(np.meshgrid(*axes, indexing="xy"), axis=-1).reshape(-1, len(axes))
    coefficients = torch.as_tensor(grid, dtype=params[0].dtype, device=params[0].device)
    vectors = [[d.to(dtype=p.dtype, device=p.device) for d, p in zip(direction, params)] for direction in directions]
    loss, accuracy = evaluate_combinations(
        model, x, y, trainable_names(model), vectors, coefficients, offset=[p.detach() for p in params],
        loss_fn=loss_fn, batch_size=batch_size, chunk_size=chunk_size, method=method,
    )
    shape = tuple(len(axis) for axis in reversed(axes))
    return Surface(tuple(axes), loss.reshape(shape), accuracy.reshape(shape), len(y))


def random_direction_losses(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    alphas: Sequence[float] | np.ndarray = np.linspace(-1.0, 1.0, 21),
    *,
    directions: int = 3,
    seed: int = 0,
    loss_fn: LossFn = F.cross_entropy,
) -> np.ndarray:
    """Loss of ``model`` moved along ``directions`` random filter-normalised directions, shape ``(directions,
    len(alphas))``: a probe of how flat a solution is.

    A flat solution keeps a low loss further from ``alpha = 0``; filter normalisation (Li et al., 2018) makes
    models with different weight scales comparable. Different ``seed`` values give different directions; the
    same seed gives the same directions for every model of the same architecture. The model is not changed.
    """
    if directions < 1:
        raise ValueError(f"directions must be >= 1, got {directions}")
    rows = []
    for index in range(directions):
        direction = random_direction(model, seed=seed + index)
        rows.append(np.asarray(loss_line(model, x, y, direction, alphas, loss_fn=loss_fn).loss, dtype=float))
    return np.stack(rows)
