"""The affine first layer (dldna.landscape.first_layer) and the surfaces computed with it: which layer is found
(and which models have none), that substituting its output changes nothing, and that method="affine" gives the
per-point loop's surface for first Linear and Conv2d layers followed by BatchNorm (eval mode) and residual blocks,
along lines, planes and interpolations, with the model left exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dldna.landscape import interpolate, loss_line, loss_plane, random_plane
from dldna.landscape.first_layer import SubstitutedOutput, find_first_layer, layer_input
from dldna.models import MLP, ResidualCNN, ResidualMLP, SmallCNN


def _warm(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Batch-norm running statistics away from their defaults, then training mode (analyses must restore it)."""
    model.train()
    with torch.no_grad():
        for scale in (1.0, 1.5, 0.7):
            model(x * scale)
    return model


def _case(name: str, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, torch.Tensor, torch.Tensor, type]:
    """A model, inputs, labels and the type of its first layer."""
    torch.manual_seed(0)
    if name == "mlp":
        model, x, first = MLP(in_features=12, hidden=(16, 8), num_classes=4, norm="batch"), torch.randn(90, 12), nn.Linear
    elif name == "residual mlp":
        model, x, first = ResidualMLP(in_features=12, width=8, depth=2, num_classes=4, norm="batch"), torch.randn(90, 12), nn.Linear
    elif name == "cnn":
        model, x, first = SmallCNN(channels=(4, 6), image_size=8, hidden=10, num_classes=4), torch.randn(40, 1, 8, 8), nn.Conv2d
    else:
        model, x, first = ResidualCNN(width=4, blocks=2, num_classes=4), torch.randn(40, 1, 8, 8), nn.Conv2d
    model, x = model.to(dtype), x.to(dtype)
    return _warm(model, x), x, torch.randint(0, 4, (len(x),), generator=torch.Generator().manual_seed(1)), first


def _state(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


CASES = ["mlp", "residual mlp", "cnn", "residual cnn"]


@pytest.mark.parametrize("name", CASES)
def test_the_first_layer_is_found_and_its_output_can_be_substituted(name: str) -> None:
    model, x, _, first = _case(name)
    names = [n for n, _ in model.named_parameters()]
    layer = find_first_layer(model, x, names)
    assert isinstance(layer.module, first) and layer.names == tuple(n for n in names[:2])
    model.eval()
    inputs = layer_input(model, layer, x)
    expected, output = model(x), layer.module(inputs)
    with SubstitutedOutput(layer) as substitution:
        substitution.value = output
        torch.testing.assert_close(model(x), expected)
        substitution.value = torch.zeros_like(substitution.value)
        assert not torch.allclose(model(x), expected)
    assert _hooks(model) == 0
    torch.testing.assert_close(model(x), expected)


def test_affine_parts_are_the_layer_outputs_of_stacked_weights() -> None:
    for name in ("mlp", "cnn"):
        model, x, _, _ = _case(name, torch.float64)
        layer = find_first_layer(model, x, [n for n, _ in model.named_parameters()])
        inputs = layer_input(model.eval(), layer, x)
        weights = torch.randn(3, *layer.module.weight.shape, dtype=torch.float64)
        biases = torch.randn(3, layer.module.weight.shape[0], dtype=torch.float64)
        outputs = layer.add_bias(layer.apply(inputs, weights), biases)
        for weight, bias, output in zip(weights, biases, outputs):
            module = type(layer.module)(*layer.module.weight.shape[1::-1]) if name == "mlp" else layer.module
            expected = torch.func.functional_call(module, {"weight": weight, "bias": bias}, (inputs,))
            torch.testing.assert_close(output, expected, rtol=1e-12, atol=1e-12)


class Tied(nn.Module):
    """The first layer's weight is used again on the way out (weight tying)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.first(x)) @ self.first.weight


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.first(torch.tanh(self.first(x)))


def test_models_without_a_usable_first_layer() -> None:
    x = torch.randn(10, 6)
    normalised_first = nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    for model in (normalised_first, Tied(), Twice()):
        assert find_first_layer(model, x, [n for n, _ in model.named_parameters()]) is None
    # Holding the layer norm fixed makes the next Linear layer's input fixed again.
    layer = find_first_layer(normalised_first, x, ["1.weight", "1.bias", "3.weight", "3.bias"])
    assert layer is not None and layer.module is normalised_first[1]
    assert _hooks(normalised_first) == 0


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("name", CASES)
def test_affine_surface_equals_the_loop(name: str, dtype: torch.dtype, tolerance: float) -> None:
    model, x, y, _ = _case(name, dtype)
    before, modes = _state(model), [m.training for m in model.modules()]
    directions = random_plane(model, seed=3, ignore=False)
    xs, ys = np.linspace(-1, 1, 5), np.linspace(-0.5, 0.7, 4)
    loop = loss_plane(model, x, y, directions, xs, ys, batch_size=32, method="loop")
    for method, chunk in (("affine", 1), ("affine", 3), ("auto", 16)):
        surface = loss_plane(model, x, y, directions, xs, ys, batch_size=32, chunk_size=chunk, method=method)
        assert np.max(np.abs(surface.loss - loop.loss)) <= tolerance, (method, chunk)
        assert np.mean(surface.accuracy == loop.accuracy) >= 0.95
    line = loss_line(model, x, y, directions[0], xs, method="affine")
    assert np.max(np.abs(line.loss - loss_line(model, x, y, directions[0], xs, method="loop").loss)) <= tolerance
    assert [m.training for m in model.modules()] == modes and _hooks(model) == 0
    for old, new in zip(before, _state(model)):
        assert torch.equal(old, new)


def test_affine_interpolation_moves_batch_norm_statistics_too() -> None:
    model_a, x, y, _ = _case("cnn", torch.float64)
    model_b = _warm(SmallCNN(channels=(4, 6), image_size=8, hidden=10, num_classes=4).double(), 2 * x)
    alphas = np.linspace(-0.5, 1.5, 7)
    loop = interpolate(model_a, model_b, x, y, alphas, method="loop")
    affine = interpolate(model_a, model_b, x, y, alphas, method="affine", chunk_size=4)
    np.testing.assert_allclose(affine.loss, loop.loss, rtol=0, atol=1e-10)
    assert _hooks(model_a) == _hooks(model_b) == 0


def test_frozen_first_layer_weights_are_constant_terms() -> None:
    model, x, y, _ = _case("mlp", torch.float64)
    model.net[1].weight.requires_grad_(False)  # the plane then moves every trainable tensor but the first weight
    directions = random_plane(model, seed=1, ignore=False)
    axis = np.linspace(-1, 1, 3)
    loop = loss_plane(model, x, y, directions, axis, axis, method="loop")
    np.testing.assert_allclose(loss_plane(model, x, y, directions, axis, axis, method="affine").loss, loop.loss, atol=1e-10)


def test_auto_falls_back_where_no_layer_is_affine_and_affine_refuses() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    x, y = torch.randn(30, 6, dtype=torch.float64), torch.randint(0, 3, (30,))
    directions = random_plane(model, ignore=False)
    axis = np.linspace(-1, 1, 3)
    loop = loss_plane(model, x, y, directions, axis, axis, method="loop")
    np.testing.assert_array_equal(loss_plane(model, x, y, directions, axis, axis).loss, loop.loss)
    with pytest.raises(ValueError, match="method='affine'"):
        loss_plane(model, x, y, directions, axis, axis, method="affine")
    with pytest.raises(ValueError, match="method"):
        loss_plane(model, x, y, directions, axis, axis, method="fast")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", CASES)
def test_auto_on_cuda_equals_the_loop(name: str) -> None:
    model, x, y, _ = _case(name)
    model, x, y = model.cuda(), x.cuda(), y.cuda()
    directions = random_plane(model, seed=3)
    axis = np.linspace(-1, 1, 5)
    loop = loss_plane(model, x, y, directions, axis, axis, method="loop")
    for method in ("auto", "vmap", "affine"):
        surface = loss_plane(model, x, y, directions, axis, axis, method=method)
        assert np.max(np.abs(surface.loss - loop.loss)) <= 1e-5, method


@pytest.mark.parametrize(
    "model",
    [nn.Linear(6, 3), nn.Sequential(nn.Linear(6, 5), nn.ReLU(inplace=True), nn.Linear(5, 3))],
    ids=["the output is the first layer's", "in-place activation after it"],
)
def test_one_point_at_a_time_keeps_every_points_output(model: nn.Module) -> None:
    """On a CPU, "auto" writes each point's first-layer output into one reused buffer: a model that returns it,
    or changes it in place, must still give every point its own loss."""
    torch.manual_seed(0)
    model = model.double()
    x, y = torch.randn(30, 6, dtype=torch.float64), torch.randint(0, 3, (30,))
    directions = random_plane(model, seed=2, ignore=False)
    axis = np.linspace(-1, 1, 5)
    loop = loss_plane(model, x, y, directions, axis, axis, method="loop")
    auto = loss_plane(model, x, y, directions, axis, axis, chunk_size=7)
    assert len(np.unique(loop.loss)) == loop.loss.size  # every point differs, so a shared buffer would show
    np.testing.assert_allclose(auto.loss, loop.loss, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(auto.accuracy, loop.accuracy)
