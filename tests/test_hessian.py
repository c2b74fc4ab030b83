"""dldna.landscape.hessian and the matrix-free algorithms of dldna.linalg in float64: Hessian-vector products against torch.func.hessian and closed forms,
eigenvalues against torch.linalg.eigvalsh, trace estimators against the exact trace, Lanczos and SLQ invariants,
model left untouched, bad arguments, and a cross-check with PyHessian."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dldna import linalg
from dldna.landscape import hessian as hs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: one thread avoids thread-pool overhead that dominates on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()


def classification_data(n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=generator, dtype=torch.float64), torch.randint(0, 3, (n,), generator=generator)


def reference_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn=F.cross_entropy) -> torch.Tensor:
    """torch.func.hessian over the parameter dict, assembled into one matrix in parameters() order."""
    names = [name for name, _ in model.named_parameters()]
    params = {name: p.detach() for name, p in model.named_parameters()}
    blocks = torch.func.hessian(lambda p: loss_fn(functional_call(model, p, (x,)), y))(params)
    sizes = [params[name].numel() for name in names]
    rows = [[blocks[a][b].reshape(sizes[i], sizes[j]) for j, b in enumerate(names)] for i, a in enumerate(names)]
    return torch.cat([torch.cat(row, 1) for row in rows])


def random_symmetric(eigenvalues: list[float] | np.ndarray, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    size = len(eigenvalues)
    basis, _ = torch.linalg.qr(torch.randn(size, size, generator=generator, dtype=torch.float64))
    return basis @ torch.diag(torch.as_tensor(eigenvalues, dtype=torch.float64)) @ basis.T


def snapshot(model: nn.Module) -> tuple[dict[str, torch.Tensor], list[bool], list[object]]:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return state, [m.training for m in model.modules()], [p.grad for p in model.parameters()]


def assert_unchanged(model: nn.Module, before: tuple[dict[str, torch.Tensor], list[bool], list[object]]) -> None:
    state, modes, grads = before
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters()) and all(g is None for g in grads)


# ----------------------------------------------------------------------------------------------- products


def test_hvp_equals_func_hessian_times_vector():
    model, (x, y) = tiny_mlp(), classification_data()
    hessian = reference_hessian(model, x, y)
    generator = torch.Generator().manual_seed(3)
    vector = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in model.parameters()]
    product = hs.hvp(model, F.cross_entropy, x, y, vector)
    flat = torch.cat([v.reshape(-1) for v in vector])
    torch.testing.assert_close(torch.cat([p.reshape(-1) for p in product]), hessian @ flat, rtol=1e-10, atol=1e-12)
    assert [p.shape for p in product] == [p.shape for p in model.parameters()]
    torch.testing.assert_close(hs.full_hessian(model, x, y), hessian, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(hessian, hessian.T, rtol=1e-10, atol=1e-12)


def test_operator_in_chunks_equals_whole_batch_and_counts_products():
    model, (x, y) = tiny_mlp(), classification_data(n=20)
    whole = hs.HessianOperator(model, F.cross_entropy, x, y)
    chunked = hs.HessianOperator(model, F.cross_entropy, x, y, batch_size=7)
    hessian = reference_hessian(model, x, y)
    vector = torch.randn(whole.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with chunked:
        first, second = chunked.matvec(vector), chunked.matvec(2 * vector)
    torch.testing.assert_close(first, hessian @ vector, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(second, 2 * first, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(whole(vector), first, rtol=1e-10, atol=1e-12)
    assert (whole.dim, whole.matvecs, chunked.matvecs) == (43, 1, 2)


def test_subset_of_parameters_gives_the_matching_hessian_block():
    model, (x, y) = tiny_mlp(), classification_data()
    last = list(model[2].parameters())
    operator = hs.HessianOperator(model, F.cross_entropy, x, y, params=last)
    block = reference_hessian(model, x, y)[-18:, -18:]
    explicit = torch.stack([operator.matvec(e) for e in torch.eye(18, dtype=torch.float64)], 1)
    torch.testing.assert_close(explicit, block, rtol=1e-10, atol=1e-12)


class PartlyUsed(nn.Module):
    """A linear map plus a parameter the forward pass never touches."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.unused = nn.Parameter(torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_zero_curvature_for_a_linear_loss_and_an_unused_parameter():
    torch.manual_seed(0)
    model = PartlyUsed().double()
    x, y = torch.randn(8, 3, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    vector = [torch.ones_like(p) for p in model.parameters()]
    for product in hs.hvp(model, lambda out, target: out.mean(), x, y, vector):
        assert torch.count_nonzero(product) == 0
    names = [name for name, _ in model.named_parameters()]
    product = dict(zip(names, hs.hvp(model, half_mse, x, y, vector)))
    inputs = torch.cat([x, torch.ones(8, 1, dtype=torch.float64)], 1)
    expected = inputs.T @ inputs / 8 @ torch.ones(4, dtype=torch.float64)
    found = torch.cat([product["linear.weight"].reshape(-1), product["linear.bias"]])
    torch.testing.assert_close(found, expected, rtol=1e-12, atol=1e-12)
    assert torch.count_nonzero(product["unused"]) == 0


def linear_regression() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(6, 1, bias=False).double()
    x = torch.randn(40, 6, dtype=torch.float64) * torch.linspace(0.5, 3.0, 6, dtype=torch.float64)
    return model, x, torch.randn(40, dtype=torch.float64)


def half_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((output.squeeze(-1) - target) ** 2).mean()


def logistic_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(output.squeeze(-1), target)


@pytest.mark.parametrize("problem", ["linear", "logistic"])
def test_closed_form_hessians(problem):
    model, x, y = linear_regression()
    if problem == "linear":
        loss_fn, exact = half_mse, x.T @ x / len(x)
    else:
        loss_fn, y = logistic_loss, (y > 0).double()
        p = torch.sigmoid(x @ model.weight.detach().T).squeeze(-1)
        exact = x.T @ torch.diag(p * (1 - p)) @ x / len(x)
    torch.testing.assert_close(hs.full_hessian(model, x, y, loss_fn), exact, rtol=1e-10, atol=1e-12)
    vector = torch.randn(1, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (product,) = hs.hvp(model, loss_fn, x, y, [vector])
    torch.testing.assert_close(product, (exact @ vector.reshape(-1)).reshape(1, 6), rtol=1e-10, atol=1e-12)
    spectrum = torch.linalg.eigvalsh(exact).flip(0).numpy()
    for method in ("lanczos", "power"):
        result = hs.top_eigenvalues(model, x, y, loss_fn, k=2, method=method, tol=1e-10, max_iter=2000)
        np.testing.assert_allclose(result.eigenvalues, spectrum[:2], rtol=1e-8)
    trace = hs.hessian_trace(model, x, y, loss_fn, samples=300)
    assert abs(trace.estimate - float(exact.trace())) <= 4 * trace.standard_error


# ----------------------------------------------------------------------------------------------- eigenvalues


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_match_eigvalsh_of_the_full_hessian(method):
    model, (x, y) = tiny_mlp(), classification_data()
    hessian = reference_hessian(model, x, y)
    spectrum = torch.linalg.eigvalsh(hessian).flip(0).numpy()
    assert spectrum[-1] < -0.1  # indefinite: "top" must mean largest value, not largest magnitude
    result = hs.top_eigenvalues(model, x, y, k=3, method=method, tol=1e-6, max_iter=2000)
    assert result.converged.all() and np.all(np.diff(result.eigenvalues) <= 0)
    assert np.all(result.errors <= 1e-6 * np.abs(result.eigenvalues) + 1e-12)
    assert np.all(result.errors <= result.residuals)
    assert np.all(np.abs(result.eigenvalues - spectrum[:3]) <= 1e-6 * np.abs(spectrum[:3]))
    assert np.all(np.abs(result.eigenvalues - spectrum[:3]) <= result.residuals + 1e-12)
    for value, residual, vector in zip(result.eigenvalues, result.residuals, result.eigenvectors):
        assert [v.shape for v in vector] == [p.shape for p in model.parameters()]
        flat = torch.cat([v.reshape(-1) for v in vector])
        assert math.isclose(float(flat.norm()), 1.0, rel_tol=1e-10)
        assert math.isclose(float((hessian @ flat - value * flat).norm()), residual, rel_tol=1e-3, abs_tol=1e-10)
        assert float((hessian @ flat - value * flat).norm()) <= 1e-2 * abs(value)
    assert result.matvecs == result.iterations > 0


@pytest.mark.parametrize("method", [linalg.power_iteration, linalg.lanczos_eigenpairs])
def test_algebraic_and_magnitude_orderings_on_an_indefinite_matrix(method):
    matrix = random_symmetric([-10.0, 5.0, 3.0, 1.0, 0.5, -0.2, 0.1, -2.0])
    for which, expected in (("algebraic", [5.0, 3.0, 1.0]), ("magnitude", [-10.0, 5.0, 3.0])):
        result = method(lambda v: matrix @ v, 8, 3, tol=1e-9, max_iter=3000, which=which)
        np.testing.assert_allclose(result.eigenvalues, expected, rtol=1e-7)
        for value, (vector,) in zip(result.eigenvalues, result.eigenvectors):
            assert float((matrix @ vector - value * vector).norm()) <= 1e-7 * abs(value)


def test_power_iteration_stops_on_the_residual_rule():
    matrix = random_symmetric([4.0, 3.0, 1.0, 0.5, 0.1])
    loose = linalg.power_iteration(lambda v: matrix @ v, 5, 1, tol=1e-2, max_iter=10_000)
    tight = linalg.power_iteration(lambda v: matrix @ v, 5, 1, tol=1e-8, max_iter=10_000)
    assert loose.converged.all() and tight.converged.all()
    assert loose.residuals[0] <= 1e-2 * 4.0 and tight.residuals[0] <= 1e-8 * 4.0
    assert loose.iterations < tight.iterations
    capped = linalg.power_iteration(lambda v: matrix @ v, 5, 1, tol=1e-12, max_iter=3)
    assert capped.iterations == 3 and not capped.converged[0]


# ----------------------------------------------------------------------------------------------- Lanczos and SLQ


def test_full_dimension_lanczos_recovers_the_spectrum():
    eigenvalues = np.linspace(-3.0, 7.0, 30) ** 3 / 50
    matrix = random_symmetric(eigenvalues, seed=2)
    decomposition = linalg.lanczos(lambda v: matrix @ v, 30, 30, seed=4)
    basis = decomposition.basis
    torch.testing.assert_close(basis @ basis.T, torch.eye(30, dtype=torch.float64), rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch.linalg.eigvalsh(decomposition.tridiagonal()).numpy(), eigenvalues, atol=1e-10)


def test_lanczos_restarts_when_the_krylov_space_is_invariant():
    eigenvalues = [2.0] * 4 + [1.0] * 3 + [-1.0] * 3
    matrix = random_symmetric(eigenvalues, seed=5)
    decomposition = linalg.lanczos(lambda v: matrix @ v, 10, 10, seed=0)
    assert (decomposition.betas[:-1] == 0).sum() >= 2
    ritz_values = torch.linalg.eigvalsh(decomposition.tridiagonal()).numpy()
    np.testing.assert_allclose(ritz_values, sorted(eigenvalues), atol=1e-10)


def test_lanczos_quadrature_reproduces_the_moments():
    matrix = random_symmetric(np.linspace(-1.0, 2.0, 40), seed=6)
    start = torch.randn(40, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    steps = 5
    tridiagonal = linalg.lanczos(lambda v: matrix @ v, 40, steps, start=start).tridiagonal()
    unit = start / start.norm()
    for power in range(2 * steps):
        exact = unit @ torch.linalg.matrix_power(matrix, power) @ unit
        torch.testing.assert_close(torch.linalg.matrix_power(tridiagonal, power)[0, 0], exact, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_partial_reorthogonalization_keeps_the_basis_semi_orthogonal_with_few_passes(dtype, monkeypatch):
    """Simon's estimate calls for a pass over the basis only now and then, yet every pair of Lanczos vectors stays
    orthogonal to sqrt(eps); without any pass the top eigenvalue comes back as copies."""
    eigenvalues = np.concatenate([np.linspace(-1.0, 1.0, 400), [2.0, 2.5, 4.0]])
    matrix = random_symmetric(eigenvalues, seed=1).to(dtype)
    start = torch.randn(403, generator=torch.Generator().manual_seed(3), dtype=dtype)
    passes, project_out = [], linalg._project_out
    monkeypatch.setattr(linalg, "_project_out", lambda *args, **kwargs: (passes.append(1), project_out(*args, **kwargs)))
    _, basis, _ = linalg._lanczos(lambda v: matrix @ v, start, 120, torch.Generator(), partial_reorthogonalization=True)
    stacked = torch.stack(basis).double()
    loss = (stacked @ stacked.T - torch.eye(120, dtype=torch.float64)).abs().max().item()
    assert loss <= math.sqrt(torch.finfo(dtype).eps) and 0 < len(passes) <= 60
    plain = linalg.lanczos_recurrence(lambda v: matrix @ v, start, 120)
    assert np.sum(np.abs(torch.linalg.eigvalsh(plain.tridiagonal()).numpy() - 4.0) < 1e-4) >= 2
    result = linalg.lanczos_eigenpairs(lambda v: matrix @ v, 403, 3, tol=1e-10 if dtype == torch.float64 else 1e-6,
                                       max_iter=200, dtype=dtype)
    np.testing.assert_allclose(result.eigenvalues, [4.0, 2.5, 2.0], rtol=1e-9 if dtype == torch.float64 else 1e-6)


def test_the_plain_recurrence_keeps_the_quadrature_after_losing_orthogonality():
    """Without reorthogonalization the converged top eigenvalue comes back as copies; together they carry its
    weight, and the rule integrates the powers of the matrix as exactly as the reorthogonalized one."""
    eigenvalues = np.concatenate([np.linspace(0.0, 1.0, 300), [3.0, 5.0, 10.0]])
    matrix = random_symmetric(eigenvalues, seed=1)
    start = torch.randn(303, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    plain = linalg.gauss_quadrature(linalg.lanczos_recurrence(lambda v: matrix @ v, start, 80))
    full = linalg.gauss_quadrature(linalg.lanczos(lambda v: matrix @ v, 303, 80, start=start))
    at_top = [np.abs(nodes - 10.0) < 1e-6 for nodes, _ in (plain, full)]
    assert at_top[0].sum() >= 3 and at_top[1].sum() == 1
    assert math.isclose(plain[1][at_top[0]].sum(), full[1][at_top[1]].sum(), rel_tol=1e-10)
    unit = start / start.norm()
    for power in (0, 1, 2, 10, 40, 100, 159):
        exact = float(unit @ torch.linalg.matrix_power(matrix, power) @ unit)
        assert math.isclose(float(np.sum(plain[1] * plain[0] ** power)), exact, rel_tol=1e-12)
    grid = np.linspace(-0.5, 10.5, 500)
    densities = [linalg.density_from_quadrature(n[None], w[None], 303, 80, grid, 0.05).density for n, w in (plain, full)]
    np.testing.assert_allclose(densities[0], densities[1], rtol=0, atol=1e-12)


def test_the_plain_recurrence_ends_when_the_krylov_space_is_invariant():
    eigenvalues = [2.0] * 4 + [1.0] * 3 + [-1.0] * 3
    matrix = random_symmetric(eigenvalues, seed=5)
    coefficients = linalg.lanczos_recurrence(lambda v: matrix @ v, torch.randn(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64), 8)
    assert len(coefficients.alphas) == 3 and coefficients.betas[-1] == 0
    density = linalg.slq(lambda v: matrix @ v, 10, 8, 2, seed=0)
    assert density.nodes.shape == density.weights.shape == (2, 8) and density.matvecs == 6
    for nodes, weights in zip(density.nodes, density.weights):  # three exact nodes, padded with weight 0
        np.testing.assert_allclose(np.sort(nodes[weights > 1e-12]), [-1.0, 1.0, 2.0], atol=1e-10)
        assert math.isclose(weights.sum(), 1.0, rel_tol=1e-12)


def test_slq_weights_nodes_and_density():
    eigenvalues = np.concatenate([np.zeros(40), np.linspace(0.1, 1.0, 15), [5.0, 8.0]])
    matrix = random_symmetric(eigenvalues, seed=8)
    density = linalg.slq(lambda v: matrix @ v, 57, 12, 6, seed=0)
    assert density.nodes.shape == density.weights.shape == (6, 12) and density.matvecs == 72
    np.testing.assert_allclose(density.weights.sum(axis=1), 1.0, atol=1e-12)
    assert density.nodes.min() >= -1e-10 and density.nodes.max() <= 8.0 + 1e-10
    assert np.isclose(density.nodes.max(), 8.0, atol=1e-8)  # the extreme eigenvalue converges first
    assert math.isclose(np.trapezoid(density.density, density.grid), 1.0, rel_tol=1e-3)
    full = linalg.slq(lambda v: matrix @ v, 57, 57, 2, seed=1, grid=np.linspace(-1, 9, 50), sigma=0.05, reorthogonalize=True)
    for nodes in full.nodes:
        np.testing.assert_allclose(nodes, np.sort(eigenvalues), atol=1e-9)
    assert full.grid.shape == full.density.shape == (50,) and full.sigma == 0.05


def test_spectral_density_of_a_tiny_network_with_all_steps_is_its_spectrum():
    model, (x, y) = tiny_mlp(), classification_data()
    spectrum = torch.linalg.eigvalsh(reference_hessian(model, x, y)).numpy()
    before = snapshot(model)
    density = hs.spectral_density(model, x, y, lanczos_steps=43, runs=2, reorthogonalize=True)
    assert_unchanged(model, before)
    np.testing.assert_allclose(density.weights.sum(axis=1), 1.0, atol=1e-12)
    for nodes in density.nodes:
        np.testing.assert_allclose(nodes, spectrum, atol=1e-9)
    runs = [float(43 * np.sum(w * n)) for w, n in zip(density.weights, density.nodes)]
    assert math.isclose(density.trace_estimate, np.mean(runs), rel_tol=1e-12)
    # The default, without reorthogonalization, gives the same smoothed density (30 steps: the start vectors'
    # Krylov spaces, of dimension 38, do not become invariant, so neither run restarts from a new random vector).
    grid = np.linspace(spectrum.min() - 1, spectrum.max() + 1, 400)
    plain, full = (hs.spectral_density(model, x, y, lanczos_steps=30, runs=2, grid=grid, sigma=0.05, reorthogonalize=r)
                   for r in (False, True))
    np.testing.assert_allclose(plain.density, full.density, rtol=0, atol=1e-9 * full.density.max())
    assert math.isclose(plain.trace_estimate, full.trace_estimate, rel_tol=1e-9)


# ----------------------------------------------------------------------------------------------- trace


@pytest.mark.parametrize("method", ["hutchinson", "hutch++"])
def test_trace_estimates_lie_within_four_standard_errors(method):
    model, (x, y) = tiny_mlp(), classification_data()
    exact = float(reference_hessian(model, x, y).trace())
    result = hs.hessian_trace(model, x, y, samples=30, method=method, seed=2)
    assert result.samples == 30 and result.standard_error > 0
    assert abs(result.estimate - exact) <= 4 * result.standard_error


def test_hutchinson_matches_its_variance_formula():
    matrix = random_symmetric(np.linspace(-1.0, 3.0, 20), seed=9)
    exact_variance = 2 * (float((matrix**2).sum()) - float((matrix.diagonal() ** 2).sum()))
    result = linalg.hutchinson(lambda v: matrix @ v, 20, samples=4000, seed=0)
    assert abs(result.estimate - float(matrix.trace())) <= 4 * result.standard_error
    assert math.isclose(result.standard_error**2 * 4000, exact_variance, rel_tol=0.1)


def test_hutch_plus_plus_beats_hutchinson_on_a_low_rank_dominated_matrix():
    eigenvalues = np.concatenate([np.array([100.0, 60.0, 40.0, 30.0, 20.0]), np.full(195, 0.05)])
    matrix = random_symmetric(eigenvalues, seed=10)
    exact = float(eigenvalues.sum())
    plain = [abs(linalg.hutchinson(lambda v: matrix @ v, 200, 30, seed=s).estimate - exact) for s in range(10)]
    improved = [abs(linalg.hutch_plus_plus(lambda v: matrix @ v, 200, 30, seed=s).estimate - exact) for s in range(10)]
    assert np.mean(improved) < 0.1 * np.mean(plain)


def test_hutch_plus_plus_is_exact_when_the_sketch_spans_everything():
    matrix = random_symmetric(np.linspace(-2.0, 2.0, 6) + 0.3, seed=11)
    result = linalg.hutch_plus_plus(lambda v: matrix @ v, 6, samples=20)
    assert math.isclose(result.estimate, float(matrix.trace()), rel_tol=1e-10)
    assert result.standard_error < 1e-10


# ----------------------------------------------------------------------------------------------- model hygiene


class NormDropoutNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Dropout(0.5))
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.mark.parametrize(
    "analysis",
    [
        lambda m, x, y: hs.top_eigenvalues(m, x, y, k=2),
        lambda m, x, y: hs.top_eigenvalues(m, x, y, method="power", batch_size=10),
        lambda m, x, y: hs.hessian_trace(m, x, y, samples=6, method="hutch++"),
        lambda m, x, y: hs.spectral_density(m, x, y, lanczos_steps=5, runs=2),
        lambda m, x, y: hs.full_hessian(m, x, y),
        lambda m, x, y: hs.hvp(m, F.cross_entropy, x, y, [torch.ones_like(p) for p in m.parameters()]),
    ],
)
def test_analyses_leave_the_model_and_its_modes_untouched(analysis):
    torch.manual_seed(0)
    model = NormDropoutNet().double()
    model.train()
    model.body[3].eval()  # mixed modes must come back exactly
    x, y = classification_data()
    with torch.no_grad():
        model.body[1].running_mean.fill_(0.3)
    before = snapshot(model)
    analysis(model, x, y)
    assert_unchanged(model, before)


def test_evaluation_mode_gives_a_deterministic_hessian_despite_dropout():
    torch.manual_seed(0)
    model = NormDropoutNet().double().train()
    x, y = classification_data()
    vector = [torch.ones_like(p) for p in model.parameters()]
    first, second = hs.hvp(model, F.cross_entropy, x, y, vector), hs.hvp(model, F.cross_entropy, x, y, vector)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert model.training


def test_bad_arguments_raise_value_errors_naming_them():
    model, (x, y) = tiny_mlp(), classification_data()
    matvec = lambda v: v  # noqa: E731
    cases = [
        (lambda: hs.top_eigenvalues(model, x, y, k=0), "k"),
        (lambda: hs.top_eigenvalues(model, x, y, k=44), "k"),
        (lambda: hs.top_eigenvalues(model, x, y, method="qr"), "method"),
        (lambda: hs.top_eigenvalues(model, x, y, which="smallest"), "which"),
        (lambda: hs.top_eigenvalues(model, x, y, tol=0.0), "tol"),
        (lambda: hs.top_eigenvalues(model, x, y, max_iter=0), "max_iter"),
        (lambda: hs.top_eigenvalues(model, x, y, k=3, max_iter=2), "max_iter"),
        (lambda: hs.hessian_trace(model, x, y, samples=1), "samples"),
        (lambda: hs.hessian_trace(model, x, y, samples=3, method="hutch++"), "samples"),
        (lambda: hs.hessian_trace(model, x, y, method="exact"), "method"),
        (lambda: hs.spectral_density(model, x, y, lanczos_steps=44), "steps"),
        (lambda: hs.spectral_density(model, x, y, runs=0), "runs"),
        (lambda: hs.spectral_density(model, x, y, lanczos_steps=4, sigma=0.0), "sigma"),
        (lambda: hs.HessianOperator(model, F.cross_entropy, x, y, batch_size=0), "batch_size"),
        (lambda: hs.HessianOperator(model, F.cross_entropy, x, y[:-1]), "x and y"),
        (lambda: hs.HessianOperator(model, F.cross_entropy, x, y).matvec(torch.ones(5, dtype=torch.float64)), "vector"),
        (lambda: hs.hvp(model, F.cross_entropy, x, y, [torch.ones(2)]), "vector"),
        (lambda: hs.full_hessian(model, x, y, max_dim=10), "max_dim"),
        (lambda: linalg.lanczos(matvec, 5, 6), "steps"),
        (lambda: linalg.lanczos(matvec, 5, 2, start=torch.zeros(5, dtype=torch.float64)), "start"),
        (lambda: linalg.lanczos_recurrence(matvec, torch.zeros(5, dtype=torch.float64), 2), "start"),
        (lambda: linalg.lanczos_recurrence(matvec, torch.ones(5, dtype=torch.float64), 6), "steps"),
        (lambda: linalg.power_iteration(matvec, 0), "dim"),
        (lambda: linalg.slq(matvec, 5, 2, 1, grid=np.zeros((2, 2))), "grid"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()


# ----------------------------------------------------------------------------------------------- PyHessian


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_agrees_with_pyhessian():
    pyhessian = pytest.importorskip("pyhessian")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
    x, y = torch.randn(64, 10), torch.randint(0, 4, (64,))
    exact = reference_hessian(copy.deepcopy(model).double(), x.double(), y)
    exact_top, exact_trace = float(torch.linalg.eigvalsh(exact)[-1]), float(exact.trace())

    reference = pyhessian.hessian(copy.deepcopy(model), nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    torch.manual_seed(1)
    (their_top,), _ = reference.eigenvalues(maxIter=1000, tol=1e-6)
    their_samples = np.array(reference.trace(maxIter=200, tol=0.0))
    their_trace, their_error = their_samples.mean(), their_samples.std(ddof=1) / math.sqrt(len(their_samples))

    ours_top = hs.top_eigenvalues(model, x, y, tol=1e-6).eigenvalues[0]
    ours = hs.hessian_trace(model, x, y, samples=200)
    assert math.isclose(ours_top, their_top, rel_tol=0.01) and math.isclose(ours_top, exact_top, rel_tol=1e-4)
    combined = math.hypot(ours.standard_error, their_error)
    assert abs(ours.estimate - their_trace) <= 4 * combined
    assert abs(ours.estimate - exact_trace) <= 4 * ours.standard_error
    assert math.isclose(ours.estimate, their_trace, rel_tol=0.05)
