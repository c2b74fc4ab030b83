"""Convolutional networks for 28x28 (FashionMNIST) and 32x32 (CIFAR) images."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from dldna.models.blocks import ActivationSpec, BlockSequence, NormSpec, ResidualBlock, make_activation, make_norm


class SmallCNN(nn.Module):
    """``conv3x3 -> [norm] -> activation -> maxpool`` per entry of ``channels``, then a two-layer head."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        image_size: int = 28,
        hidden: int = 128,
        activation: ActivationSpec = "relu",
        norm: NormSpec = "batch",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, size = in_channels, image_size
        for out in channels:
            layers += [
                nn.Conv2d(width, out, 3, padding=1),
                make_norm(norm, out, spatial=True),
                make_activation(activation),
                nn.MaxPool2d(2),
            ]
            width, size = out, size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(width * size * size, hidden), make_activation(activation), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ResidualCNN(nn.Module):
    """A small ResNet-style network: a stem convolution, ``blocks`` residual blocks of two 3x3 convolutions
    at constant width, global average pooling and a linear head. ``skip=False`` drops the shortcuts only."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 16,
        blocks: int = 3,
        activation: ActivationSpec = "relu",
        norm: NormSpec = "batch",
        skip: bool = True,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), make_norm(norm, width, spatial=True), make_activation(activation)
        )
        self.blocks = BlockSequence(
            *(
                ResidualBlock(
                    nn.Sequential(
                        nn.Conv2d(width, width, 3, padding=1),
                        make_norm(norm, width, spatial=True),
                        make_activation(activation),
                        nn.Conv2d(width, width, 3, padding=1),
                        make_norm(norm, width, spatial=True),
                    ),
                    make_activation(activation),
                    skip=skip,
                )
                for _ in range(blocks)
            )
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))
