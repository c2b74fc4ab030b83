"""The Hessian of a network split at its first layer, ``H = P^T M P``, and curvature computed on that layer's
output instead of its weights.

Let the first layer be a ``Linear`` layer on a fixed input ``X`` (``n`` samples of ``d`` features; with its bias
among the parameters, ``X`` gains a column of ones and ``d~ = d + 1``). Its output ``Z = X W~^T`` (``n x out``,
``W~ = [W | b]``) is linear in its weights, and the loss is ``L(W~, theta) = l(X W~^T, theta)`` for the rest of
the network ``l`` with parameters ``theta``. Differentiating twice, with no second-order term from the linear
layer,

    H = P^T M P,    P (V~, v_theta) = (X V~^T, v_theta),

where ``M`` is the Hessian of ``l`` in ``(Z, theta)``. A Hessian-vector product through autograd multiplies the
data by a weight-sized matrix twice (``X V^T`` forward, ``U^T X`` backward): ``2 n d~ out`` multiply-adds, 92%
of the work for the book's MLP. Split at the first layer, less is needed:

- **Eigenvalues and density.** ``H``'s nonzero eigenvalues are those of ``M G`` with ``G = P P^T = (X X^T) (+) I``
  (``X X^T`` the ``n x n`` Gram matrix of the samples), an operator on vectors ``u = (u_Z, u_theta)`` that is
  self-adjoint in the inner product ``<u, w>_G = u^T G w``, and ``H P^T u = P^T (M G u)``. Lanczos in that inner
  product (:func:`dldna.linalg.lanczos_eigenpairs` with ``metric=G``) costs one product with the Gram matrix
  per step, ``n^2 out`` multiply-adds: three times fewer for 256 FashionMNIST images, 1.5 times for 1024, and
  fewer whenever ``n < 2 d~``. Eigenvectors go back to the weights as ``P^T u``, unit length in the weights
  because ``|P^T u|^2 = u^T G u``.
- **Trace.** The block of the first layer's weight is ``(X V^T)^T M_ZZ (X V^T)``: one product of the data per
  probe instead of two (:meth:`SplitHessian.block_forms`).

Everything is exact: the same Hessian in other coordinates, checked against ``torch.func.hessian`` in the tests.
:func:`split_point` says whether a model can be split (a first ``Linear`` layer whose input the parameters do
not change, on 2-D inputs, with its weight among the parameters), or why not.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dldna.landscape.first_layer import FirstLayer, SubstitutedOutput, find_first_layer, layer_input
from dldna.landscape.params import flatten
from dldna.landscape.products import (
    block_quadratic_forms,
    differentiate_inner_product,
    gradient_with_graph,
    mixed_start,
    output_direction,
)
from dldna.train.run import LossFn, evaluation_mode


def split_point(model: nn.Module, x: Tensor, params: Sequence[Tensor]) -> tuple[FirstLayer, Tensor] | str:
    """The first layer to split the Hessian in ``params`` at, with the input it receives from ``x``; or a
    sentence saying why the model cannot be split."""
    names = {id(p): name for name, p in model.named_parameters()}
    if any(id(p) not in names for p in params):
        return "params must be parameters of the model"
    with evaluation_mode(model):
        layer = find_first_layer(model, x, [names[id(p)] for p in params])
        if layer is None:
            return "the model has no first Linear layer whose input the parameters do not change, called once"
        if not isinstance(layer.module, nn.Linear):
            return f"its first layer is a {type(layer.module).__name__}, not a Linear layer"
        if not any(p is layer.module.weight for p in params):
            return "the first layer's weight is not among params"
        inputs = layer_input(model, layer, x)
    if inputs.dim() != 2:
        return f"the first layer must receive one feature vector per sample, not a tensor of shape {tuple(inputs.shape)}"
    return layer, inputs


def gram_is_cheaper(inputs: Tensor, bias: bool) -> bool:
    """Whether a Lanczos step on the Gram matrix (``n^2 out``) costs less than a Hessian-vector product's two
    products of the data (``2 n d~ out``)."""
    samples, features = inputs.shape
    return samples < 2 * (features + int(bias))


class SplitHessian:
    """The Hessian of the mean loss ``loss_fn(model(x), y)`` in ``params``, split at ``layer`` (module docstring).

    Vectors of the reduced space are flat ``u = (u_Z, u_theta)``: the layer's output (``n x out``, row-major)
    followed by the other parameters in ``params`` order; :attr:`dim` is their length. :meth:`matvec` applies
    ``M``, :meth:`metric` applies ``G``, :meth:`lift` maps ``u`` to the flat parameter vector ``P^T u`` and
    :meth:`project` a parameter vector to the ``u`` whose lift is its component in the range of ``P^T``.

    Used as a context manager, like :class:`~dldna.landscape.hessian.HessianOperator`: the model is in
    evaluation mode for the block and the graph of the gradient is built once on entry; the model's modes are
    restored and its parameters and ``.grad`` are left untouched.
    """

    def __init__(
        self, model: nn.Module, loss_fn: LossFn, x: Tensor, y: Tensor, params: Sequence[Tensor], layer: FirstLayer, inputs: Tensor
    ) -> None:
        self.model, self.loss_fn, self.x, self.y, self.layer, self.inputs = model, loss_fn, x, y, layer, inputs
        self.params = list(params)
        weight, bias = layer.module.weight, layer.module.bias
        self.weight_index = next(i for i, p in enumerate(self.params) if p is weight)
        self.bias_index = next((i for i, p in enumerate(self.params) if bias is not None and p is bias), None)
        first = {self.weight_index, self.bias_index} - {None}
        self.rest = [p for i, p in enumerate(self.params) if i not in first]
        self.samples, self.units = len(inputs), weight.shape[0]
        self.dim = self.samples * self.units + sum(p.numel() for p in self.rest)
        self.param_dim = sum(p.numel() for p in self.params)
        self.dtype, self.device = weight.dtype, weight.device
        self.matvecs = 0
        self._mode: ExitStack | None = None

    def __enter__(self) -> SplitHessian:
        if self._mode is not None:
            raise RuntimeError("this SplitHessian is already in use in a with-block")
        self._mode = ExitStack()
        self._mode.enter_context(evaluation_mode(self.model))
        module = self.layer.module
        with torch.no_grad():
            output = F.linear(self.inputs, module.weight, module.bias)
        columns = [self.inputs] + ([torch.ones_like(self.inputs[:, :1])] if self.bias_index is not None else [])
        self.extended = torch.cat(columns, dim=1)  # X~: the data, and a column of ones for the bias
        self.gram = self.extended @ self.extended.T
        self.output = output.requires_grad_()
        with torch.enable_grad(), SubstitutedOutput(self.layer) as substitution:
            substitution.value = self.output
            self.predictions = self.model(self.x)
            self.gradient = gradient_with_graph(self.loss_fn(self.predictions, self.y), [self.output, *self.rest])
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._mode is not None:
            self._mode.close()
        self._mode = None
        self.gradient, self.output, self.predictions, self.gram, self.extended = (), None, None, None, None

    def _pieces(self, vector: Tensor) -> list[Tensor]:
        """A reduced vector cut into the layer's output and the other parameters (views, no copy)."""
        sizes = [self.samples * self.units] + [p.numel() for p in self.rest]
        shapes = [(self.samples, self.units)] + [p.shape for p in self.rest]
        return [piece.view(shape) for piece, shape in zip(vector.split(sizes), shapes)]

    def metric(self, vector: Tensor) -> Tensor:
        """``G u``: the Gram matrix times the output part, the other parameters unchanged."""
        split = self.samples * self.units
        image = torch.empty_like(vector)
        torch.mm(self.gram, vector[:split].view(self.samples, self.units), out=image[:split].view(self.samples, self.units))
        image[split:] = vector[split:]
        return image

    def matvec(self, vector: Tensor) -> Tensor:
        """``M p``: the Hessian of the rest of the network in ``(Z, theta)`` times ``p``."""
        if self._mode is None:
            raise RuntimeError("use SplitHessian in a with-block")
        if vector.shape != (self.dim,):
            raise ValueError(f"vector must have shape ({self.dim},), got {tuple(vector.shape)}")
        with torch.enable_grad():
            product = differentiate_inner_product(self.gradient, [self.output, *self.rest], self._pieces(vector))
        self.matvecs += 1
        return flatten(product)

    def start_vector(self, seed: int) -> Tensor:
        """A Lanczos start from ``seed``, as :meth:`HessianOperator.start_vector` draws it: ``J^T u`` in the reduced
        coordinates (the gradient of ``<outputs, u>`` in the layer's output and the other parameters, whose lift is
        ``J^T u`` in the weights), plus a Gaussian vector of about the same length in the metric."""
        generator = torch.Generator().manual_seed(int(seed))
        if isinstance(self.predictions, Tensor):
            with torch.enable_grad():
                direction = flatten(output_direction(self.predictions, [self.output, *self.rest], generator)).detach()
        else:
            direction = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        # The metric's norm, with the Gram matrix replaced by the mean of its diagonal: no product needed.
        scale = float(self.gram.diagonal().mean())
        split = self.samples * self.units

        def norm(v: Tensor) -> Tensor:
            return (scale * v[:split].square().sum() + v[split:].square().sum()).sqrt()

        return mixed_start(direction, generator, norm)

    def lift(self, vector: Tensor) -> Tensor:
        """``P^T u``: a reduced vector as a flat vector of the parameters (in ``params`` order)."""
        output, *rest = self._pieces(vector)
        first = output.T @ self.extended  # (out, d~): the weight, then the bias column
        pieces: list[Tensor] = []
        remaining = iter(rest)
        for index in range(len(self.params)):
            if index == self.weight_index:
                pieces.append(first[:, : self.inputs.shape[1]])
            elif index == self.bias_index:
                pieces.append(first[:, -1])
            else:
                pieces.append(next(remaining))
        return flatten(pieces)

    def project(self, vector: Tensor) -> Tensor:
        """The reduced ``u`` with ``P^T u`` the orthogonal projection of the parameter vector ``vector`` on the
        range of ``P^T``; the rest of ``vector`` lies in the Hessian's null space.

        The first layer's part solves ``X~^T u_Z = V~^T`` in the least-squares sense: a rank-revealing QR on the
        CPU (the data may have constant pixels, so ``X~`` need not have full rank), the Gram matrix's
        pseudo-inverse elsewhere (``torch.linalg.lstsq`` on CUDA assumes full rank).
        """
        pieces = vector.split([p.numel() for p in self.params])
        weight = pieces[self.weight_index].view(self.units, -1)
        target = torch.cat([weight] + ([pieces[self.bias_index][:, None]] if self.bias_index is not None else []), dim=1).T
        if self.device.type == "cpu":
            output = torch.linalg.lstsq(self.extended.T, target, driver="gelsy").solution
        else:
            values, vectors = torch.linalg.eigh(self.gram.double())
            kept = values > values.max() * self.samples * torch.finfo(self.dtype).eps
            inverse = torch.where(kept, 1 / torch.where(kept, values, 1), 0)
            output = (((vectors * inverse) @ vectors.T).to(self.dtype)) @ (self.extended @ target)
        rest = [piece for i, piece in enumerate(pieces) if i not in (self.weight_index, self.bias_index)]
        return torch.cat([output.reshape(-1), *rest])

    def block_forms(self, probes: list[Tensor]) -> Tensor:
        """``sum_b z_b^T H_bb z_b`` for each probe, over the diagonal blocks of the parameter tensors (``probes[b]``
        holds the probes of ``params[b]`` as rows), for :func:`dldna.linalg.block_hutchinson`.

        The first layer's blocks are ``(P_b z)^T M_ZZ (P_b z)``: its weight's probes pass through the data once,
        in one matrix product for all of them, its bias's are broadcast over the samples.
        """
        count = len(probes[0])
        with torch.enable_grad():
            output_gradient, *rest_gradients = self.gradient
            weight = probes[self.weight_index].view(count * self.units, -1)
            images = (self.inputs @ weight.T).view(self.samples, count, self.units).transpose(0, 1)
            totals = block_quadratic_forms(output_gradient, self.output, images)
            if self.bias_index is not None:
                bias = probes[self.bias_index][:, None, :].expand(count, self.samples, self.units)
                totals = totals + block_quadratic_forms(output_gradient, self.output, bias)
            rest_probes = [z for i, z in enumerate(probes) if i not in (self.weight_index, self.bias_index)]
            for gradient, param, z in zip(rest_gradients, self.rest, rest_probes):
                totals = totals + block_quadratic_forms(gradient, param, z)
        self.matvecs += count * len(probes)
        return totals
