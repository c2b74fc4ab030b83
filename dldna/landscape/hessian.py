"""Curvature of a network's loss through Hessian-vector products: top eigenvalues, trace, spectral density and
the top eigenvectors as landscape directions.

A network with ``d`` parameters has a ``d x d`` Hessian; for the book's 435k-parameter MLP that is about 190
billion numbers, so nothing here forms it. :class:`HessianOperator` gives products ``H v``, each costing about two
gradient evaluations (:mod:`dldna.landscape.products`). The matrix-free algorithms of :mod:`dldna.linalg` run on
it:

- :func:`top_eigenvalues`: the largest eigenvalues (the sharpness that limits the stable learning rate), by
  Lanczos or power iteration; :func:`hessian_directions` turns their eigenvectors into landscape directions.
- :func:`hessian_trace`: the sum of all curvatures, from the diagonal blocks of the parameter tensors (the
  default), by plain Hutchinson or by Hutch++.
- :func:`spectral_density`: the whole eigenvalue density by stochastic Lanczos quadrature.
- :func:`full_hessian`: the explicit matrix for tiny models, the reference the tests compare against.

Where the model's first layer is a ``Linear`` layer on the data, the Lanczos-based routines and the block trace
do less work on the same Hessian split at that layer, ``H = P^T M P`` (:mod:`dldna.landscape.split`):
``split=None`` (the default) chooses by the work each needs, ``True`` insists, ``False`` stays in the
parameters.

The operator's vectors live in the parameters' dtype and device. Analysis functions put the model in
evaluation mode while they run (dropout off, batch norm on its running statistics, which then stay untouched),
restore every module's mode afterwards and never write to parameters or their ``.grad``.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from dldna.landscape.params import Direction, flatten, trainable_names, trainable_parameters, unflatten
from dldna.landscape.products import (
    block_quadratic_forms,
    differentiate_inner_product,
    gradient_with_graph,
    mixed_start,
    output_direction,
)
from dldna.landscape.split import SplitHessian, gram_is_cheaper, split_point
from dldna.linalg import (
    Density,
    EigenResult,
    TraceResult,
    Tridiagonal,
    block_hutchinson,
    check_choice,
    check_int,
    check_slq_arguments,
    density_from_quadrature,
    gauss_quadrature,
    hutch_plus_plus,
    hutchinson,
    lanczos,
    lanczos_eigenpairs,
    lanczos_recurrence,
    power_iteration,
    rademacher,
    slq,
)
from dldna.train.run import LossFn, evaluation_mode

EIGEN_METHODS = ("lanczos", "power")
TRACE_METHODS = ("blocks", "hutchinson", "hutch++")


class HessianOperator:
    """The Hessian of the mean loss ``loss_fn(model(x), y)`` as a linear operator on flat parameter vectors.

    ``matvec(v)`` returns ``H v`` for a flat ``v`` of length :attr:`dim`, counting the products in
    :attr:`matvecs`. ``loss_fn`` must average over the batch (as ``F.cross_entropy`` does by default), so that
    with ``batch_size`` the data are processed in chunks and their products weighted by chunk size, which
    gives the Hessian of the loss on all of ``x`` at the memory cost of one chunk.

    Used as a context manager, the operator keeps the model in evaluation mode for the block and, when all data
    fit in one chunk, computes the gradient graph once and differentiates it again for each product (it raises
    if the parameters are changed in place meanwhile). Called outside a block, each product sets and restores
    the modes itself. Either way the model's modes are restored and its parameters and ``.grad`` are left
    untouched. Like :class:`~dldna.landscape.split.SplitHessian`, it offers :attr:`metric` (None: the plain
    inner product) and :meth:`lift` (the identity), so the routines below run on either.
    """

    metric = None

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
        self.dim = self.param_dim = sum(self.numels)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.matvecs = 0
        self._mode: ExitStack | None = None
        self._gradient: tuple[Tensor, ...] | None = None
        self._outputs: object = None

    def __enter__(self) -> HessianOperator:
        if self._mode is not None:
            raise RuntimeError("this HessianOperator is already in use in a with-block")
        self._mode = ExitStack()
        self._mode.enter_context(evaluation_mode(self.model))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._mode is not None:
            self._mode.close()
        self._mode, self._gradient, self._outputs = None, None, None

    def unflatten(self, vector: Tensor) -> list[Tensor]:
        """Split a flat vector into tensors shaped like the parameters (views, no copy)."""
        return [piece.view(shape) for piece, shape in zip(vector.split(self.numels), self.shapes)]

    def lift(self, vector: Tensor) -> Tensor:
        """The parameter vector of an operator vector: the vector itself."""
        return vector

    def _gradients(self) -> Iterator[tuple[tuple[Tensor, ...], float]]:
        """Gradients with graph and their weights: once for the whole batch (kept for the block, with the model's
        outputs), or one per chunk of ``batch_size`` samples, weighted by its share (each computed when the
        caller gets to it)."""
        if self.batch_size >= len(self.x):
            if self._gradient is None:
                self._outputs = self.model(self.x)
                self._gradient = gradient_with_graph(self.loss_fn(self._outputs, self.y), self.params)
            yield self._gradient, 1.0
            return
        for start in range(0, len(self.x), self.batch_size):
            x, y = self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            yield gradient_with_graph(self.loss_fn(self.model(x), y), self.params), len(x) / len(self.x)

    def matvec(self, vector: Tensor) -> Tensor:
        """``H v`` for a flat vector ``v`` of length :attr:`dim`."""
        if vector.shape != (self.dim,):
            raise ValueError(f"vector must have shape ({self.dim},), got {tuple(vector.shape)}")
        if self._mode is None:
            with self:
                return self.matvec(vector)
        pieces = self.unflatten(vector.to(device=self.device, dtype=self.dtype).contiguous())
        with torch.enable_grad():
            product = [torch.zeros_like(p) for p in self.params]
            for gradient, share in self._gradients():
                part = differentiate_inner_product(gradient, self.params, pieces, retain_graph=share == 1.0)
                if share == 1.0:
                    product = part
                else:
                    for total, piece in zip(product, part):
                        total.add_(piece, alpha=share)
        self.matvecs += 1
        return flatten(product)

    __call__ = matvec

    def start_vector(self, seed: int) -> Tensor:
        """A Lanczos start from ``seed``: the directions the model's outputs move in (``J^T u``, see
        :func:`~dldna.landscape.products.output_direction`), summed over the chunks of data, plus an equally
        long Gaussian vector; a Gaussian vector alone when the model's output is not one tensor."""
        if self._mode is None:
            with self:
                return self.start_vector(seed)
        generator = torch.Generator().manual_seed(int(seed))
        total = [torch.zeros_like(p) for p in self.params]
        with torch.enable_grad():
            if self.batch_size >= len(self.x):
                next(self._gradients())  # the kept graph, whose outputs serve here too
                chunks = [self._outputs]
            else:
                chunks = (self.model(self.x[start : start + self.batch_size]) for start in range(0, len(self.x), self.batch_size))
            for outputs in chunks:
                if not isinstance(outputs, Tensor):
                    total = [torch.zeros_like(p) for p in self.params]
                    break
                for accumulated, part in zip(total, output_direction(outputs, self.params, generator)):
                    accumulated.add_(part)
        return mixed_start(flatten(total).detach(), generator, torch.linalg.vector_norm)

    def block_forms(self, probes: list[Tensor]) -> Tensor:
        """``sum_b z_b^T H_bb z_b`` for each probe, over the diagonal blocks of the parameter tensors (``probes[b]``
        holds the probes of ``params[b]`` as rows), for :func:`dldna.linalg.block_hutchinson`."""
        if self._mode is None:
            with self:
                return self.block_forms(probes)
        totals = probes[0].new_zeros(len(probes[0]))
        with torch.enable_grad():
            for gradient, share in self._gradients():
                for piece, param, z in zip(gradient, self.params, probes):
                    totals = totals + share * block_quadratic_forms(piece, param, z)
        self.matvecs += len(probes[0]) * len(probes)
        return totals


def _operator(
    model: nn.Module,
    loss_fn: LossFn,
    x: Tensor,
    y: Tensor,
    params: Sequence[Tensor] | None,
    batch_size: int | None,
    split: bool | None,
    gram: bool,
) -> HessianOperator | SplitHessian:
    """The operator a routine runs on: the Hessian split at the first layer when ``split`` is True, or when it is
    None and the split does less work (``gram``: for Lanczos, which pays off only while the Gram matrix is the
    cheaper product), else the :class:`HessianOperator` in the parameters."""
    if split not in (None, True, False):
        raise ValueError(f"split must be None, True or False, got {split!r}")
    operator = HessianOperator(model, loss_fn, x, y, params, batch_size)
    if split is False:
        return operator
    point = split_point(model, x, operator.params) if operator.batch_size >= len(x) else "batch_size splits the data"
    if isinstance(point, str):
        if split:
            raise ValueError(f"split=True cannot split this Hessian at the first layer: {point}")
        return operator
    layer, inputs = point
    if split is None and gram and not gram_is_cheaper(inputs, any(p is layer.module.bias for p in operator.params)):
        return operator
    return SplitHessian(model, loss_fn, x, y, operator.params, layer, inputs)


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
    split: bool | None = None,
) -> EigenResult:
    """The ``k`` largest eigenvalues of the Hessian of the mean loss, with eigenvectors shaped like the parameters.

    ``method="lanczos"`` (default) runs :func:`~dldna.linalg.lanczos_eigenpairs` with up to ``max_iter`` steps,
    until every wanted eigenvalue's estimated error is at most ``tol |lambda|``; ``method="power"`` runs
    :func:`~dldna.linalg.power_iteration` with up to ``max_iter`` iterations per eigenpair, until
    ``||H v - lambda v|| <= tol |lambda|``. "Largest" is by value (negative eigenvalues rank last);
    ``which="magnitude"`` ranks by absolute value. ``batch_size`` evaluates the loss in chunks (see
    :class:`HessianOperator`); ``split`` chooses the operator Lanczos runs on (module docstring; power
    iteration always runs on the parameters).
    """
    check_choice("method", method, EIGEN_METHODS)
    if method == "power" and split:
        raise ValueError("split=True needs method='lanczos': power iteration runs on the parameters")
    operator = _operator(model, loss_fn, x, y, params, batch_size, False if method == "power" else split, gram=True)
    with operator:
        arguments = dict(tol=tol, max_iter=max_iter, seed=seed, which=which, dtype=operator.dtype, device=operator.device)
        if method == "power":
            result = power_iteration(operator.matvec, operator.dim, k, **arguments)
        else:
            start = operator.start_vector(seed)
            result = lanczos_eigenpairs(operator.matvec, operator.dim, k, start=start, metric=operator.metric, **arguments)
        result.eigenvectors = [unflatten(operator.lift(vector), operator.params) for (vector,) in result.eigenvectors]
    return result


def hessian_trace(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: LossFn = F.cross_entropy,
    samples: int = 100,
    method: str = "blocks",
    seed: int = 0,
    *,
    params: Sequence[Tensor] | None = None,
    batch_size: int | None = None,
    split: bool | None = None,
) -> TraceResult:
    """The trace of the Hessian of the mean loss, with the estimate's standard error.

    ``method="blocks"`` (default) runs :func:`~dldna.linalg.block_hutchinson` over the parameter tensors:
    ``samples`` probes, each a restricted product with every tensor's diagonal block. The blocks between
    tensors, which plain Hutchinson multiplies too, add nothing to the trace but most of its variance: for the
    book's MLP at initialisation one probe of the blocks is as precise as hundreds of plain ones.
    ``"hutchinson"`` and ``"hutch++"`` run :func:`~dldna.linalg.hutchinson` and
    :func:`~dldna.linalg.hutch_plus_plus` with ``samples`` products of the whole Hessian. ``split`` applies to
    ``"blocks"`` (module docstring).
    """
    check_choice("method", method, TRACE_METHODS)
    if method != "blocks" and split:
        raise ValueError("split=True needs method='blocks'")
    operator = _operator(model, loss_fn, x, y, params, batch_size, split if method == "blocks" else False, gram=False)
    with operator:
        arguments = dict(dtype=operator.dtype, device=operator.device)
        if method == "blocks":
            return block_hutchinson(operator.block_forms, [p.numel() for p in operator.params], samples, seed, **arguments)
        estimator = hutchinson if method == "hutchinson" else hutch_plus_plus
        return estimator(operator.matvec, operator.dim, samples, seed, **arguments)


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
    split: bool | None = None,
    reorthogonalize: bool = False,
) -> Density:
    """The eigenvalue density of the Hessian of the mean loss by stochastic Lanczos quadrature (:func:`slq`).

    Costs ``runs * lanczos_steps`` Hessian-vector products and memory for two vectors: Lanczos runs without
    reorthogonalization, which the quadrature does not need (:func:`~dldna.linalg.lanczos_recurrence`);
    ``reorthogonalize=True`` keeps a ``lanczos_steps x dim`` orthonormal basis per run, so that as many steps as
    the Hessian has dimensions give each eigenvalue exactly once. Split at
    the first layer (``split``, module docstring), each run's Rademacher start vector is projected on the range
    of ``P^T``: Lanczos in the reduced space gives the quadrature of that part, and what the projection removed
    lies in the Hessian's null space, a node at 0 with its share of the start vector as weight.
    """
    operator = _operator(model, loss_fn, x, y, params, batch_size, split, gram=True)
    with operator:
        if isinstance(operator, HessianOperator):
            return slq(
                operator.matvec, operator.dim, lanczos_steps, runs, seed, grid=grid, sigma=sigma,
                reorthogonalize=reorthogonalize, dtype=operator.dtype, device=operator.device,
            )
        dim, steps, runs = check_slq_arguments(operator.param_dim, lanczos_steps, runs, sigma)
        generator = torch.Generator().manual_seed(int(seed))
        all_nodes, all_weights = [], []
        for _ in range(runs):
            start = rademacher((dim,), generator, dtype=operator.dtype, device=operator.device)
            reduced = operator.project(start)
            kept = float(torch.dot(reduced, operator.metric(reduced)) / torch.dot(start, start))
            # Drawn either way, so that each run starts from the same vector with and without reorthogonalization.
            reduced_steps, restart_seed = min(steps, operator.dim), int(torch.randint(2**31, (), generator=generator))
            if reorthogonalize:
                coefficients: Tridiagonal = lanczos(
                    operator.matvec, operator.dim, reduced_steps, seed=restart_seed, start=reduced, metric=operator.metric,
                    dtype=operator.dtype, device=operator.device,
                )
            else:
                coefficients = lanczos_recurrence(operator.matvec, reduced, reduced_steps, metric=operator.metric)
            nodes, weights = gauss_quadrature(coefficients, reduced_steps)
            all_nodes.append(np.append(nodes, 0.0))
            all_weights.append(np.append(weights * kept, 1.0 - kept))
        return density_from_quadrature(np.stack(all_nodes), np.stack(all_weights), dim, operator.matvecs, grid, sigma)


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
