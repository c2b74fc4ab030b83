"""The landscape chapter's package helpers: a model at a saved weight vector, and the fitted Gaussian stand-in
of a surface (tested against its closed-form Hessian)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dldna.landscape import flatten, trainable_parameters
from dldna.landscape.stand_in import InvertedGaussian, fit_inverted_gaussian
from dldna.landscape.weights import with_weights


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2)).double()


def test_with_weights_loads_the_vector_into_a_copy_and_leaves_the_model_alone() -> None:
    model = _model()
    model[1].running_mean.fill_(0.5)
    before = flatten(trainable_parameters(model)).clone()
    vector = torch.randn_like(before)
    moved = with_weights(model, vector)
    assert torch.equal(flatten(trainable_parameters(moved)), vector)
    assert torch.equal(flatten(trainable_parameters(model)), before)
    assert torch.equal(moved[1].running_mean, model[1].running_mean)
    x = torch.randn(5, 4, dtype=torch.float64)
    model.eval(), moved.eval()
    torch.testing.assert_close(with_weights(moved, before)(x), model(x), rtol=0, atol=0)


def test_with_weights_refuses_a_vector_of_the_wrong_size_or_type() -> None:
    model = _model()
    with pytest.raises(ValueError, match="1-D with"):
        with_weights(model, torch.zeros(3))
    with pytest.raises(TypeError, match="torch.Tensor"):
        with_weights(model, [0.0] * 10)


def _closed_form_smallest(bump: InvertedGaussian, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    (a0, b0), (sa, sb) = bump.centre, bump.widths
    ua, ub = (a - a0) / sa**2, (b - b0) / sb**2
    g = bump.amplitude * np.exp(-((a - a0) ** 2) / (2 * sa**2) - ((b - b0) ** 2) / (2 * sb**2))
    haa, hbb, hab = g * (1 / sa**2 - ua**2), g * (1 / sb**2 - ub**2), -g * ua * ub
    hessians = np.stack([np.stack([haa, hab], -1), np.stack([hab, hbb], -1)], -2)
    return np.linalg.eigvalsh(hessians)[..., 0]


def test_smallest_curvature_matches_the_closed_form_and_turns_negative_beyond_one_width() -> None:
    bump = InvertedGaussian(offset=1.0, amplitude=2.0, centre=(0.3, -0.2), widths=(0.5, 0.8))
    a, b = np.meshgrid(np.linspace(-2, 2, 17), np.linspace(-2, 2, 15))
    np.testing.assert_allclose(bump.smallest_curvature(a, b), _closed_form_smallest(bump, a, b), rtol=1e-9, atol=1e-12)
    round_bump = InvertedGaussian(offset=0.0, amplitude=1.0, centre=(0.0, 0.0), widths=(1.0, 1.0))
    radii = np.array([0.5, 0.9, 1.1, 2.0])
    assert (round_bump.smallest_curvature(radii, 0 * radii) < 0).tolist() == [False, False, True, True]


def test_the_fit_recovers_a_bump_from_its_values() -> None:
    truth = InvertedGaussian(offset=0.4, amplitude=1.5, centre=(0.1, -0.05), widths=(0.6, 0.35))
    a, b = np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
    fitted = fit_inverted_gaussian(a, b, truth(a, b))
    np.testing.assert_allclose([fitted.offset, fitted.amplitude, *fitted.centre, *fitted.widths],
                               [truth.offset, truth.amplitude, *truth.centre, *truth.widths], rtol=1e-5, atol=1e-7)
    assert fitted.r_squared(a, b, truth(a, b)) == pytest.approx(1.0)
    box_a, box_b = fitted.box(3.0, points=5)
    assert box_a.shape == (5, 5) and box_a[0, -1] == pytest.approx(0.1 + 3 * 0.6, rel=1e-5)


def test_the_fit_refuses_mismatched_or_non_finite_grids() -> None:
    a, b = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))
    with pytest.raises(ValueError, match="one shape"):
        fit_inverted_gaussian(a, b, np.zeros(3))
    values = np.ones_like(a)
    values[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fit_inverted_gaussian(a, b, values)
