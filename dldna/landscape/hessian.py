"""Curvature of a network's loss through Hessian-vector products: top eigenvalues, trace, spectral density and
the top eigenvectors as landscape directions.

A network with ``d`` parameters has a ``d x d`` Hessian; for the book's 435k-parameter MLP that is about 190
billion numbers, so nothing here forms it. :class:`HessianOperator` gives products ``H v``, each costing about two
gradient evaluations: differentiate the loss once keeping the graph, then differentiate the inner product
``<grad L, v>`` a second time (Pearlmutter, 1994). The matrix-free algorithms of :mod:`dldna.linalg` run on it:

- :func:`top_eigenvalues`: the largest eigenvalues (the sharpness that limits the stable learning rate), by
  Lanczos or power iteration; :func:`hessian_directions` turns their eigenvectors into landscape directions.
- :func:`hessian_trace`: the sum of all curvatures, by Hutchinson or Hutch++.
- :func:`spectral_density`: the whole eigenvalue density by stochastic Lanczos quadrature.
- :func:`full_hessian`: the explicit matrix for tiny models, the reference the tests compare against.

The operator's vectors live in the parameters' dtype and device. Analysis functions put the model in
evaluation mode while they run (dropout off, batch norm on its running statistics, which then stay untouched),
restore every module's mode afterwards and never write to parameters or their ``.grad``.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from dldna.landscape.params import Direction, flatten, trainable_names, trainable_parameters
from dldna.linalg import (
    Density,
    EigenResult,
    TraceResult,
    check_choice,
    check_int,
    hutch_plus_plus,
    hutchinson,
    lanczos_eigenpairs,
    power_iteration,
    slq,
)
from dldna.train.run import LossFn, evaluation_mode

EIGEN_METHODS = ("lanczos", "power")
TRACE_METHODS = ("hutchinson", "hutch++")


def _gradient_with_graph(
    model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, params: list[Tensor]
) -> tuple[Tensor, ...]:
    """The gradient of the loss, keeping the graph that produced it so that it can be differentiated again."""
    loss = loss_fn(model(x), y)
    return torch.autograd.grad(loss, params, create_graph=True, allow_unused=True, materialize_grads=True)


def _differentiate_inner_product(
    gradient: Sequence[Tensor], params: list[Tensor], vector: Sequence[Tensor], retain_graph: bool
) -> list[Tensor]:
    """``H v`` as the gradient of ``<grad L, v>`` with respect to the parameters, ``v`` held constant.

    Passing ``v`` as ``grad_outputs`` makes autograd differentiate exactly that inner product without
    building it as a graph node first.
    """
    pairs = [(g, v) for g, v in zip(gradient, vector) if g.requires_grad]
    if not pairs:  # the gradient does not depend on the parameters: the loss is linear in them
        return [torch.zeros_like(p) for p in params]
    return list(
        torch.autograd.grad(
            [g for g, _ in pairs], params, grad_outputs=[v for _, v in pairs], retain_graph=retain_graph,
            allow_unused=True, materialize_grads=True,
        )
    )


class HessianOperator:
    """The Hessian of the mean loss ``loss_fn(model(x), y)`` as a linear operator on flat parameter vectors.

    ``matvec(v)`` returns ``H v`` for a flat ``v`` of length :attr:`dim`, counting the products in
    :attr:`matvecs`. ``loss_fn`` must average over the batch (as ``F.cross_entropy`` does by default), so that
    with ``batch_size`` the data are processed in chunks and their products weighted by chunk size, which
    gives the Hessian of the loss on all of ``x`` at the memory cost of one chunk.

    Used as a context manager, the operator keeps the model in evaluation mode for the whole block and, when
    all data fit in one chunk, computes the gradient graph once and differentiates it again for each product
    (it raises if the parameters are changed in place meanwhile). Called outside a block, each product sets and
    restores the modes itself. Either way the model's modes are restored and its parameters and ``.grad`` are
    left untouched.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        x: Tensor,
        y: Tensor,
        params: Sequence[Tensor] | None = None,
        batch_size: int | None = None,
    ) -> None:
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"x and y must hold the same positive number of samples, got {len(x)} and {len(y)}")
        self.model, self.loss_fn, self.x, self.y = model, loss_fn, x, y
        self.params = trainable_parameters(model) if params is None else list(params)
        if not self.params or not all(p.requires_grad for p in self.params):
            raise ValueError("params (default: the model's trainable parameters) must be non-empty and require grad")
        self.batch_size = len(x) if batch_size is None else min(check_int("batch_size", batch_size), len(x))
        self.shapes = [p.shape for p in self.params]
        self.numels = [p.numel() for p in self.params]
        self.dim = sum(self.numels)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.matvecs = 0
        self._mode: ExitStack | None = None
        self._gradient: tuple[Tensor, ...] | None = None

    def __enter__(self) -> HessianOperator:
        if self._mode is not None:
            raise RuntimeError("this HessianOperator is already in use in a with-block")
        self._mode = ExitStack()
        self._mode.enter_context(evaluation_mode(self.model))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._mode is not None:
            self._mode.close()
        self._mode, self._gradient = None, None

    def unflatten(self, vector: Tensor) -> list[Tensor]:
        """Split a flat vector into tensors shaped like the parameters (views, no copy)."""
        return [piece.view(shape) for piece, shape in zip(vector.split(self.numels), self.shapes)]

    def matvec(self, vector: Tensor) -> Tensor:
        """``H v`` for a flat vector ``v`` of length :attr:`dim`."""
        if vector.shape != (self.dim,):
            raise ValueError(f"vector must have shape ({self.dim},), got {tuple(vector.shape)}")
        if self._mode is None:
            with self:
                return self.matvec(vector)
        pieces = self.unflatten(vector.to(device=self.device, dtype=self.dtype).contiguous())
        with torch.enable_grad():
            if self.batch_size >= len(self.x):
                if self._gradient is None:
                    self._gradient = _gradient_with_graph(self.model, self.loss_fn, self.x, self.y, self.params)
                product = _differentiate_inner_product(self._gradient, self.params, pieces, retain_graph=True)
            else:
                product = [torch.zeros_like(p) for p in self.params]
                for start in range(0, len(self.x), self.batch_size):
                    x, y = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
                    gradient = _gradient_with_graph(self.model, self.loss_fn, x, y, self.params)
                    part = _differentiate_inner_product(gradient, self.params, pieces, retain_graph=False)
                    for total, piece in zip(product, part):
                        total.add_(piece, alpha=len(x) / len(self.x))
        self.matvecs += 1
        return flatten(product)

    __call__ = matvec


def hvp(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    vector: list[Tensor],
    params: Sequence[Tensor] | None = None,
) -> list[Tensor]:
    """The Hessian of the mean loss times ``vector`` (one tensor per parameter), in evaluation mode.

    Two calls of ``torch.autograd.grad``: the gradient with ``create_graph=True``, then the gradient of
    ``<gradient, vector>`` (a vector-Jacobian product of the gradient with ``vector``). ``params`` defaults to
    the model's trainable parameters.
    """
    operator = HessianOperator(model, loss_fn, x, y, params)
    if len(vector) != len(operator.shapes) or any(v.shape != s for v, s in zip(vector, operator.shapes)):
        raise ValueError("vector must hold one tensor per parameter, each of the parameter's shape")
    return operator.unflatten(operator.matvec(flatten(vector)))


def full_hessian(
    model: nn.Module, x: Tensor, y: Tensor, loss_fn: LossFn = F.cross_entropy, max_dim: int = 10_000
) -> Tensor:
    """The explicit ``dim x dim`` Hessian over the trainable parameters, for tiny models and tests.

    Built by ``torch.func.hessian`` on a function of the flat parameter vector that calls the model through
    ``functional_call``; coordinates follow ``trainable_parameters(model)``. ``max_dim`` guards against asking for
    a matrix that cannot fit in memory.
    """
    names, params = trainable_names(model), trainable_parameters(model)
    if not params:
        raise ValueError("model has no trainable parameters (none with requires_grad=True)")
    numels = [p.numel() for p in params]
    if sum(numels) > max_dim:
        raise ValueError(f"the model has {sum(numels)} parameters, more than max_dim={max_dim}: use HessianOperator")

    def loss_at(flat: Tensor) -> Tensor:
        tensors = {name: piece.view(p.shape) for name, p, piece in zip(names, params, flat.split(numels))}
        return loss_fn(functional_call(model, tensors, (x,)), y)

    flat = flatten([p.detach() for p in params])
    with evaluation_mode(model):
        return torch.func.hessian(loss_at)(flat)


def top_eigenvalues(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn = F.cross_entropy,
    k: int = 1,
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    *,
    which: str = "algebraic",
    params: Sequence[Tensor] | None = None,
    batch_size: int | None = None,
) -> EigenResult:
    """The ``k`` largest eigenvalues of the Hessian of the mean loss, with eigenvectors shaped like the parameters.

    ``method="lanczos"`` (default) runs :func:`lanczos_eigenpairs` with up to ``max_iter`` steps;
    ``method="power"`` runs :func:`power_iteration` with up to ``max_iter`` iterations per eigenpair. Both stop
    when ``||H v - lambda v|| <= tol |lambda|`` for every wanted pair. "Largest" is by value (negative
    eigenvalues rank last); ``which="magnitude"`` ranks by absolute value. ``batch_size`` evaluates the loss in
    chunks (see :class:`HessianOperator`).
    """
    check_choice("method", method, EIGEN_METHODS)
    finder = lanczos_eigenpairs if method == "lanczos" else power_iteration
    with HessianOperator(model, loss_fn, x, y, params, batch_size) as operator:
        result = finder(
            operator.matvec, operator.dim, k, tol=tol, max_iter=max_iter, seed=seed, which=which,
            dtype=operator.dtype, device=operator.device,
        )
    result.eigenvectors = [operator.unflatten(vector) for (vector,) in result.eigenvectors]
    return result


def hessian_trace(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn = F.cross_entropy,
    samples: int = 100,
    method: str = "hutchinson",
    seed: int = 0,
    *,
    params: Sequence[Tensor] | None = None,
    batch_size: int | None = None,
) -> TraceResult:
    """The trace of the Hessian of the mean loss by :func:`hutchinson` or :func:`hutch_plus_plus` (``"hutch++"``).

    ``samples`` is the number of Hessian-vector products; the result carries the estimate's standard error.
    """
    check_choice("method", method, TRACE_METHODS)
    estimator = hutchinson if method == "hutchinson" else hutch_plus_plus
    with HessianOperator(model, loss_fn, x, y, params, batch_size) as operator:
        return estimator(operator.matvec, operator.dim, samples, seed, dtype=operator.dtype, device=operator.device)


def spectral_density(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn = F.cross_entropy,
    lanczos_steps: int = 80,
    runs: int = 4,
    seed: int = 0,
    grid: np.ndarray | None = None,
    sigma: float | None = None,
    *,
    params: Sequence[Tensor] | None = None,
    batch_size: int | None = None,
) -> Density:
    """The eigenvalue density of the Hessian of the mean loss by stochastic Lanczos quadrature (:func:`slq`).

    Costs ``runs * lanczos_steps`` Hessian-vector products and a ``lanczos_steps x dim`` basis per run.
    """
    with HessianOperator(model, loss_fn, x, y, params, batch_size) as operator:
        return slq(
            operator.matvec, operator.dim, lanczos_steps, runs, seed, grid=grid, sigma=sigma,
            dtype=operator.dtype, device=operator.device,
        )


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
    result = top_eigenvalues(model, x, y, loss_fn=loss_fn, k=k, seed=seed)
    params = trainable_parameters(model)
    directions = [[t.detach().to(dtype=p.dtype, device=p.device) for t, p in zip(vector, params)] for vector in result.eigenvectors]
    return directions, np.asarray(result.eigenvalues)
