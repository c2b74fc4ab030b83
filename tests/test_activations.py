"""Activations: derivatives against closed forms, fresh modules from the factories, the step's zero gradient."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dldna.activations import ACTIVATIONS, Step, derivative, leaky_relu, make, prelu, saturation_region

# Grid that avoids 0 exactly, where ReLU-type derivatives are not defined.
X = torch.linspace(-6, 6, 1201, dtype=torch.float64) + 1e-3


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def _normal_pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def _gelu_tanh_derivative(x: torch.Tensor) -> torch.Tensor:
    c = math.sqrt(2 / math.pi)
    inner = c * (x + 0.044715 * x**3)
    t = torch.tanh(inner)
    return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * c * (1 + 3 * 0.044715 * x**2)


CLOSED_FORMS = {
    "linear": lambda x: torch.ones_like(x),
    "step": lambda x: torch.zeros_like(x),
    "sigmoid": lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x)),
    "tanh": lambda x: 1 - torch.tanh(x) ** 2,
    "relu": lambda x: (x > 0).double(),
    "leaky_relu": lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.01)),
    "prelu": lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.25)),
    "gelu": lambda x: _normal_cdf(x) + x * _normal_pdf(x),
    "gelu_tanh": _gelu_tanh_derivative,
    "silu": lambda x: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))),
}


def test_every_activation_has_a_closed_form_check():
    assert set(CLOSED_FORMS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_derivative_matches_closed_form(name):
    torch.testing.assert_close(derivative(name, X), CLOSED_FORMS[name](X), rtol=0, atol=1e-12)


def test_derivative_accepts_numpy_and_keeps_shape():
    grid = np.linspace(-2, 2, 12).reshape(3, 4)
    slope = derivative("tanh", grid)
    assert slope.shape == (3, 4)
    np.testing.assert_allclose(slope.numpy(), 1 - np.tanh(grid) ** 2, atol=1e-14)


def test_step_values_and_zero_gradient():
    x = torch.tensor([-2.0, -1e-6, 0.0, 1e-6, 3.0], requires_grad=True)
    y = Step()(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(5))


def test_step_network_gets_no_gradient_for_its_first_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), Step(), nn.Linear(8, 1))
    model(torch.randn(16, 4)).pow(2).mean().backward()
    assert torch.count_nonzero(model[0].weight.grad) == 0
    assert torch.count_nonzero(model[2].weight.grad) > 0


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_factories_return_distinct_modules(name):
    first, second = ACTIVATIONS[name](), ACTIVATIONS[name]()
    assert isinstance(first, nn.Module) and first is not second


def test_prelu_slopes_are_not_shared_between_layers():
    model = nn.Sequential(nn.Linear(3, 3), make("prelu"), nn.Linear(3, 3), make("prelu"))
    with torch.no_grad():
        model[1].weight.fill_(0.5)
    assert model[3].weight.item() == pytest.approx(0.25)
    assert model[1].weight.data_ptr() != model[3].weight.data_ptr()
    assert sum(p.numel() for p in model.parameters()) == 2 * (9 + 3) + 2


def test_prelu_per_channel_learns_one_slope_per_channel():
    layer = prelu(num_parameters=3, init=0.1)
    x = -torch.ones(2, 3, 4, 4)
    layer(x).sum().backward()
    assert layer.weight.shape == (3,)
    torch.testing.assert_close(layer.weight.grad, torch.full((3,), -32.0))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="name="):
        make("swishy")
    with pytest.raises(ValueError, match="num_parameters"):
        prelu(0)
    with pytest.raises(ValueError, match="negative_slope"):
        leaky_relu(-0.1)
    with pytest.raises(ValueError, match="threshold"):
        saturation_region("tanh", 0.0)


def test_saturation_region_of_sigmoid_is_both_tails():
    threshold = 0.01
    region = saturation_region("sigmoid", threshold, x_range=(-10, 10), points=20001)
    # sigmoid'(x) = s(1 - s) < t beyond |x| = ln(1/s - 1) with s(1 - s) = t.
    s = (1 + math.sqrt(1 - 4 * threshold)) / 2
    edge = math.log(s / (1 - s))
    assert len(region.intervals) == 2
    (left_low, left_high), (right_low, right_high) = region.intervals
    assert left_low == -10 and right_high == 10
    assert left_high == pytest.approx(-edge, abs=1e-3) and right_low == pytest.approx(edge, abs=1e-3)
    assert region.fraction == pytest.approx((10 - edge) / 10, abs=1e-3)


def test_saturation_region_relu_is_the_negative_half_and_step_is_everything():
    relu = saturation_region("relu", 0.5, x_range=(-1, 1), points=2000)
    assert relu.intervals == [(-1.0, pytest.approx(-1 / 1999, abs=1e-9))]
    assert saturation_region("step", 1e-9).fraction == 1.0
    assert saturation_region("linear", 0.5).fraction == 0.0
