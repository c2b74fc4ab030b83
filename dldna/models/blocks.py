"""Small building blocks shared by the book's models: activation and normalisation factories, residual blocks."""

from __future__ import annotations

from typing import Callable, Union

from torch import Tensor, nn

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
