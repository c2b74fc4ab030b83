"""The minibatch noise model of the optimizers chapter: flat and full gradients against autograd, and the measured
error of minibatch gradients against ``tr(Sigma)/B * (1 - B/N)`` on a model whose per-sample gradients are exact."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dldna.dynamics import flat_gradient, full_gradient, minibatch_gradient_error


def problem(n: int = 400, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=generator)
    torch.manual_seed(seed)
    return nn.Linear(6, 3).double(), x, y


def per_sample_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack([flat_gradient(model, x[i : i + 1], y[i : i + 1]) for i in range(len(y))])


def test_flat_gradient_is_autograd_concatenated_and_leaves_grad_alone() -> None:
    model, x, y = problem()
    flat = flat_gradient(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    F.cross_entropy(model(x), y).backward()
    torch.testing.assert_close(flat, torch.cat([p.grad.flatten() for p in model.parameters()]))


def test_full_gradient_in_chunks_is_the_mean_of_per_sample_gradients() -> None:
    model, x, y = problem(n=103)
    torch.testing.assert_close(full_gradient(model, x, y, chunk=10), per_sample_gradients(model, x, y).mean(0))
    with pytest.raises(ValueError, match="chunk"):
        full_gradient(model, x, y, chunk=0)


def test_measured_error_follows_the_finite_population_prediction() -> None:
    model, x, y = problem()
    per_sample = per_sample_gradients(model, x, y)
    mean = per_sample.mean(0)
    exact_trace = (per_sample - mean).pow(2).sum().item() / (len(y) - 1)
    result = minibatch_gradient_error(model, x, y, [4, 40, 200, 400], draws=600, noise_batch=4, noise_batches=100)
    assert result.grad_sq == pytest.approx(mean.pow(2).sum().item())
    assert result.trace == pytest.approx(exact_trace, rel=0.3)  # an estimate from 100 batches of 4
    exact = [math.sqrt(exact_trace / b * (1 - b / len(y)) / result.grad_sq) for b in result.batch_sizes]
    for measured, expected in zip(result.relative_error[:3], exact[:3]):
        assert measured == pytest.approx(expected, rel=0.08)
    # a batch of half the samples has sqrt(1/2) of the noise the independent-draw law predicts; all of them, none
    assert result.predicted[2] == pytest.approx(result.predicted_independent[2] * math.sqrt(0.5))
    assert result.relative_error[3] < 1e-10 and result.predicted[3] == 0.0 and result.cosine[3] == pytest.approx(1.0)
    assert result.cosine[0] < result.cosine[1] < result.cosine[2]
    assert result.b_simple == pytest.approx(result.trace / result.grad_sq)


def test_batch_sizes_outside_the_data_are_refused() -> None:
    model, x, y = problem(n=50)
    with pytest.raises(ValueError, match="batch_sizes"):
        minibatch_gradient_error(model, x, y, [8, 64], noise_batch=5, noise_batches=4)
