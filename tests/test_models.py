"""dldna.models: shapes, fresh activation modules per layer, residual switches and normalisation options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dldna.models import MLP, ResidualBlock, ResidualCNN, ResidualMLP, SmallCNN, count_parameters


def test_mlp_default_is_the_reference_network() -> None:
    model = MLP()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 512), (512, 64), (64, 10)]
    assert count_parameters(model) == 784 * 512 + 512 + 512 * 64 + 64 + 64 * 10 + 10
    assert model(torch.randn(5, 1, 28, 28)).shape == (5, 10)


def test_every_layer_gets_its_own_activation_module() -> None:
    model = MLP(hidden=(32, 32, 32), activation="prelu")
    slopes = [m for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(slopes) == 3 and len({id(m.weight) for m in slopes}) == 3
    with torch.no_grad():
        slopes[0].weight.fill_(0.9)
    assert slopes[1].weight.item() != pytest.approx(0.9)


@pytest.mark.parametrize("norm, kind", [("batch", nn.BatchNorm1d), ("layer", nn.LayerNorm), (lambda n: nn.GroupNorm(4, n), nn.GroupNorm)])
def test_mlp_norm_option(norm, kind: type) -> None:
    model = MLP(hidden=(16, 8), norm=norm)
    assert sum(isinstance(m, kind) for m in model.modules()) == 2
    assert model(torch.randn(4, 784)).shape == (4, 10)


def test_unknown_options_raise_value_error() -> None:
    with pytest.raises(ValueError, match="activation"):
        MLP(activation="swishy")
    with pytest.raises(ValueError, match="norm"):
        MLP(norm="weight")
    with pytest.raises(ValueError, match="dropout"):
        MLP(dropout=1.0)


@pytest.mark.parametrize("cls, shape", [(ResidualMLP, (3, 784)), (ResidualCNN, (3, 1, 28, 28))])
def test_skip_switch_changes_the_function_not_the_parameters(cls: type, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    with_skip = cls(skip=True)
    without = cls(skip=False)
    without.load_state_dict(with_skip.state_dict())
    x = torch.randn(shape)
    with_skip.eval(), without.eval()
    assert with_skip(x).shape == (3, 10)
    assert not torch.allclose(with_skip(x), without(x))
    blocks = [m for m in with_skip.modules() if isinstance(m, ResidualBlock)]
    assert blocks and all(isinstance(b.residual_branch_last, (nn.Linear, nn.Conv2d)) for b in blocks)


def test_residual_block_is_identity_plus_branch() -> None:
    branch = nn.Sequential(nn.Linear(4, 4))
    block = ResidualBlock(branch, nn.Identity(), skip=True)
    x = torch.randn(2, 4)
    assert torch.allclose(block(x), x + branch(x))


def test_small_cnn_sizes_for_mnist_and_cifar() -> None:
    assert SmallCNN()(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert SmallCNN(in_channels=3, image_size=32, num_classes=100)(torch.randn(2, 3, 32, 32)).shape == (2, 100)
