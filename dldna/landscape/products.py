"""Hessian-vector products by differentiating twice: the autograd calls every curvature routine is built from.

Differentiate the loss once keeping the graph (``create_graph=True``), then differentiate the inner product
``<grad L, v>`` a second time (Pearlmutter, 1994). The second pass runs backwards through both the forward pass
and the first backward pass, so a product costs about two gradients; the graph of the first gradient is built
once and differentiated again for every vector. Differentiating only the gradient of one tensor with respect to
that tensor gives a product with one diagonal block of the Hessian, the part a trace needs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor


def gradient_with_graph(loss: Tensor, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The gradient of ``loss`` with respect to ``inputs``, keeping the graph that produced it so that it can be
    differentiated again (zeros for inputs the loss does not use)."""
    return torch.autograd.grad(loss, list(inputs), create_graph=True, allow_unused=True, materialize_grads=True)


def differentiate_inner_product(
    gradient: Sequence[Tensor], inputs: Sequence[Tensor], vector: Sequence[Tensor], retain_graph: bool = True
) -> list[Tensor]:
    """``H v`` as the gradient of ``<gradient, v>`` with respect to ``inputs``, ``v`` held constant.

    Passing ``v`` as ``grad_outputs`` makes autograd differentiate exactly that inner product without
    building it as a graph node first.
    """
    pairs = [(g, v) for g, v in zip(gradient, vector) if g.requires_grad]
    if not pairs:  # the gradient does not depend on the inputs: the loss is linear in them
        return [torch.zeros_like(t) for t in inputs]
    return list(
        torch.autograd.grad(
            [g for g, _ in pairs], list(inputs), grad_outputs=[v for _, v in pairs], retain_graph=retain_graph,
            allow_unused=True, materialize_grads=True,
        )
    )


def block_quadratic_forms(gradient: Tensor, input: Tensor, probes: Tensor) -> Tensor:
    """``z^T H_bb z`` for each probe ``z`` (rows of ``probes``, each shaped like ``input`` once reshaped), where
    ``H_bb`` is the diagonal block of the Hessian belonging to ``input`` and ``gradient`` its gradient with graph.

    Only the paths from ``input`` to its own gradient are differentiated, which skips the rest of the Hessian.
    """
    if not gradient.requires_grad:
        return probes.new_zeros(len(probes))
    forms = []
    for probe in probes:
        probe = probe.reshape(input.shape)
        (product,) = torch.autograd.grad(gradient, input, probe, retain_graph=True, allow_unused=True, materialize_grads=True)
        forms.append(torch.sum(probe * product))
    return torch.stack(forms)


def output_direction(outputs: Tensor, inputs: Sequence[Tensor], generator: torch.Generator) -> list[Tensor]:
    """``J^T u``: the gradient of ``<outputs, u>`` with respect to ``inputs`` for a Gaussian ``u`` drawn from
    ``generator``, a random combination of the directions in which the model's outputs move.

    The Gauss-Newton part of the Hessian, ``J^T H_out J``, acts within the span of these directions, and for a
    classification loss it holds the top of the spectrum (Papyan, 2020), so Lanczos started there finds the
    largest eigenvalues in fewer steps.
    """
    weights = torch.randn(outputs.shape, generator=generator, dtype=outputs.dtype).to(outputs.device)
    return list(torch.autograd.grad(outputs, list(inputs), weights, retain_graph=True, allow_unused=True, materialize_grads=True))


def mixed_start(direction: Tensor, generator: torch.Generator, norm: Callable[[Tensor], Tensor]) -> Tensor:
    """``direction`` plus a Gaussian vector of the same ``norm``: a Lanczos start that keeps the direction's head
    start and leaves no eigenvector without a share (a start orthogonal to the top eigenvector would never find
    it). Only the proportion matters, so ``norm`` may be a cheap stand-in for the operator's own."""
    noise = torch.randn(direction.shape, generator=generator, dtype=direction.dtype).to(direction.device)
    length = norm(direction)
    return noise / norm(noise) + (direction / length if bool(length > 0) else 0)
