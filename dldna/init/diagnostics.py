"""What an initialisation does to a deep network, measured: signals through depth and the spectra of the weights.

:func:`signal_propagation` runs one forward and backward pass with hooks and returns per-layer activation and
gradient statistics through depth; :func:`compare_schemes` does it for a :func:`deep_mlp` under each scheme (the
data of the chapter's depth figures, drawn by :mod:`dldna.viz.init`); :func:`weight_metrics` gives condition
number, spectral norm and effective rank of each weight matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dldna.activations import make
from dldna.init.schemes import apply, layers_and_activations


def deep_mlp(depth: int, width: int, activation: str = "relu", in_features: int | None = None, bias: bool = True) -> nn.Sequential:
    """``depth`` blocks of ``Linear(width) -> activation`` (a fresh module each), the plain deep stack of the
    signal-propagation experiments. ``activation="linear"`` gives a deep linear network."""
    if depth < 1:
        raise ValueError(f"Invalid depth: depth={depth} (must be >= 1)")
    if width < 1:
        raise ValueError(f"Invalid width: width={width} (must be >= 1)")
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [nn.Linear((in_features or width) if index == 0 else width, width, bias=bias), make(activation)]
    return nn.Sequential(*layers)


@dataclass
class SignalPropagation:
    """Per-layer statistics of one forward and backward pass, index ``l`` for the ``l``-th Linear/Conv layer.

    ``preactivation_*``: the layer's output; ``activation_*``: the output of the activation that follows it (the
    layer's output when none does); ``gradient_std``: std of the loss gradient w.r.t. the layer's output (the
    backward signal); ``weight_gradient_std``: std of the gradient w.r.t. its weight; ``dead_fraction``: units of
    the activation output that are zero on every sample; ``activation_samples``: evenly strided values of each
    activation output, for histograms.
    """

    layers: list[str]
    preactivation_mean: np.ndarray
    preactivation_std: np.ndarray
    activation_mean: np.ndarray
    activation_std: np.ndarray
    gradient_std: np.ndarray
    weight_gradient_std: np.ndarray
    dead_fraction: np.ndarray
    activation_samples: list[np.ndarray] = field(repr=False)


def dead_unit_fraction(activations: Tensor) -> float:
    """Fraction of units that output exactly 0 on every sample of the batch: dead ReLUs.

    ``activations`` is ``(N, features)`` or ``(N, C, *spatial)``; for feature maps the unit is a channel (a dead
    filter is zero at every position of every image).
    """
    if activations.dim() < 2:
        raise ValueError(f"activations must be (N, features) or (N, C, ...), got shape {tuple(activations.shape)}")
    per_unit = activations.detach().transpose(0, 1).reshape(activations.shape[1], -1)
    return (per_unit == 0).all(dim=1).double().mean().item()


def _strided_sample(values: Tensor, max_samples: int) -> np.ndarray:
    flat = values.detach().flatten()
    step = max(1, math.ceil(flat.numel() / max_samples))
    return flat[::step].double().cpu().numpy()


def _keep_output(store: dict[int, Tensor], index: int) -> Callable:
    """Forward hook that stores a layer's output and passes a copy on, so that an in-place activation after the
    layer (``nn.ReLU(inplace=True)``) cannot overwrite the stored tensor; gradients flow through the copy."""

    def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        store[index] = output
        return output.clone()

    return hook


def signal_propagation(
    model: nn.Module,
    inputs: Tensor,
    loss_fn: Callable[[Tensor], Tensor] | None = None,
    max_samples: int = 4096,
    generator: torch.Generator | None = None,
) -> SignalPropagation:
    """Forward ``inputs`` through ``model`` and backpropagate, recording per-layer activation and gradient
    statistics with hooks (see :class:`SignalPropagation`).

    Without ``loss_fn`` the backward pass starts from a standard normal vector ``g`` at the output (the loss is
    ``sum(g * output)``), so the gradient statistics measure the backward gain of the network alone. The model is
    left as it was: hooks are removed, ``.grad`` is untouched (``torch.autograd.grad``) and buffers such as batch
    norm's running statistics are restored.
    """
    pairs = layers_and_activations(model)
    if not pairs:
        raise ValueError("signal_propagation needs a model with Linear or Conv layers")
    outputs: dict[int, Tensor] = {}
    activated: dict[int, Tensor] = {}
    handles = []
    saved_buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    try:
        for index, (_, layer, activation) in enumerate(pairs):
            handles.append(layer.register_forward_hook(_keep_output(outputs, index)))
            if activation is not None:
                handles.append(activation.register_forward_hook(lambda m, i, o, index=index: activated.__setitem__(index, o)))
        with torch.enable_grad():
            result = model(inputs)
            if loss_fn is None:
                direction = torch.randn(result.shape, generator=generator, dtype=result.dtype).to(result.device)
                loss = (result * direction).sum()
            else:
                loss = loss_fn(result)
            missing = [pairs[i][0] for i in range(len(pairs)) if i not in outputs]
            if missing:
                raise ValueError(f"Layers never called in the forward pass: {missing}")
            trainable = [i for i, (_, layer, _) in enumerate(pairs) if layer.weight.requires_grad]
            targets = [outputs[i] for i in range(len(pairs))] + [pairs[i][1].weight for i in trainable]
            grads = torch.autograd.grad(loss, targets, allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(saved_buffers[name])
    output_grads = grads[: len(pairs)]
    weight_grad_std = np.full(len(pairs), np.nan)
    for index, grad in zip(trainable, grads[len(pairs):]):
        if grad is not None:
            weight_grad_std[index] = grad.std().item()
    after = [activated.get(i, outputs[i]).detach() for i in range(len(pairs))]
    return SignalPropagation(
        layers=[name for name, _, _ in pairs],
        preactivation_mean=np.array([outputs[i].mean().item() for i in range(len(pairs))]),
        preactivation_std=np.array([outputs[i].std().item() for i in range(len(pairs))]),
        activation_mean=np.array([a.mean().item() for a in after]),
        activation_std=np.array([a.std().item() for a in after]),
        gradient_std=np.array([0.0 if g is None else g.std().item() for g in output_grads]),
        weight_gradient_std=weight_grad_std,
        dead_fraction=np.array([dead_unit_fraction(a) for a in after]),
        activation_samples=[_strided_sample(a, max_samples) for a in after],
    )


def compare_schemes(
    schemes: Sequence[str],
    depth: int = 50,
    width: int = 256,
    activation: str = "relu",
    batch_size: int = 512,
    seed: int = 0,
    **options,
) -> dict[str, SignalPropagation]:
    """:func:`signal_propagation` of a :func:`deep_mlp` initialised with each scheme, on the same standard normal
    batch; ``options`` go to :func:`apply`. The data behind the depth figures of the chapter."""
    results = {}
    for scheme in schemes:
        generator = torch.Generator().manual_seed(seed)
        model = apply(deep_mlp(depth, width, activation), scheme, generator=generator, **options)
        inputs = torch.randn(batch_size, width, generator=generator)
        results[scheme] = signal_propagation(model, inputs, generator=generator)
    return results


# --------------------------------------------------------------------------------------- weight metrics


def _matrix(weight: Tensor) -> Tensor:
    return weight.detach().reshape(weight.shape[0], -1).double()


def singular_values(weight: Tensor) -> Tensor:
    """Singular values (descending, float64) of a weight viewed as ``(out, in * kernel)``: ``min(out, in)`` of them."""
    return torch.linalg.svdvals(_matrix(weight))


def condition_number(weight: Tensor) -> float:
    """``sigma_max / sigma_min`` over the ``min(m, n)`` singular values of an ``m x n`` weight.

    For a non-square matrix the ``|m - n|`` zero eigenvalues of the larger Gram matrix are not counted: the ratio
    is how unevenly the matrix stretches the directions it does not annihilate. A square Gaussian matrix has
    ``sigma_min`` near 0 (condition number growing like ``n``); a rectangular one with aspect ratio ``b < 1`` stays
    near ``(1 + sqrt(b)) / (1 - sqrt(b))`` (Marchenko-Pastur). ``inf`` when rank-deficient, ``nan`` for zero.
    """
    s = singular_values(weight)
    return (s[0] / s[-1]).item()


def spectral_norm(weight: Tensor) -> float:
    """Largest singular value: the most a layer can stretch an input (Miyato et al., 2018, normalise it to 1)."""
    return singular_values(weight)[0].item()


def effective_rank(weight: Tensor) -> float:
    """``exp(H(p))`` with ``p_i = sigma_i / sum_j sigma_j`` (Roy & Vetterli, 2007): between 1 (rank one) and
    ``min(m, n)`` (all singular values equal). 0 for the zero matrix."""
    s = singular_values(weight)
    total = s.sum()
    if total == 0:
        return 0.0
    p = s[s > 0] / total
    return torch.exp(-(p * p.log()).sum()).item()


@dataclass
class WeightMetrics:
    """Spectral summary of one weight matrix; ``effective_rank_ratio`` is effective rank over ``min(m, n)``."""

    name: str
    shape: tuple[int, ...]
    condition_number: float
    spectral_norm: float
    effective_rank: float
    effective_rank_ratio: float


def weight_metrics(model: nn.Module) -> list[WeightMetrics]:
    """:class:`WeightMetrics` of every Linear/Conv weight of ``model``, in registration order."""
    metrics = []
    for name, layer, _ in layers_and_activations(model):
        rank = effective_rank(layer.weight)
        metrics.append(
            WeightMetrics(
                name=name,
                shape=tuple(layer.weight.shape),
                condition_number=condition_number(layer.weight),
                spectral_norm=spectral_norm(layer.weight),
                effective_rank=rank,
                effective_rank_ratio=rank / min(_matrix(layer.weight).shape),
            )
        )
    return metrics
