"""The book's models: MLPs and small CNNs, with and without residual connections and normalisation, and a small
vision transformer."""

from dldna.models.blocks import ResidualBlock, make_activation, make_norm
from dldna.models.cnn import ResidualCNN, SmallCNN
from dldna.models.mlp import MLP, ResidualMLP
from dldna.models.vit import VisionTransformer

__all__ = ["MLP", "ResidualBlock", "ResidualCNN", "ResidualMLP", "SmallCNN", "VisionTransformer", "make_activation", "make_norm", "count_parameters"]


def count_parameters(model) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
