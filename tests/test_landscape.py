"""Loss-landscape tools: interpolation, filter-normalised directions, vmap surfaces, trajectories, multi-scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dldna.landscape import (
    WeightTrajectory,
    filter_normalize,
    flatten,
    gaussian_direction,
    inner,
    interpolate,
    loss_line,
    loss_plane,
    orthogonalize,
    project_on_plane,
    random_plane,
    sublevel_persistence,
    trajectory_pca,
    trainable_parameters,
    unflatten,
    wavelet_energy,
)
from dldna.models import MLP


def _model(seed: int, norm: str | None = None) -> nn.Module:
    torch.manual_seed(seed)
    return MLP(in_features=12, hidden=(16, 8), num_classes=4, norm=norm).double()


def _data(n: int = 150) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return torch.randn(n, 12, generator=generator, dtype=torch.float64), torch.randint(0, 4, (n,), generator=generator)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Float64 loss and accuracy in eval mode (dldna.train.evaluate sums in float32), mode restored."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was_training)
    return F.cross_entropy(out, y).item(), (out.argmax(1) == y).double().mean().item()


def _snapshot(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _warm_batchnorm(model: nn.Module, x: torch.Tensor) -> None:
    """Give BatchNorm running statistics that differ from their defaults."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x)
    model.eval()


def test_interpolation_endpoints_are_the_models_and_models_are_unchanged() -> None:
    x, y = _data()
    a, b = _model(0, norm="batch"), _model(1, norm="batch")
    _warm_batchnorm(a, x[:50])
    _warm_batchnorm(b, x[50:100] * 2)
    a.train()
    before_a, before_b = _snapshot(a), _snapshot(b)
    curve = interpolate(a, b, x, y, alphas=[-0.2, 0.0, 0.5, 1.0, 1.2], method="vmap")
    assert curve.loss[1] == pytest.approx(evaluate(a, x, y)[0], abs=1e-12)
    assert curve.loss[3] == pytest.approx(evaluate(b, x, y)[0], abs=1e-12)
    assert curve.accuracy[1] == evaluate(a, x, y)[1]
    assert curve.accuracy[3] == evaluate(b, x, y)[1]
    assert a.training and not b.training
    for old, new in zip(before_a + before_b, _snapshot(a) + _snapshot(b)):
        assert torch.equal(old, new)
    loop = interpolate(a, b, x, y, alphas=[-0.2, 0.0, 0.5, 1.0, 1.2], method="loop")
    np.testing.assert_allclose(curve.loss, loop.loss, rtol=0, atol=1e-10)


def test_interpolation_rejects_different_architectures() -> None:
    x, y = _data()
    with pytest.raises(ValueError, match="architecture"):
        interpolate(_model(0), MLP(in_features=12, hidden=(16,), num_classes=4).double(), x, y)


def test_filter_normalized_rows_match_weight_rows_and_vectors_are_zero() -> None:
    model = _model(0)
    weights = trainable_parameters(model)
    direction = filter_normalize(gaussian_direction(model, torch.Generator().manual_seed(1)), weights)
    for d, w in zip(direction, weights):
        if w.dim() == 1:
            assert torch.count_nonzero(d) == 0
        else:
            torch.testing.assert_close(d.norm(dim=1), w.detach().norm(dim=1), rtol=1e-12, atol=0)
    kept = filter_normalize(gaussian_direction(model, torch.Generator().manual_seed(1)), weights, ignore=False)
    for d, w in zip(kept, weights):
        if w.dim() == 1:
            assert d.norm().item() == pytest.approx(w.norm().item(), rel=1e-12)
    with pytest.raises(ValueError, match="ignore"):
        filter_normalize(direction, weights, ignore="bias")


def test_random_plane_orthogonalizes_before_normalizing() -> None:
    model = _model(3)
    weights = trainable_parameters(model)
    first, second = random_plane(model, seed=5)
    generator = torch.Generator().manual_seed(5)
    raw_first = [d if d.dim() > 1 else torch.zeros_like(d) for d in gaussian_direction(model, generator)]
    raw_second = [d if d.dim() > 1 else torch.zeros_like(d) for d in gaussian_direction(model, generator)]
    orthogonal = orthogonalize(raw_second, raw_first)
    assert abs(inner(orthogonal, raw_first).item()) < 1e-10
    for got, expected in zip(second, filter_normalize(orthogonal, weights)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)
    for d, w in zip(first + second, weights + weights):
        if w.dim() > 1:
            torch.testing.assert_close(d.norm(dim=1), w.detach().norm(dim=1), rtol=1e-12, atol=0)
    raw = random_plane(model, seed=5, normalize=False)
    assert abs(inner(*raw).item()) < 1e-10


@pytest.mark.parametrize("norm", [None, "batch"])
def test_vmap_surface_equals_loop_and_centre_is_base_loss(norm: str | None) -> None:
    x, y = _data(300)
    model = _model(2, norm=norm)
    if norm:
        _warm_batchnorm(model, x)
    model.train()
    before = _snapshot(model)
    directions = random_plane(model, seed=1)
    grid = np.linspace(-1, 1, 5)
    batched = loss_plane(model, x, y, directions, grid, np.linspace(-0.5, 0.5, 3), samples=250, batch_size=64, chunk_size=4, method="vmap")
    loop = loss_plane(model, x, y, directions, grid, np.linspace(-0.5, 0.5, 3), samples=250, batch_size=64, method="loop")
    assert batched.loss.shape == (3, 5) and batched.samples == 250
    np.testing.assert_allclose(batched.loss, loop.loss, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(batched.accuracy, loop.accuracy)
    automatic = loss_plane(model, x, y, directions, grid, np.linspace(-0.5, 0.5, 3), samples=250, batch_size=64)
    np.testing.assert_allclose(automatic.loss, loop.loss, rtol=0, atol=1e-10)  # "auto": the affine first layer
    base_loss, base_accuracy = evaluate(model, x[:250], y[:250])
    assert batched.loss[1, 2] == pytest.approx(base_loss, abs=1e-12)
    assert batched.centre_loss == batched.loss[1, 2]
    assert batched.accuracy[1, 2] == base_accuracy
    assert model.training
    for old, new in zip(before, _snapshot(model)):
        assert torch.equal(old, new)
    # the surface is the loss of the moved model, checked at one corner by loading the weights
    moved = _model(2, norm=norm)
    moved.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p, d1, d2 in zip(trainable_parameters(moved), *directions):
            p.add_(-1.0 * d1 + 0.5 * d2)
    assert batched.loss[2, 0] == pytest.approx(evaluate(moved, x[:250], y[:250])[0], abs=1e-10)


def test_loss_line_and_bad_input() -> None:
    x, y = _data()
    model = _model(0)
    direction = random_plane(model)[0]
    line = loss_line(model, x, y, direction, np.linspace(-1, 1, 7))
    assert line.loss.shape == (7,) and line.loss[3] == pytest.approx(evaluate(model, x, y)[0], abs=1e-12)
    with pytest.raises(ValueError, match="samples"):
        loss_line(model, x, y, direction, samples=0)
    with pytest.raises(ValueError, match="method"):
        loss_line(model, x, y, direction, method="fast")
    with pytest.raises(ValueError, match="direction"):
        loss_line(model, x, y, direction[:-1])


def test_flatten_unflatten_round_trip() -> None:
    params = trainable_parameters(_model(0))
    restored = unflatten(flatten(params), params)
    for a, b in zip(params, restored):
        assert torch.equal(a.detach(), b)
    with pytest.raises(ValueError, match="vector"):
        unflatten(torch.zeros(3, dtype=torch.float64), params)


def test_trajectory_pca_on_a_line_and_plane_projection() -> None:
    generator = torch.Generator().manual_seed(0)
    start, step = torch.randn(40, generator=generator, dtype=torch.float64), torch.randn(40, generator=generator, dtype=torch.float64)
    line = start + torch.linspace(0, 3, 25, dtype=torch.float64)[:, None] * step
    pca = trajectory_pca(line, k=2)
    assert pca.explained_variance_ratio[0] == pytest.approx(1.0, abs=1e-10)
    assert abs(abs(pca.components[0] @ (step / step.norm()).numpy()) - 1) < 1e-10
    assert pca.coordinates[-1] == pytest.approx([0.0, 0.0], abs=1e-12)
    other = torch.randn(40, generator=generator, dtype=torch.float64)
    coefficients = torch.randn(10, 2, generator=generator, dtype=torch.float64)
    points = start + coefficients[:, :1] * step + coefficients[:, 1:] * other
    recovered = project_on_plane(points, [start], [[step], [other]])
    np.testing.assert_allclose(recovered, coefficients.numpy(), atol=1e-10)


def test_weight_trajectory_callback_records_every_k_steps() -> None:
    from dldna.data import Dataset
    from dldna.train import fit

    x, y = _data(64)
    data = Dataset("toy", x.reshape(64, 1, 1, 12), y, x[:16].reshape(16, 1, 1, 12), y[:16], tuple("abcd"), (0.0,), (1.0,))
    model = _model(0)
    trajectory = WeightTrajectory(every=3)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=2, batch_size=8, callbacks=[trajectory], progress=False)
    assert trajectory.steps == [0, 3, 6, 8, 9, 12, 15, 16]
    assert trajectory.epoch_ends == [3, 7]
    assert torch.equal(trajectory.weights[-1], flatten([p.detach() for p in trainable_parameters(model)]))
    assert trajectory.weights.shape == (8, sum(p.numel() for p in model.parameters()))


def test_wavelet_energy_sums_to_surface_energy() -> None:
    rng = np.random.default_rng(0)
    surface = rng.normal(size=(16, 16)) + 3.0
    result = wavelet_energy(surface, "db2", level=2)
    centred = surface - surface.mean()
    assert result.energy.sum() == pytest.approx(np.sum(centred**2), rel=1e-10)
    assert result.fraction.sum() == pytest.approx(1.0, rel=1e-12)
    xs = np.linspace(-1, 1, 32)
    bowl = np.add.outer(xs**2, xs**2)
    assert wavelet_energy(bowl, "haar", level=3).fraction[0] > 0.5
    assert wavelet_energy(rng.normal(size=(32, 32)), "haar", level=3).fraction[-1] > 0.5


def test_persistence_counts_two_basins() -> None:
    xs = np.linspace(-3, 3, 41)
    a, b = np.meshgrid(xs, xs)
    surface = 2.0 - np.exp(-((a + 1.5) ** 2 + b**2)) - 0.7 * np.exp(-((a - 1.5) ** 2 + b**2))
    diagram = sublevel_persistence(surface)
    assert diagram.basins(min_persistence=1e-3) == 2
    assert np.isinf(diagram.deaths).sum() == 1
    assert diagram.births.min() == pytest.approx(surface.min())
    finite = diagram.persistence[np.isfinite(diagram.persistence)]
    assert finite.max() > 0.3
    bowl = np.add.outer(xs**2, xs**2)
    assert sublevel_persistence(bowl).basins(1e-9) == 1


def test_hessian_directions_are_orthonormal_eigenvectors_of_the_exact_hessian() -> None:
    from dldna.landscape.hessian import hessian_directions
    from dldna.landscape.params import flatten, trainable_parameters

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(20, 3, dtype=torch.float64), torch.randint(0, 2, (20,))
    directions, eigenvalues = hessian_directions(model, x, y, k=2, seed=0)
    params = trainable_parameters(model)
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for p in params]

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        pieces, start = {}, 0
        for name, shape in zip(names, shapes):
            pieces[name] = vector[start : start + shape.numel()].view(shape)
            start += shape.numel()
        return F.cross_entropy(torch.func.functional_call(model, pieces, (x,)), y)

    hessian = torch.func.hessian(loss_of)(flatten([p.detach() for p in params]))
    exact = torch.linalg.eigvalsh(hessian).flip(0)[:2]
    np.testing.assert_allclose(eigenvalues, exact.numpy(), rtol=1e-3)
    vectors = torch.stack([flatten(d) for d in directions])
    torch.testing.assert_close(vectors @ vectors.T, torch.eye(2, dtype=torch.float64), atol=1e-6, rtol=0)
    for vector, value in zip(vectors, eigenvalues):
        # Lanczos stops on the eigenvalue's error, which falls like the square of the eigenvector's residual.
        assert float(vector @ hessian @ vector) == pytest.approx(float(value), rel=1e-3)
        assert float((hessian @ vector - value * vector).norm()) <= 0.05 * abs(value)
    assert [d.shape for d in directions[0]] == shapes


def test_pca_directions_recover_the_line_a_run_moved_along() -> None:
    from dldna.landscape.params import flatten, trainable_parameters
    from dldna.landscape.trajectory import embed_snapshots, pca_directions

    model = nn.Linear(4, 3)
    size = sum(p.numel() for p in trainable_parameters(model))
    generator = torch.Generator().manual_seed(0)
    line = torch.randn(size, generator=generator, dtype=torch.float64)
    line /= line.norm()
    steps = torch.linspace(0, 5, 12, dtype=torch.float64)
    snapshots = steps[:, None] * line + 0.01 * torch.randn(12, size, generator=generator, dtype=torch.float64)
    directions, explained = pca_directions(model, snapshots, k=2)
    first = flatten(directions[0]).double()
    assert abs(float(first @ line)) > 0.999 and explained[0] > 0.99
    assert [d.shape for d in directions[0]] == [p.shape for p in model.parameters()]
    for method in ("pca", "tsne"):
        assert embed_snapshots(snapshots, method=method).shape == (12, 2)
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        embed_snapshots(snapshots, method="umap")
