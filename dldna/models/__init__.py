"""The book's models: MLPs and small CNNs, with and without residual connections and normalisation, and a small
vision transformer. The residual ones keep their blocks in a :class:`BlockSequence`, which
:func:`set_gradient_checkpointing` switches to recomputing activations instead of storing them."""

from dldna.models.blocks import BlockSequence, ResidualBlock, make_activation, make_norm, set_gradient_checkpointing
from dldna.models.cnn import ResidualCNN, SmallCNN
from dldna.models.mlp import MLP, ResidualMLP
from dldna.models.vit import VisionTransformer

__all__ = ["MLP", "BlockSequence", "ResidualBlock", "ResidualCNN", "ResidualMLP", "SmallCNN", "VisionTransformer", "make_activation", "make_norm", "count_parameters", "set_gradient_checkpointing"]


def count_parameters(model) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
