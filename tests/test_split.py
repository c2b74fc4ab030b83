"""The Hessian split at the first layer (dldna.landscape.split) and the linear algebra it runs on, in float64:
H = P^T M P against torch.func.hessian, Lanczos in the Gram metric, the projection used by SLQ, block-diagonal
Hutchinson (exact blocks, variance formula, the same estimate with and without the split), the value-based
stopping rule of Lanczos, which operator the routines choose, and PyHessian on the split routines."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dldna import linalg
from dldna.landscape import hessian as hs
from dldna.landscape.products import block_quadratic_forms
from dldna.landscape.split import SplitHessian, split_point


def mlp(features: int = 6, hidden: int = 5, classes: int = 3, bias: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, hidden, bias=bias), nn.Tanh(), nn.Linear(hidden, classes)).double()


def data(n: int, features: int = 6, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(n)
    x = torch.randn(n, features, generator=generator, dtype=torch.float64)
    return x, torch.randint(0, classes, (n,), generator=generator)


def split_operator(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: list[torch.Tensor] | None = None) -> SplitHessian:
    params = list(model.parameters()) if params is None else params
    layer, inputs = split_point(model, x, params)
    return SplitHessian(model, F.cross_entropy, x, y, params, layer, inputs)


def random(size: int, seed: int) -> torch.Tensor:
    return torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("n, bias", [(4, True), (30, True), (4, False)])
def test_the_split_reproduces_the_hessian(n: int, bias: bool) -> None:
    """H P^T w = P^T M G w for every reduced w, and the two pieces are the Hessian's: exact to rounding."""
    model, (x, y) = mlp(bias=bias), data(n)
    hessian = hs.full_hessian(model, x, y)
    with split_operator(model, x, y) as operator:
        for seed in range(3):
            reduced = random(operator.dim, seed)
            lifted = operator.lift(reduced)
            torch.testing.assert_close(hessian @ lifted, operator.lift(operator.matvec(operator.metric(reduced))), rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(lifted @ lifted, reduced @ operator.metric(reduced), rtol=1e-10, atol=1e-12)
        # project: the lift of the projection is the orthogonal projection; what is left is in the null space
        vector = random(operator.param_dim, 7)
        projected = operator.lift(operator.project(vector))
        torch.testing.assert_close(hessian @ (vector - projected), torch.zeros_like(vector), rtol=0, atol=1e-10)
        assert abs(float(projected @ (vector - projected))) < 1e-9
        torch.testing.assert_close(hessian @ vector, hessian @ projected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [4, 30])
def test_top_eigenvalues_split_or_not_match_the_exact_spectrum(n: int) -> None:
    model, (x, y) = mlp(), data(n)
    hessian = hs.full_hessian(model, x, y)
    spectrum = torch.linalg.eigvalsh(hessian).flip(0).numpy()
    for split in (True, False):
        result = hs.top_eigenvalues(model, x, y, k=3, tol=1e-10, max_iter=200, split=split)
        np.testing.assert_allclose(result.eigenvalues, spectrum[:3], rtol=1e-9)
        for value, vector in zip(result.eigenvalues, result.eigenvectors):
            flat = torch.cat([v.reshape(-1) for v in vector])
            assert math.isclose(float(flat.norm()), 1.0, rel_tol=1e-9)
            assert float((hessian @ flat - value * flat).norm()) <= 1e-4 * abs(value)
    magnitude = hs.top_eigenvalues(model, x, y, k=2, tol=1e-10, max_iter=200, which="magnitude", split=True)
    np.testing.assert_allclose(magnitude.eigenvalues, spectrum[np.argsort(-np.abs(spectrum))[:2]], rtol=1e-8)


def test_a_subset_of_parameters_with_a_frozen_bias() -> None:
    model, (x, y) = mlp(), data(5)
    params = [model[1].weight, model[3].weight]
    names = {id(p): i for i, p in enumerate(model.parameters())}
    full = hs.full_hessian(model, x, y)
    index = torch.cat([torch.arange(sum(q.numel() for q in list(model.parameters())[: names[id(p)]]),
                                    sum(q.numel() for q in list(model.parameters())[: names[id(p)] + 1])) for p in params])
    block = full[index][:, index]
    result = hs.top_eigenvalues(model, x, y, k=2, tol=1e-10, params=params, split=True)
    np.testing.assert_allclose(result.eigenvalues, torch.linalg.eigvalsh(block).flip(0)[:2].numpy(), rtol=1e-9)
    assert [v.shape for v in result.eigenvectors[0]] == [p.shape for p in params]


def test_block_trace_is_the_same_estimate_split_or_not_and_near_the_exact_trace() -> None:
    model, (x, y) = mlp(), data(20)
    exact = float(hs.full_hessian(model, x, y).trace())
    split = hs.hessian_trace(model, x, y, samples=40, split=True)
    plain = hs.hessian_trace(model, x, y, samples=40, split=False)
    assert split.estimate == pytest.approx(plain.estimate, rel=1e-10)
    assert split.standard_error == pytest.approx(plain.standard_error, rel=1e-8)
    assert abs(split.estimate - exact) <= 4 * split.standard_error
    chunked = hs.hessian_trace(model, x, y, samples=40, batch_size=7)
    assert chunked.estimate == pytest.approx(plain.estimate, rel=1e-10)


def test_block_quadratic_forms_are_the_diagonal_blocks() -> None:
    model, (x, y) = mlp(), data(12)
    hessian = hs.full_hessian(model, x, y)
    params = list(model.parameters())
    gradient = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
    start = 0
    for g, p in zip(gradient, params):
        probes = torch.randn(3, p.numel(), dtype=torch.float64)
        block = hessian[start : start + p.numel(), start : start + p.numel()]
        torch.testing.assert_close(block_quadratic_forms(g, p, probes), torch.einsum("si,ij,sj->s", probes, block, probes))
        start += p.numel()


def test_spectral_density_split_is_the_quadrature_of_its_start_vector() -> None:
    """With every Lanczos step, each run's rule (its nodes, the null node at 0 included) integrates the powers of
    H against its Rademacher start vector exactly: v^T H^p v / v^T v."""
    model, (x, y) = mlp(), data(4)
    hessian = hs.full_hessian(model, x, y)
    with split_operator(model, x, y) as operator:
        reduced_dim = operator.dim
    density = hs.spectral_density(model, x, y, lanczos_steps=reduced_dim, runs=1, seed=3, split=True)
    start = linalg.rademacher((hessian.shape[0],), torch.Generator().manual_seed(3))
    nodes, weights = density.nodes[0], density.weights[0]
    assert math.isclose(weights.sum(), 1.0, rel_tol=1e-12) and nodes[-1] == 0.0 and weights[-1] > 0.1
    for power in range(5):
        exact = float(start @ torch.linalg.matrix_power(hessian, power) @ start / (start @ start))
        assert math.isclose(float(np.sum(weights * nodes**power)), exact, rel_tol=1e-8, abs_tol=1e-12)
    assert density.dim == hessian.shape[0] and density.matvecs == reduced_dim


def test_the_operator_each_routine_chooses() -> None:
    model, (x, y) = mlp(features=6), data(4)
    assert isinstance(hs._operator(model, F.cross_entropy, x, y, None, None, None, gram=True), SplitHessian)
    many = data(20)  # 20 samples >= 2 * (6 + 1): a Hessian-vector product is cheaper than a Gram product
    assert isinstance(hs._operator(model, F.cross_entropy, *many, None, None, None, gram=True), hs.HessianOperator)
    assert isinstance(hs._operator(model, F.cross_entropy, *many, None, None, None, gram=False), SplitHessian)
    assert isinstance(hs._operator(model, F.cross_entropy, *many, None, 5, None, gram=False), hs.HessianOperator)
    assert isinstance(hs._operator(model, F.cross_entropy, x, y, None, None, False, gram=True), hs.HessianOperator)
    convolutional = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3)).double()
    image = torch.randn(4, 1, 4, 4, dtype=torch.float64)
    cases = [
        (lambda: hs.top_eigenvalues(convolutional, image, y, split=True), "Conv2d"),
        (lambda: hs.top_eigenvalues(model, x, y, batch_size=2, split=True), "batch_size"),
        (lambda: hs.top_eigenvalues(model, x, y, params=[model[3].weight], split=True), "weight"),
        (lambda: hs.top_eigenvalues(model, x, y, method="power", split=True), "lanczos"),
        (lambda: hs.hessian_trace(model, x, y, method="hutchinson", split=True), "blocks"),
        (lambda: hs.top_eigenvalues(model, x, y, split="yes"), "split"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_split_analyses_leave_the_model_untouched() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Dropout(0.3), nn.Linear(5, 3)).double()
    x, y = data(4)
    model.train()
    with torch.no_grad():
        model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hs.top_eigenvalues(model, x, y, k=2, split=True)
    hs.hessian_trace(model, x, y, samples=3, split=True)
    hs.spectral_density(model, x, y, lanczos_steps=5, runs=2, split=True)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0


# ----------------------------------------------------------------------------------------------- linalg


def test_lanczos_in_a_metric_finds_the_eigenpairs_of_m_g() -> None:
    """M G with G = A A^T has the nonzero eigenvalues of A^T M A; the eigenvectors are G-orthonormal."""
    generator = torch.Generator().manual_seed(0)
    factor = torch.randn(12, 7, generator=generator, dtype=torch.float64)  # G has rank 7
    symmetric = torch.randn(12, 12, generator=generator, dtype=torch.float64)
    symmetric = symmetric + symmetric.T
    gram = factor @ factor.T
    spectrum = torch.linalg.eigvalsh(factor.T @ symmetric @ factor).flip(0).numpy()
    result = linalg.lanczos_eigenpairs(lambda v: symmetric @ v, 12, 3, tol=1e-12, max_iter=12, metric=lambda v: gram @ v)
    np.testing.assert_allclose(result.eigenvalues, spectrum[:3], rtol=1e-9)
    vectors = torch.stack([v for (v,) in result.eigenvectors])
    torch.testing.assert_close(vectors @ gram @ vectors.T, torch.eye(3, dtype=torch.float64), atol=1e-9, rtol=0)
    for value, vector in zip(result.eigenvalues, vectors):  # A^T y is an eigenvector of A^T M A
        lifted = factor.T @ vector
        torch.testing.assert_close(factor.T @ symmetric @ factor @ lifted, value * lifted, atol=1e-7, rtol=0)
    decomposition = linalg.lanczos(lambda v: symmetric @ v, 12, 7, metric=lambda v: gram @ v)
    torch.testing.assert_close(decomposition.images, decomposition.basis @ gram)
    np.testing.assert_allclose(np.sort(torch.linalg.eigvalsh(decomposition.tridiagonal()).numpy())[::-1], spectrum, rtol=1e-8, atol=1e-8)


def test_lanczos_in_a_metric_keeps_basis_and_images_as_its_rows_grow() -> None:
    """More steps than the first block of rows (16): the rows are reallocated and keep the basis G-orthonormal
    and the images equal to G times the basis."""
    generator = torch.Generator().manual_seed(11)
    factor = torch.randn(40, 30, generator=generator, dtype=torch.float64)
    symmetric = torch.randn(40, 40, generator=generator, dtype=torch.float64)
    gram = factor @ factor.T
    decomposition = linalg.lanczos(lambda v: (symmetric + symmetric.T) @ v, 40, 25, metric=lambda v: gram @ v)
    assert decomposition.basis.shape == decomposition.images.shape == (25, 40)
    torch.testing.assert_close(decomposition.images, decomposition.basis @ gram)
    torch.testing.assert_close(decomposition.basis @ decomposition.images.T, torch.eye(25, dtype=torch.float64), atol=1e-10, rtol=0)


def test_the_stopping_rule_bounds_the_eigenvalue_error() -> None:
    eigenvalues = np.concatenate([[10.0, 7.0, 6.5], np.linspace(-2.0, 4.0, 197)])
    matrix = random_symmetric(eigenvalues)
    for tol in (1e-2, 1e-4, 1e-7):
        result = linalg.lanczos_eigenpairs(lambda v: matrix @ v, 200, 2, tol=tol, max_iter=200)
        assert result.converged.all() and np.all(result.errors <= tol * np.abs(result.eigenvalues))
        assert np.all(np.abs(result.eigenvalues - [10.0, 7.0]) <= 4 * tol * np.array([10.0, 7.0]))
        assert np.all(result.errors <= result.residuals)
    loose = linalg.lanczos_eigenpairs(lambda v: matrix @ v, 200, 1, tol=1e-2)
    assert loose.residuals[0] > 1e-2 * loose.eigenvalues[0]  # stopped on the error, before the residual got there
    np.testing.assert_allclose(linalg._error_estimates(np.array([3.0, 1.0, 0.5]), np.array([0.1, 0.2, 1.0])), [0.005, 0.08, 1.0])


def random_symmetric(eigenvalues: np.ndarray, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=generator, dtype=torch.float64))
    return basis @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ basis.T


def test_block_hutchinson_is_exact_on_diagonal_blocks_and_matches_its_variance() -> None:
    matrix = random_symmetric(np.linspace(-1.0, 3.0, 20), seed=4)
    sizes = [5, 8, 7]
    edges = np.cumsum([0] + sizes)
    blocks = [matrix[a:b, a:b] for a, b in zip(edges[:-1], edges[1:])]

    def forms(probes: list[torch.Tensor]) -> torch.Tensor:
        return sum(torch.einsum("si,ij,sj->s", z, block, z) for z, block in zip(probes, blocks))

    result = linalg.block_hutchinson(forms, sizes, samples=4000, seed=0, group=64)
    assert result.samples == 4000 and abs(result.estimate - float(matrix.trace())) <= 4 * result.standard_error
    variance = 2 * sum(float((b**2).sum() - (b.diagonal() ** 2).sum()) for b in blocks)
    assert math.isclose(result.standard_error**2 * 4000, variance, rel_tol=0.1)
    plain = 2 * float((matrix**2).sum() - (matrix.diagonal() ** 2).sum())
    assert variance < plain
    with pytest.raises(ValueError, match="samples"):
        linalg.block_hutchinson(forms, sizes, samples=1)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_split_routines_agree_with_pyhessian() -> None:
    pyhessian = pytest.importorskip("pyhessian")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(24, 40), torch.randint(0, 4, (24,))
    exact = hs.full_hessian(copy.deepcopy(model).double(), x.double(), y)
    reference = pyhessian.hessian(copy.deepcopy(model), nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    torch.manual_seed(1)
    (their_top,), _ = reference.eigenvalues(maxIter=1000, tol=1e-6)
    ours_top = hs.top_eigenvalues(model, x, y, tol=1e-6, split=True).eigenvalues[0]
    assert math.isclose(ours_top, their_top, rel_tol=1e-3)
    assert math.isclose(ours_top, float(torch.linalg.eigvalsh(exact)[-1]), rel_tol=1e-4)
    their_samples = np.array(reference.trace(maxIter=100, tol=0.0))
    their_error = their_samples.std(ddof=1) / math.sqrt(len(their_samples))
    ours = hs.hessian_trace(model, x, y, samples=30, split=True)
    assert ours.standard_error < their_error
    assert abs(ours.estimate - their_samples.mean()) <= 4 * math.hypot(ours.standard_error, their_error)
    assert abs(ours.estimate - float(exact.trace())) <= 4 * ours.standard_error


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_split_routines_on_cuda_match_the_cpu() -> None:
    model, (x, y) = mlp(), data(4)
    on_cpu = [hs.top_eigenvalues(model, x, y, k=2, tol=1e-10, split=True).eigenvalues,
              hs.spectral_density(model, x, y, lanczos_steps=20, runs=1, split=True).nodes]
    model, x, y = model.cuda(), x.cuda(), y.cuda()
    on_cuda = [hs.top_eigenvalues(model, x, y, k=2, tol=1e-10, split=True).eigenvalues,
               hs.spectral_density(model, x, y, lanczos_steps=20, runs=1, split=True).nodes]
    np.testing.assert_allclose(on_cuda[0], on_cpu[0], rtol=1e-8)
    np.testing.assert_allclose(np.sort(on_cuda[1].ravel()), np.sort(on_cpu[1].ravel()), atol=1e-6)
