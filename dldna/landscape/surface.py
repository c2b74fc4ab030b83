"""Loss along a line and over a plane in weight space, evaluated at many grid points.

Every point of a grid is a weight vector ``offset + sum_i c_i * v_i``. Three ways compute the same numbers:

- ``method="affine"``: the first ``Linear``/convolution layer's output is affine in its weights, so on a plane
  ``X (W0 + a D1 + b D2)^T = X W0^T + a X D1^T + b X D2^T``. The three products of the data are computed once per
  batch; each grid point then combines them and runs only the rest of the network
  (:mod:`dldna.landscape.first_layer`). For the book's MLP the first layer holds 92% of the arithmetic, which is
  the work skipped. Each grid point's output is written into one reused buffer as scaled additions, then runs
  through the rest of the network alone (on a CUDA device, ``chunk_size`` points share a forward pass of the rest
  through ``torch.func.vmap``).
- ``method="vmap"``: ``chunk_size`` weight vectors are stacked and ``torch.func.vmap`` runs ``functional_call``
  on all of them in one forward pass: the same arithmetic as the loop, in fewer, larger kernels. That pays on a
  GPU, where a small network's forward pass costs more in kernel launches than in arithmetic; a CPU already runs
  the loop's matrix products near its peak.
- ``method="loop"``: one point at a time, the reference in tests and benchmarks.

``method="auto"`` (the default) takes ``"affine"`` whenever the model has such a first layer (one point per
pass on a CPU, ``chunk_size`` on CUDA), else ``"vmap"`` on CUDA and ``"loop"`` elsewhere; ``bench/landscape.py``
measures the three. Every method scores ``chunk_size`` points together: their outputs are stacked and the loss
and the argmax run once over the stack, not as one small call per point.

The model is evaluated in eval mode, so BatchNorm layers use their running statistics (the statistics of the
trained model at every grid point: they are not recomputed for the moved weights) and dropout is off. The
model's mode and weights are left as they were. :func:`random_direction_losses` probes how flat a solution is
from a few such lines.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from dldna.landscape.directions import random_direction
from dldna.landscape.first_layer import FirstLayer, SubstitutedOutput, find_first_layer, layer_input
from dldna.landscape.params import trainable_names, trainable_parameters
from dldna.train.run import LossFn, evaluation_mode

Method = Literal["auto", "affine", "vmap", "loop"]
METHODS = ("auto", "affine", "vmap", "loop")


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


def _first_layer_terms(
    layer: FirstLayer, model: nn.Module, x: Tensor, stacked: dict[str, Tensor], frozen: dict[str, Tensor]
) -> tuple[Tensor | None, Tensor | None]:
    """The first layer's output on ``x`` at coefficient rows ``c`` is ``constant + tensordot(c, parts, 1)``.

    ``parts[j]`` is the output (bias included) of the ``j``-th stacked weight, ``constant`` that of the entries
    that do not vary; either is None when it has no terms. One matrix product (or convolution) of the data
    computes every part.
    """
    inputs = layer_input(model, layer, x)
    parts = constant = None
    if layer.weight in stacked:
        parts = layer.apply(inputs, stacked[layer.weight])
    else:
        constant = layer.apply(inputs, frozen[layer.weight][None])
    if layer.bias is not None and layer.bias in stacked:
        base = parts if parts is not None else torch.zeros(len(stacked[layer.bias]), *constant.shape[1:]).to(constant)
        parts = layer.add_bias(base, stacked[layer.bias])
    elif layer.bias is not None:
        base = constant if constant is not None else torch.zeros_like(parts[:1])
        constant = layer.add_bias(base, frozen[layer.bias][None])
    # Contiguous once here, so that combining them at every grid point is one small matrix product, no copy.
    return None if parts is None else parts.contiguous(), None if constant is None else constant[0]


def _combine(rows: Tensor, parts: Tensor | None, constant: Tensor | None) -> Tensor:
    """The first layer's outputs at the coefficient ``rows``, one per row (see :func:`_first_layer_terms`)."""
    if parts is None:
        return constant.expand(len(rows), *constant.shape)
    combined = (rows @ parts.view(len(parts), -1)).view(len(rows), *parts.shape[1:])
    return combined if constant is None else combined + constant


def _combine_into(out: Tensor, coefficients: Sequence[float], parts: Tensor | None, constant: Tensor | None) -> Tensor:
    """The first layer's output at one point, written into ``out``: ``constant + sum_j c_j parts[j]`` as scaled
    additions, one pass over memory each, the first two parts in one when the first coefficient is 1 (the
    offset's). A matrix product with a single row computes the same sum at a third of the memory's speed."""
    if parts is None:
        return out.copy_(constant)
    if len(parts) > 1 and coefficients[0] == 1:
        torch.add(parts[0], parts[1], alpha=coefficients[1], out=out)
        done = 2
    else:
        torch.mul(parts[0], coefficients[0], out=out)
        done = 1
    for coefficient, part in zip(coefficients[done:], parts[done:]):
        out.add_(part, alpha=coefficient)
    return out if constant is None else out.add_(constant)


def _unshared(out: Tensor, buffer: Tensor | None) -> Tensor:
    """``out``, copied when it lives in ``buffer``, which the next point overwrites (a model whose output is its
    first layer's, or a view of it)."""
    shared = buffer is not None and out.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()
    return out.clone() if shared else out


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
    model's values. ``coefficients`` has shape ``(points, len(vectors))``. ``method`` is one of ``"affine"``,
    ``"vmap"`` (``chunk_size`` points per forward pass), ``"loop"`` (one point at a time) or ``"auto"`` (see the
    module docstring); ``"affine"`` raises ``ValueError`` for a model without a suitable first layer. All use
    eval mode.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}")
    if coefficients.dim() != 2 or coefficients.shape[1] != len(vectors):
        raise ValueError(f"coefficients must have shape (points, {len(vectors)}), got {tuple(coefficients.shape)}")
    if any(len(v) != len(names) for v in vectors):
        raise ValueError(f"every vector must have {len(names)} tensors, one per name")
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    if unknown := [name for name in names if name not in state]:
        raise ValueError(f"names must name parameters or buffers of the model, got {unknown}")
    frozen = {name: value for name, value in state.items() if name not in set(names)}
    # The offset is one more part whose coefficient is always 1.
    parts = ([list(offset)] if offset is not None else []) + [list(v) for v in vectors]
    stacked = {name: torch.stack([part[k] for part in parts]) for k, name in enumerate(names)}
    rows = coefficients.to(device=stacked[names[0]].device, dtype=stacked[names[0]].dtype)
    if offset is not None:
        rows = torch.cat([torch.ones_like(rows[:, :1]), rows], dim=1)
    classify = not torch.is_floating_point(y)
    cuda = x.device.type == "cuda"

    with evaluation_mode(model):
        layer = find_first_layer(model, x, names) if method in ("auto", "affine") else None
        if method == "affine" and layer is None:
            raise ValueError(
                "method='affine' needs a first Linear or convolution layer whose input the varied entries do not "
                "change, called once; this model has none: use method='auto'"
            )
        one_at_a_time = method == "loop" or (method == "auto" and not cuda)
        if method == "auto":
            method = "affine" if layer is not None else "vmap" if cuda else "loop"
        varied = [name for name in names if layer is None or method != "affine" or name not in layer.names]
        substitution = SubstitutedOutput(layer) if method == "affine" else None
        # Python numbers: one point's coefficients are read without a device sync per point.
        row_values = rows.tolist() if one_at_a_time else []

        def forward(weights: dict[str, Tensor], z: Tensor | None, xb: Tensor) -> Tensor:
            if substitution is not None:
                substitution.value = z
            return functional_call(model, (weights, frozen), (xb,))

        def loss_and_correct(out: Tensor, yb: Tensor) -> tuple[Tensor, Tensor]:
            correct = (out.argmax(dim=-1) == yb).sum() if classify else torch.zeros((), device=out.device)
            return loss_fn(out, yb) * len(yb), correct

        # The outputs of a chunk's points are scored together: one loss and one argmax over the chunk instead of
        # one small call per point, whether the points went through the network together or one at a time.
        forward_chunk = vmap(forward, in_dims=(0, 0 if substitution is not None else None, None))
        score_chunk = vmap(loss_and_correct, in_dims=(0, None))
        loss_sum = torch.zeros(len(rows), dtype=torch.float64, device=x.device)
        correct = torch.zeros_like(loss_sum)
        with substitution if substitution is not None else nullcontext():
            for b in range(0, len(y), batch_size):
                xb, yb = x[b : b + batch_size], y[b : b + batch_size]
                terms = _first_layer_terms(layer, model, xb, stacked, frozen) if substitution is not None else None
                output = None if terms is None else torch.empty_like(terms[0][0] if terms[0] is not None else terms[1])
                for start in range(0, len(rows), chunk_size):
                    chunk = rows[start : start + chunk_size]
                    weights = {name: torch.tensordot(chunk, stacked[name], dims=1) for name in varied}
                    if one_at_a_time:
                        outputs = torch.stack([
                            _unshared(forward(
                                {name: w[j] for name, w in weights.items()},
                                None if terms is None else _combine_into(output, row_values[start + j], *terms), xb,
                            ), output)
                            for j in range(len(chunk))
                        ])
                    else:
                        outputs = forward_chunk(weights, None if terms is None else _combine(chunk, *terms), xb)
                    batch_loss, batch_correct = score_chunk(outputs, yb)
                    loss_sum[start : start + len(chunk)] += batch_loss.double()
                    correct[start : start + len(chunk)] += batch_correct.double()
    accuracy = (correct / len(y)).cpu().numpy()
    return (loss_sum / len(y)).cpu().numpy(), accuracy if classify else np.full_like(accuracy, np.nan)


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
