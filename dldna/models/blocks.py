"""Small building blocks shared by the book's models: activation and normalisation factories, residual blocks,
and the block sequence that can trade computation for memory (gradient checkpointing)."""

from __future__ import annotations

import contextlib
import functools
from typing import Callable, Iterator, Union

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

ActivationSpec = Union[str, Callable[[], nn.Module]]
NormSpec = Union[None, str, Callable[[int], nn.Module]]


def make_activation(spec: ActivationSpec) -> nn.Module:
    """A *fresh* activation module for each call, so no two layers ever share one (a shared PReLU would tie
    every layer's slope together)."""
    if callable(spec):
        return spec()
    from dldna.activations import ACTIVATIONS

    if spec not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or a factory, got {spec!r}")
    return ACTIVATIONS[spec]()


def make_norm(spec: NormSpec, features: int, spatial: bool) -> nn.Module:
    """A normalisation layer over ``features`` channels: ``None``, ``"batch"``, ``"layer"``, ``"group"`` or a
    factory ``features -> module``. ``spatial`` picks the 2-d form for ``(N, C, H, W)`` inputs."""
    if spec is None:
        return nn.Identity()
    if callable(spec):
        return spec(features)
    if spec == "batch":
        return nn.BatchNorm2d(features) if spatial else nn.BatchNorm1d(features)
    if spec == "layer":
        return nn.GroupNorm(1, features) if spatial else nn.LayerNorm(features)
    if spec == "group":
        return nn.GroupNorm(min(8, features), features)
    raise ValueError(f"norm must be None, 'batch', 'layer', 'group' or a factory, got {spec!r}")


class ResidualBlock(nn.Module):
    """``act(x + branch(x))``, or ``act(branch(x))`` with ``skip=False`` (same parameters, no shortcut).

    The landscape chapter compares the two; ``residual_branch_last`` names the layer a residual-friendly
    initialisation zeroes so that the block starts as the identity.
    """

    def __init__(self, branch: nn.Sequential, activation: nn.Module, skip: bool = True) -> None:
        super().__init__()
        self.branch = branch
        self.activation = activation
        self.skip = skip

    @property
    def residual_branch_last(self) -> nn.Module:
        return [m for m in self.branch if isinstance(m, (nn.Linear, nn.Conv2d))][-1]

    def forward(self, x: Tensor) -> Tensor:
        out = self.branch(x)
        return self.activation(x + out if self.skip else out)


@contextlib.contextmanager
def _running_statistics_frozen(module: nn.Module) -> Iterator[None]:
    """Batch norm layers of ``module`` run exactly as in training (batch statistics, the same saved tensors)
    but their running statistics and batch counter end unchanged: a recomputed forward pass must not count
    the batch twice. A momentum of 0 keeps the running averages; the counter is put back afterwards."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    settings = [(norm.momentum, norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, (momentum, count) in zip(norms, settings):
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


def _checkpoint_contexts(block: nn.Module) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
    """What surrounds a checkpointed block's first forward pass (nothing) and its recomputation."""
    return contextlib.nullcontext(), _running_statistics_frozen(block)


class BlockSequence(nn.Sequential):
    """Blocks applied in order, like ``nn.Sequential`` (same parameters, same ``state_dict``).

    With ``checkpoint = True``, while gradients are being recorded, each block keeps only its input for the
    backward pass and runs its forward pass again during backward to recover what it needs (gradient
    checkpointing, Chen et al. 2016): activation memory falls to one tensor per block for about one extra
    forward pass per step. Gradients are unchanged, and batch norm running statistics are updated once.
    """

    checkpoint: bool = False

    def forward(self, x: Tensor) -> Tensor:
        if not (self.checkpoint and torch.is_grad_enabled()):
            return super().forward(x)
        for block in self:
            x = checkpoint(block, x, use_reentrant=False, context_fn=functools.partial(_checkpoint_contexts, block))
        return x


def set_gradient_checkpointing(model: nn.Module, enabled: bool = True) -> int:
    """Switch gradient checkpointing of every :class:`BlockSequence` in ``model`` on or off; returns how many
    blocks it applies to. Raises ``ValueError`` when ``model`` has no block sequence."""
    sequences = [m for m in model.modules() if isinstance(m, BlockSequence)]
    if not sequences:
        raise ValueError(f"{type(model).__name__} has no BlockSequence, so it cannot be checkpointed block by block")
    for sequence in sequences:
        sequence.checkpoint = enabled
    return sum(len(sequence) for sequence in sequences)
