"""Fully connected networks for FashionMNIST-sized inputs."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from dldna.models.blocks import ActivationSpec, BlockSequence, NormSpec, ResidualBlock, make_activation, make_norm


class MLP(nn.Module):
    """Flatten, then ``Linear -> [norm] -> activation -> [dropout]`` per hidden width, then a linear head.

    The default 784-512-64-10 is the book's reference model (about 435k parameters).
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (512, 64),
        num_classes: int = 10,
        activation: ActivationSpec = "relu",
        norm: NormSpec = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for out in hidden:
            layers += [nn.Linear(width, out), make_norm(norm, out, spatial=False), make_activation(activation)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = out
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*(layer for layer in layers if not isinstance(layer, nn.Identity)))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ResidualMLP(nn.Module):
    """A stem layer, ``depth`` residual blocks of width ``width`` (two linear layers each), a linear head.

    ``skip=False`` removes every shortcut and keeps everything else, for with/without comparisons.
    """

    def __init__(
        self,
        in_features: int = 784,
        width: int = 128,
        depth: int = 4,
        num_classes: int = 10,
        activation: ActivationSpec = "relu",
        norm: NormSpec = None,
        skip: bool = True,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), make_activation(activation))
        self.blocks = BlockSequence(
            *(
                ResidualBlock(
                    nn.Sequential(
                        nn.Linear(width, width),
                        make_norm(norm, width, spatial=False),
                        make_activation(activation),
                        nn.Linear(width, width),
                        make_norm(norm, width, spatial=False),
                    ),
                    make_activation(activation),
                    skip=skip,
                )
                for _ in range(depth)
            )
        )
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))
