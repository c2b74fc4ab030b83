"""The first affine layer of a network: where most of a small network's arithmetic happens, and much of it
can be skipped.

A ``Linear`` or convolution layer computes ``z = W x + b``: its output is *affine in its parameters*. When its
input ``x`` is fixed (the data, or anything computed from the data without the parameters being studied), every
question about many parameter values can be asked of ``z`` instead:

- on a plane ``W = W0 + a D1 + b D2``, ``z = W0 x + a D1 x + b D2 x``: three products of the data replace one per
  grid point (:mod:`dldna.landscape.surface`);
- the Hessian factors as ``H = P^T M P``, ``P`` the linear map from the layer's parameters to its output and ``M``
  the Hessian of the rest of the network, so curvature can be computed on ``z`` (:mod:`dldna.landscape.split`).

For the book's 784-512-64-10 MLP the first layer holds 92% of the multiply-adds of a forward pass.
:func:`find_first_layer` finds such a layer in any model by watching one forward pass; :func:`layer_input`
captures what it receives, and :class:`SubstitutedOutput` makes it return a given output without computing
anything. The model itself is never changed: only forward hooks are added, and removed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from dldna.train.run import evaluation_mode

AFFINE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layers whose output is affine in their parameters for a fixed input."""


@dataclass(frozen=True)
class FirstLayer:
    """An affine layer of a model (``module``), with the names of its weight and bias in ``model.named_parameters()``
    (``bias`` is None for a layer without one)."""

    module: nn.Module
    weight: str
    bias: str | None

    @property
    def names(self) -> tuple[str, ...]:
        """The layer's parameter names."""
        return (self.weight,) if self.bias is None else (self.weight, self.bias)

    def apply(self, inputs: Tensor, weights: Tensor) -> Tensor:
        """The layer's output without bias, ``W x``, for each weight of a stack ``(k, *weight.shape)``: shape
        ``(k, *output.shape)``. Weights sharing the layer's input become one matrix product (one convolution)."""
        count = len(weights)
        if isinstance(self.module, nn.Linear):
            merged = F.linear(inputs, weights.reshape(-1, weights.shape[-1]))
            return merged.unflatten(-1, (count, -1)).movedim(-2, 0)
        if self.module.groups > 1:  # stacking output channels would regroup them: one convolution per weight
            return torch.stack([self.module._conv_forward(inputs, weight, None) for weight in weights])
        merged = self.module._conv_forward(inputs, weights.flatten(0, 1), None)
        return merged.unflatten(1, (count, -1)).movedim(1, 0)

    def add_bias(self, outputs: Tensor, biases: Tensor) -> Tensor:
        """``outputs`` (a stack ``(k, *output.shape)`` as :meth:`apply` returns) plus one bias ``(out,)`` per
        output, ``biases`` of shape ``(k, out)``, added along the output channels."""
        spatial = 0 if isinstance(self.module, nn.Linear) else self.module.weight.dim() - 2
        shape = (len(biases),) + (1,) * (outputs.dim() - 2 - spatial) + (biases.shape[1],) + (1,) * spatial
        return outputs + biases.reshape(shape)


def find_first_layer(model: nn.Module, x: Tensor, varying: Collection[str]) -> FirstLayer | None:
    """The first ``Linear``/convolution layer that ``model``'s forward pass on ``x`` calls with an input that none
    of the entries named in ``varying`` (parameters or buffers) changes; None when there is no such layer.

    The layer must be called exactly once and its parameters must reach the output only through that call (no
    weight tying, no direct use of ``layer.weight``), so that the model's output is a function of the layer's
    output and the other entries. Checked on the first sample of ``x`` in evaluation mode: every affine layer's
    input is recorded twice, with the entries in ``varying`` as they are and all moved (batch norm's running
    statistics cannot be differentiated, so a perturbation stands in for a derivative).
    """
    parameter_names = {id(p): name for name, p in model.named_parameters()}
    entries = dict(model.named_parameters()) | dict(model.named_buffers())
    probe = x[:1]
    # Every entry moves up, so a variance (or any non-negative entry) stays non-negative.
    perturbed = {name: (e := entries[name].detach()) + e.abs() + 0.5 for name in varying if entries[name].is_floating_point()}
    base, moved = _affine_inputs(model, probe, {}), _affine_inputs(model, probe, perturbed)
    if [module for module, _ in base] != [module for module, _ in moved]:
        return None
    chosen = next((module for (module, a), (_, b) in zip(base, moved) if torch.equal(a, b)), None)
    if chosen is None or id(chosen.weight) not in parameter_names or sum(m is chosen for m, _ in base) != 1:
        return None
    bias = getattr(chosen, "bias", None)
    if bias is not None and id(bias) not in parameter_names:
        return None
    layer = FirstLayer(chosen, parameter_names[id(chosen.weight)], None if bias is None else parameter_names[id(bias)])
    return layer if _reaches_output_only_through_itself(model, layer, probe) else None


def _affine_inputs(model: nn.Module, x: Tensor, entries: dict[str, Tensor]) -> list[tuple[nn.Module, Tensor]]:
    """Every call of an affine layer in ``model``'s forward pass on ``x`` (with ``entries`` in place of the
    model's own), in order, with the input it received."""
    calls: list[tuple[nn.Module, Tensor]] = []

    def record(module: nn.Module, args: tuple[Any, ...]) -> None:
        calls.append((module, args[0].detach().clone()))

    handles = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, AFFINE_LAYERS)]
    try:
        with torch.no_grad(), evaluation_mode(model):
            functional_call(model, entries, (x,))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _reaches_output_only_through_itself(model: nn.Module, layer: FirstLayer, probe: Tensor) -> bool:
    """Whether the layer's parameters leave the output unchanged once the layer's own output is held fixed."""
    entries = dict(model.named_parameters())
    leaves = {name: entries[name].detach().requires_grad_() for name in layer.names}
    handle = layer.module.register_forward_hook(lambda module, args, output: output.detach())
    try:
        with torch.enable_grad(), evaluation_mode(model):
            output = functional_call(model, leaves, (probe,))
    finally:
        handle.remove()
    outputs = [t for t in (output if isinstance(output, (tuple, list)) else [output]) if t.requires_grad]
    if not outputs:
        return True
    grads = torch.autograd.grad(outputs, list(leaves.values()), [torch.ones_like(t) for t in outputs], allow_unused=True)
    return all(g is None for g in grads)


class _Captured(Exception):
    """Raised by a hook to stop a forward pass once the first layer's input is known."""

    def __init__(self, value: Tensor) -> None:
        super().__init__("captured")
        self.value = value


def layer_input(model: nn.Module, layer: FirstLayer, x: Tensor) -> Tensor:
    """What ``layer`` receives when ``model`` runs on ``x`` (in the model's current mode); the forward pass stops
    there, so the rest of the network is not computed."""

    def capture(module: nn.Module, args: tuple[Any, ...]) -> None:
        raise _Captured(args[0].detach())

    handle = layer.module.register_forward_pre_hook(capture, prepend=True)  # before any substitution
    try:
        with torch.no_grad():
            model(x)
    except _Captured as captured:
        return captured.value
    finally:
        handle.remove()
    raise RuntimeError("the model's forward pass did not call its first layer")


class SubstitutedOutput:
    """Within the block, ``layer`` returns :attr:`value` (set before each forward pass) instead of computing its
    output; its input is cut to zero samples, so it costs nothing. Works under ``torch.func.vmap``, where
    :attr:`value` may be a batch of outputs."""

    def __init__(self, layer: FirstLayer) -> None:
        self.layer = layer
        self.value: Tensor | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def __enter__(self) -> SubstitutedOutput:
        module = self.layer.module
        self._handles = [
            module.register_forward_pre_hook(lambda m, args: (args[0][:0], *args[1:])),
            module.register_forward_hook(lambda m, args, output: self.value),
        ]
        return self

    def __exit__(self, *exc_info: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self.value = [], None
