"""Matrix-free linear algebra on any symmetric operator: random probes, Lanczos, power iteration, Hutchinson,
Hutch++ and stochastic Lanczos quadrature.

An operator is given as a ``matvec`` callable (``v -> A v`` on flat vectors) and its dimension; nothing here
forms the matrix or knows where it comes from, so the same routines run on explicit matrices (the tests) and on
a network's Hessian (:mod:`dldna.landscape.hessian`, which supplies ``matvec`` through Hessian-vector products).

- :func:`power_iteration` and :func:`lanczos_eigenpairs`: the largest eigenpairs.
- :func:`hutchinson`, :func:`block_hutchinson` and :func:`hutch_plus_plus`: the trace.
- :func:`lanczos` and :func:`slq`: the Lanczos decomposition and the whole eigenvalue density
  (:func:`gauss_quadrature` and :func:`density_from_quadrature` are its two halves; :func:`lanczos_recurrence`
  gives the quadrature's tridiagonal matrix without storing a basis).
- :func:`rademacher`: the random ±1 probes of the trace estimators (and of Sophia's Hessian diagonal).

Lanczos also runs on an operator ``v -> M (G v)`` with ``M`` symmetric and ``G`` symmetric positive semi-definite
(``metric=G``): such an operator is self-adjoint in the inner product ``<u, w>_G = u^T G w``, and Lanczos in that
inner product finds its eigenpairs. A network's Hessian ``P^T M P`` has the nonzero eigenvalues of ``M P P^T``,
which is how :mod:`dldna.landscape.split` computes curvature on a first layer's output instead of its weights.

Vectors live in ``dtype`` on ``device`` (float64 on the CPU unless told otherwise). Random vectors are drawn on
the CPU from ``seed`` and then moved, so a seed gives the same vectors on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

MatVec = Callable[[Tensor], Tensor]
Device = torch.device | str

WHICH = ("algebraic", "magnitude")


# ----------------------------------------------------------------------------------------------- results


@dataclass
class EigenResult:
    """Approximate eigenpairs of a symmetric operator.

    ``eigenvalues`` are in descending order (of value for ``which="algebraic"``, of absolute value for
    ``which="magnitude"``). ``eigenvectors[i]`` is the unit eigenvector of ``eigenvalues[i]`` as a list of
    tensors shaped like the parameters (a single flat tensor for a generic operator). ``residuals[i]`` is
    ``||H v_i - lambda_i v_i||``: some eigenvalue lies within that distance of ``eigenvalues[i]``. ``errors[i]``
    estimates the distance to the eigenvalue it approximates (see :func:`lanczos_eigenpairs`; for power iteration
    the residual itself), and ``converged[i]`` says whether it is within ``tol |eigenvalues[i]|``.
    """

    eigenvalues: np.ndarray
    eigenvectors: list[list[Tensor]] = field(repr=False)
    residuals: np.ndarray
    errors: np.ndarray
    converged: np.ndarray
    iterations: int
    matvecs: int


@dataclass
class TraceResult:
    """A stochastic trace estimate, its standard error and the number of matrix-vector products it used."""

    estimate: float
    standard_error: float
    samples: int


@dataclass
class Tridiagonal:
    """The coefficients of ``m`` Lanczos steps: the symmetric tridiagonal matrix ``T`` with diagonal ``alphas`` and
    off-diagonal ``betas[:-1]``; ``betas[-1]`` is the norm of what the last step left outside the Krylov space
    (zero once that space is invariant)."""

    alphas: Tensor
    betas: Tensor

    def tridiagonal(self) -> Tensor:
        """The ``m x m`` tridiagonal matrix ``T`` (float64, on the CPU)."""
        alphas, betas = self.alphas.cpu().double(), self.betas[:-1].cpu().double()
        return torch.diag(alphas) + torch.diag(betas, 1) + torch.diag(betas, -1)


@dataclass
class LanczosDecomposition(Tridiagonal):
    """``A Q^T = Q^T T + betas[-1] q_next e_m^T`` after ``m`` Lanczos steps with full reorthogonalization.

    ``basis`` holds the orthonormal Lanczos vectors as rows ``(m, dim)`` and ``T = Q A Q^T`` (see
    :class:`Tridiagonal`). A zero inside ``betas[:-1]`` marks a restart from a fresh random direction after the
    Krylov space became invariant. With a metric ``G`` the rows are orthonormal in ``<u, w>_G`` and ``images``
    holds their images ``G q`` (without one, ``basis`` itself).
    """

    basis: Tensor
    images: Tensor


@dataclass
class Density:
    """An eigenvalue density estimated by stochastic Lanczos quadrature.

    ``nodes[r]`` and ``weights[r]`` are the Gauss quadrature rule of run ``r`` (the Ritz values and the squared
    first components of the eigenvectors of its tridiagonal matrix; each run's weights sum to 1). ``density``
    is their average smoothed by Gaussian kernels of width ``sigma`` on ``grid``; it integrates to about 1.
    """

    nodes: np.ndarray
    weights: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sigma: float
    dim: int
    matvecs: int

    @property
    def trace_estimate(self) -> float:
        """``dim`` times the mean of the spectrum: each run's rule gives ``v^T A v`` for its unit start vector."""
        return float(self.dim * np.mean(np.sum(self.weights * self.nodes, axis=1)))


# ----------------------------------------------------------------------------------------------- checks


def check_int(name: str, value: int, minimum: int = 1) -> int:
    """``value`` as an ``int``; ``ValueError`` naming ``name`` unless it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value``; ``ValueError`` naming ``name`` unless it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_tol(tol: float) -> float:
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    return float(tol)


def _check_eigen_arguments(dim: int, k: int, tol: float, max_iter: int, which: str) -> tuple[int, int, float, int]:
    """The checks of both eigensolvers; returns ``dim``, ``k``, ``tol`` and ``max_iter`` as numbers."""
    dim, k = check_int("dim", dim), check_int("k", k)
    if k > dim:
        raise ValueError(f"k must be <= dim={dim}, got {k}")
    check_choice("which", which, WHICH)
    return dim, k, _check_tol(tol), check_int("max_iter", max_iter)


# ----------------------------------------------------------------------------------------------- random vectors


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _gaussian(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype, device: Device) -> Tensor:
    return torch.randn(shape, generator=generator, dtype=dtype).to(device=device)


def rademacher(
    shape: tuple[int, ...], generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float64, device: Device = "cpu"
) -> Tensor:
    """Independent ±1 entries with probability ½ each: the probes of Hutchinson-type estimators, whose
    ``E[z zᵀ] = I`` makes ``zᵀ A z`` unbiased for the trace and ``z ⊙ A z`` for the diagonal. Drawn from
    ``generator`` on its own device (on ``device`` without one), then moved to ``device`` as ``dtype``."""
    source = generator.device if generator is not None else torch.device(device)
    signs = torch.randint(0, 2, shape, generator=generator, device=source).mul_(2).sub_(1)
    return signs.to(device=device, dtype=dtype)


def _orthogonalize(vector: Tensor, basis: Tensor | None, images: Tensor | None = None) -> Tensor:
    """Remove the components of ``vector`` along the orthonormal rows of ``basis`` (twice, for stability).

    With ``images`` (the rows ``G q`` of a metric ``G``), orthonormal and orthogonal mean in ``<u, w>_G``.
    """
    if basis is None or len(basis) == 0:
        return vector
    images = basis if images is None else images
    for _ in range(2):
        vector = vector - basis.T @ (images @ vector)
    return vector


# ----------------------------------------------------------------------------------------------- Lanczos


def _orthogonality_estimate(
    omega: np.ndarray, omega_before: np.ndarray, alphas: list[float], betas: list[float], beta: float, rounding: float
) -> np.ndarray:
    """Simon's (1984) estimate of ``<q_{s+1}, q_j>`` for ``j <= s`` from the recurrence's coefficients alone.

    ``omega[j]`` estimates ``<q_s, q_j>`` (``omega[s] = 1``), ``omega_before[j]`` the same for ``q_{s-1}``;
    ``alphas`` holds ``alpha_0 .. alpha_s``, ``betas`` holds ``beta_0 .. beta_{s-1}`` and ``beta`` is ``beta_s``.
    Taking the inner product of ``beta_s q_{s+1} = A q_s - alpha_s q_s - beta_{s-1} q_{s-1}`` with ``q_j`` and
    using the recurrence for ``A q_j`` gives ``beta_s w_{s+1,j} = beta_j w_{s,j+1} + (alpha_j - alpha_s) w_{s,j}
    + beta_{j-1} w_{s,j-1} - beta_{s-1} w_{s-1,j}``, plus a rounding term of size ``rounding`` with the sign that
    makes the estimate larger.
    """
    s = len(alphas) - 1
    a, b = np.asarray(alphas), np.asarray(betas)
    t = b[:s] * omega[1 : s + 1] + (a[:s] - a[s]) * omega[:s]
    t[1:] += b[: s - 1] * omega[: s - 1]
    if s:
        t -= b[s - 1] * omega_before[:s]
    return (t + np.copysign(rounding, t)) / beta


def _project_out(vector: Tensor, rows: list[Tensor], images: list[Tensor], image: Tensor | None = None) -> None:
    """Remove from ``vector``, in place, its components along the ``rows``, orthonormal in the metric whose
    ``images`` (``G q`` for each row) give the inner products: one classical Gram-Schmidt pass. ``image``, the
    metric's image of ``vector``, is updated with it."""
    if not rows:
        return
    coefficients = torch.stack([torch.dot(row_image, vector) for row_image in images])
    for row, row_image, coefficient in zip(rows, images, coefficients):
        vector.addcmul_(row, coefficient, value=-1)
        if image is not None:
            image.addcmul_(row_image, coefficient, value=-1)


def _combination(rows: list[Tensor], weights: Tensor) -> Tensor:
    """``sum_i weights[i] rows[i]`` for separate row tensors."""
    total = rows[0] * weights[0]
    for row, weight in zip(rows[1:], weights[1:]):
        total.addcmul_(row, weight)
    return total


def _lanczos(
    matvec: MatVec,
    start: Tensor,
    steps: int,
    generator: torch.Generator,
    stop: Callable[[list[float], list[float]], bool] | None = None,
    metric: MatVec | None = None,
    partial_reorthogonalization: bool = False,
) -> tuple[Tridiagonal, list[Tensor], list[Tensor]]:
    """Lanczos with reorthogonalization on ``A = matvec o metric`` in the inner product of ``metric`` (the
    identity when None); ``stop(alphas, betas)`` may end it early after any step. Returns the coefficients, the
    Lanczos vectors and their images ``G q`` (the vectors themselves without a metric).

    Each step costs one ``matvec`` and, with a metric, one ``metric`` product: ``p = G q`` serves both the
    product ``A q = M p`` and every inner product with ``q``. Full reorthogonalization orthogonalizes every new
    vector against the whole basis. Partial reorthogonalization (Simon, 1984) does so only when the estimated
    loss of orthogonality (:func:`_orthogonality_estimate`) passes ``sqrt(eps)``, and once more at the next step;
    the basis then stays orthogonal to ``sqrt(eps)``, which keeps the tridiagonal matrix's eigenvalues as exact as
    full reorthogonalization does. Orthogonality is lost along Ritz vectors that have converged (Paige, 1980), so
    a short run, the top eigenvalue to ``1e-3`` say, may need no pass at all. After a restart ``betas[-1]`` is 0,
    so the recurrence correctly ignores the vector before it.

    The vectors are kept as separate tensors, each as long as the operator is wide: memory the allocator hands
    back from the products' own results, where one block for all ``steps`` would be fresh memory whose first
    touch costs more than the vector operations of a step.
    """
    dim = start.numel()
    basis: list[Tensor] = []
    images: list[Tensor] = basis if metric is None else []
    alphas: list[float] = []
    betas: list[float] = []
    eps = torch.finfo(start.dtype).eps
    breakdown, semi_orthogonal = 1e3 * eps, math.sqrt(eps)
    local = eps * math.sqrt(dim) / 2  # what the three-term recurrence leaves of <q_{s+1}, q_s>
    scale = 0.0
    omega, omega_before = np.ones(1), np.zeros(0)
    reorthogonalize_next = False

    def measured(vector: Tensor) -> tuple[Tensor, Tensor]:
        image = vector if metric is None else metric(vector)
        return image, torch.dot(vector, image).clamp_min(0).sqrt()

    def store(vector: Tensor, image: Tensor, norm: Tensor) -> None:
        basis.append(vector / norm)
        if metric is not None:
            images.append(image / norm)

    image, norm = measured(start)
    if not bool(norm > 0):
        raise ValueError("start must have a positive norm in the metric")
    store(start, image, norm)
    for step in range(steps):
        q, p = basis[step], images[step]
        w = matvec(p)
        if w.data_ptr() == p.data_ptr():
            w = w.clone()  # an operator may hand back its input; w is changed in place below
        alpha = torch.dot(p, w)
        # The three-term recurrence, then (always, or when partial reorthogonalization calls for it) one pass
        # against the whole basis to remove the rounding errors that would otherwise make old directions reappear
        # (and eigenvalues repeat) in floating point.
        w.addcmul_(q, alpha, value=-1)
        if step:
            w.sub_(basis[step - 1], alpha=betas[-1])
        reorthogonalized = reorthogonalize_next or not partial_reorthogonalization
        if reorthogonalized:
            _project_out(w, basis, images)
        image, beta = measured(w)
        alpha_value, beta_value = torch.stack([alpha, beta]).tolist()  # one device sync
        reorthogonalize_next, estimate = False, np.full(step, local)
        if not reorthogonalized and beta_value > 0:
            estimate = _orthogonality_estimate(omega, omega_before, alphas + [alpha_value], betas, beta_value, eps * scale)
            if np.abs(estimate).max(initial=0.0) > semi_orthogonal:
                _project_out(w, basis, images, None if metric is None else image)
                beta = torch.dot(w, image).clamp_min(0).sqrt()
                beta_value, estimate, reorthogonalize_next = float(beta), np.full(step, local), True
        omega, omega_before = np.concatenate([estimate, [local, 1.0]]), omega
        # ||A q||^2 = alpha^2 + beta^2 + (previous beta)^2 in exact arithmetic: the scale of a breakdown.
        scale = max(scale, math.sqrt(alpha_value**2 + beta_value**2 + (betas[-1] ** 2 if betas else 0.0)))
        alphas.append(alpha_value)
        betas.append(beta_value)
        if step + 1 == steps or (stop is not None and stop(alphas, betas)):
            break
        if beta_value <= breakdown * scale:
            # The Krylov space is invariant: its Ritz values are exact eigenvalues. Go on from a fresh direction.
            betas[-1] = 0.0
            w = _gaussian((dim,), generator, start.dtype, start.device)
            for _ in range(2):
                _project_out(w, basis, images)
            image, beta = measured(w)
            omega[:-1] = local
        store(w, image, beta)
    as_tensor = partial(torch.tensor, dtype=torch.float64)
    taken = len(alphas)
    return Tridiagonal(as_tensor(alphas), as_tensor(betas)), basis[:taken], images[:taken]


def _recurrence(matvec: MatVec, start: Tensor, steps: int, metric: MatVec | None = None) -> Tridiagonal:
    """The plain three-term Lanczos recurrence on ``A = matvec o metric``, keeping only the last two vectors; ends
    early when the Krylov space is invariant (its rule is then exact)."""
    breakdown = 1e3 * torch.finfo(start.dtype).eps

    def normalized(vector: Tensor) -> tuple[Tensor, Tensor, float]:
        image = vector if metric is None else metric(vector)
        norm = torch.dot(vector, image).clamp_min(0).sqrt()
        return vector / norm, image / norm, float(norm)

    q, p, norm = normalized(start)
    if not norm > 0:
        raise ValueError("start must have a positive norm in the metric")
    previous: Tensor | None = None
    alphas: list[float] = []
    betas: list[float] = []
    scale = 0.0
    for _ in range(steps):
        w = matvec(p)
        if w.data_ptr() == p.data_ptr():
            w = w.clone()  # an operator may hand back its input; w is changed in place below
        alpha = float(torch.dot(p, w))
        w.sub_(q, alpha=alpha)
        if previous is not None:
            w.sub_(previous, alpha=betas[-1])
        previous = q
        q, p, beta = normalized(w)
        scale = max(scale, math.sqrt(alpha**2 + beta**2 + (betas[-1] ** 2 if betas else 0.0)))
        alphas.append(alpha)
        betas.append(beta)
        if beta <= breakdown * scale:
            betas[-1] = 0.0
            break
    return Tridiagonal(torch.tensor(alphas, dtype=torch.float64), torch.tensor(betas, dtype=torch.float64))


def lanczos(
    matvec: MatVec,
    dim: int,
    steps: int,
    seed: int = 0,
    *,
    start: Tensor | None = None,
    metric: MatVec | None = None,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> LanczosDecomposition:
    """``steps`` Lanczos steps on a symmetric operator, from ``start`` or a seeded Gaussian vector.

    Every new vector is orthogonalized against all previous ones (full reorthogonalization), so the basis stays
    orthonormal in floating point and ``steps = dim`` reproduces the whole spectrum in the eigenvalues of
    :meth:`LanczosDecomposition.tridiagonal`. Costs ``steps`` products and ``steps x dim`` memory (twice that
    with a ``metric``, for which see the module docstring).
    """
    dim = check_int("dim", dim)
    steps = check_int("steps", steps)
    if steps > dim:
        raise ValueError(f"steps must be <= dim={dim} (no more orthonormal vectors exist), got {steps}")
    generator = _generator(seed)
    if start is None:
        start = _gaussian((dim,), generator, dtype, device)
    elif start.shape != (dim,) or not bool(start.norm() > 0):
        raise ValueError(f"start must be a non-zero vector of shape ({dim},)")
    coefficients, basis, images = _lanczos(matvec, start, steps, generator, metric=metric)
    stacked = torch.stack(basis)
    return LanczosDecomposition(coefficients.alphas, coefficients.betas, stacked, stacked if metric is None else torch.stack(images))


def lanczos_recurrence(matvec: MatVec, start: Tensor, steps: int, *, metric: MatVec | None = None) -> Tridiagonal:
    """The tridiagonal matrix of ``steps`` Lanczos steps from ``start`` without reorthogonalization: the
    three-term recurrence alone, two vectors in memory and two passes over them per step besides the products.

    In floating point the vectors lose their orthogonality as soon as a Ritz value converges, and converged
    eigenvalues come back as copies. The copies do not spoil a quadrature: the rule computed in floating point is
    that of exact Lanczos on a matrix whose eigenvalues lie in tiny intervals around those of ``A`` (Greenbaum,
    1989), so ``sum_i w_i f(theta_i)`` still approximates ``q_1^T f(A) q_1`` for smooth ``f``, each copy
    carrying a share of one eigenvalue's weight (Meurant and Strakos, 2006). That is all stochastic Lanczos
    quadrature needs. When the Krylov space becomes invariant the run ends early, with fewer than ``steps``
    coefficients and an exact rule.
    """
    steps = check_int("steps", steps)
    if start.dim() != 1 or not bool(start.norm() > 0):
        raise ValueError(f"start must be a non-zero vector, got shape {tuple(start.shape)}")
    if steps > len(start):
        raise ValueError(f"steps must be <= {len(start)}, the length of start (no more orthonormal vectors exist), got {steps}")
    return _recurrence(matvec, start, steps, metric)


def _select(values: np.ndarray, k: int, which: str) -> np.ndarray:
    """Indices of the ``k`` wanted values, the most wanted first."""
    key = values if which == "algebraic" else np.abs(values)
    return np.argsort(-key, kind="stable")[:k]


def _error_estimates(values: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """``min(r, r^2 / gap)`` for each Ritz value: the residual bounds the distance to some eigenvalue, and once
    the Ritz value is separated from the others by ``gap`` the error falls like the residual squared."""
    if len(values) < 2:
        return residuals.copy()
    gaps = np.abs(values[:, None] - values[None, :])
    np.fill_diagonal(gaps, np.inf)
    gap = gaps.min(axis=1)
    with np.errstate(divide="ignore"):
        return np.minimum(residuals, np.where(gap > 0, residuals**2 / gap, np.inf))


def lanczos_eigenpairs(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    which: str = "algebraic",
    start: Tensor | None = None,
    metric: MatVec | None = None,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> EigenResult:
    """The ``k`` largest eigenpairs (by value, or by absolute value with ``which="magnitude"``) by Lanczos.

    Runs Lanczos with partial reorthogonalization (the basis kept orthogonal to ``sqrt(eps)``, a pass over it
    only when Simon's estimate calls for one), from ``start`` or a seeded Gaussian vector, and after every step
    checks the wanted Ritz pairs. The residual of Ritz pair ``i``, ``r = ||A y - theta y||``, is ``|beta_m
    s_{m,i}|`` without any extra product; it bounds the distance from ``theta`` to some eigenvalue, and once
    ``theta`` is separated from the other Ritz values by ``gap`` the distance is about ``r^2 / gap`` (the
    Kato-Temple bound, with the gap estimated from the Ritz values). Stops once every wanted eigenvalue has
    ``min(r, r^2 / gap) <= tol |theta|``, or after ``max_iter`` steps (capped at ``dim``). With a ``metric`` the
    eigenvectors are orthonormal in its inner product (module docstring).
    """
    dim, k, tol, max_iter = _check_eigen_arguments(dim, k, tol, max_iter, which)
    steps = min(max_iter, dim)
    if steps < k:
        raise ValueError(f"max_iter={max_iter} Lanczos steps cannot give k={k} eigenpairs: use max_iter >= k")

    def ritz(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        values, vectors = scipy.linalg.eigh_tridiagonal(alphas, betas[:-1])
        residuals = np.abs(betas[-1] * vectors[-1])
        errors = _error_estimates(values, residuals)
        chosen = _select(values, k, which)
        return values[chosen], vectors[:, chosen], residuals[chosen], errors[chosen]

    def converged(alphas: list[float], betas: list[float]) -> bool:
        if len(alphas) < k:
            return False
        values, _, _, errors = ritz(alphas, betas)
        return bool(np.all(errors <= tol * np.abs(values)))

    generator = _generator(seed)
    if start is None:
        start = _gaussian((dim,), generator, dtype, device)
    elif start.shape != (dim,):
        raise ValueError(f"start must be a vector of shape ({dim},)")
    tridiagonal, basis, images = _lanczos(matvec, start, steps, generator, converged, metric, partial_reorthogonalization=True)
    alphas, betas = tridiagonal.alphas.tolist(), tridiagonal.betas.tolist()
    values, coefficients, residuals, errors = ritz(alphas, betas)
    vectors = []
    for weights in torch.as_tensor(coefficients.T, dtype=start.dtype, device=start.device):
        vector = _combination(basis, weights)
        image = vector if metric is None else _combination(images, weights)
        vectors.append(vector / torch.dot(vector, image).sqrt())
    steps_taken = len(alphas)
    return EigenResult(
        eigenvalues=values,
        eigenvectors=[[v] for v in vectors],
        residuals=residuals,
        errors=errors,
        converged=errors <= tol * np.abs(values),
        iterations=steps_taken,
        matvecs=steps_taken,
    )


# ----------------------------------------------------------------------------------------------- power iteration


def _power(
    matvec: MatVec, start: Tensor, found: Tensor | None, shift: float, tol: float, max_iter: int
) -> tuple[float, Tensor, Tensor, int]:
    """Power iteration on ``P (A - shift I) P``, ``P`` projecting out the rows of ``found``.

    Stops when the deflated residual ``||P A v - lambda v||`` reaches ``tol |lambda|`` or after ``max_iter``
    products. Returns the Rayleigh quotient ``lambda`` of ``A`` at the last iterate ``v``, ``v``, ``A v`` and
    the number of iterations.
    """
    v = _orthogonalize(start, found)
    v = v / v.norm()
    for iteration in range(1, max_iter + 1):
        w = matvec(v)
        value = float(torch.dot(v, w))
        projected = _orthogonalize(w, found)
        if iteration == max_iter or float((projected - value * v).norm()) <= tol * abs(value):
            break
        shifted = projected - shift * v  # never zero here: that would make v an eigenvector and stop above
        v = shifted / shifted.norm()
    return value, v, w, iteration


def power_iteration(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    which: str = "algebraic",
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> EigenResult:
    """The ``k`` largest eigenpairs by power iteration with deflation.

    Each pair is found by iterating ``v <- A v / ||A v||`` on the space orthogonal to the pairs already found,
    until ``||A v - lambda v|| <= tol |lambda|`` (measured after projecting out the found pairs) or
    ``max_iter`` iterations. Plain power iteration converges to the eigenvalue of largest absolute value
    (``which="magnitude"``). For the largest *algebraic* eigenvalue, when the dominant eigenvalue is negative
    the operator is shifted by it, ``A - lambda I``, which makes the remaining spectrum non-negative, and the
    iteration is run again; later pairs keep the shift. A final Rayleigh-Ritz step on the span of the found
    vectors, free because their products are kept, removes what each vector still holds of the others.
    """
    dim, k, tol, max_iter = _check_eigen_arguments(dim, k, tol, max_iter, which)
    generator = _generator(seed)
    vectors: list[Tensor] = []
    products: list[Tensor] = []
    shift, iterations = 0.0, 0
    for _ in range(k):
        found = torch.stack(vectors) if vectors else None
        while True:
            start = _gaussian((dim,), generator, dtype, device)
            value, vector, product, used = _power(matvec, start, found, shift, tol, max_iter)
            iterations += used
            # A non-negative Rayleigh quotient of the shifted operator, or one negligible next to the shift,
            # means the iteration found the top of the spectrum; otherwise move the shift below it and rerun.
            if which == "magnitude" or value - shift >= -tol * abs(shift):
                break
            shift = value
        vectors.append(vector)
        products.append(product)
    basis, images = torch.stack(vectors), torch.stack(products)
    projected = (basis @ images.T).cpu().double()
    values, rotation = torch.linalg.eigh((projected + projected.T) / 2)
    rotation = rotation.to(dtype=basis.dtype, device=basis.device)
    ritz_vectors, ritz_images = rotation.T @ basis, rotation.T @ images
    residuals = (ritz_images - values.to(basis)[:, None] * ritz_vectors).norm(dim=1).cpu().double().numpy()
    values = values.numpy()
    order = _select(values, k, which)
    return EigenResult(
        eigenvalues=values[order],
        eigenvectors=[[ritz_vectors[i]] for i in order],
        residuals=residuals[order],
        errors=residuals[order],
        converged=residuals[order] <= tol * np.abs(values[order]),
        iterations=iterations,
        matvecs=iterations,
    )


# ----------------------------------------------------------------------------------------------- trace


def hutchinson(
    matvec: MatVec,
    dim: int,
    samples: int = 100,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> TraceResult:
    """Hutchinson's estimate of ``tr(A)``: the mean of ``z^T A z`` over Rademacher vectors ``z``.

    Unbiased, with variance ``2 (||A||_F^2 - sum_i A_ii^2) / samples``; the standard error is estimated from
    the samples themselves.
    """
    dim, samples = check_int("dim", dim), check_int("samples", samples, 2)
    generator = _generator(seed)
    quadratic_forms = []
    for _ in range(samples):
        z = rademacher((dim,), generator, dtype=dtype, device=device)
        quadratic_forms.append(torch.dot(z, matvec(z)))
    values = torch.stack(quadratic_forms).cpu().double().numpy()
    return TraceResult(float(values.mean()), float(values.std(ddof=1) / math.sqrt(samples)), samples)


def block_hutchinson(
    block_forms: Callable[[list[Tensor]], Tensor],
    sizes: Sequence[int],
    samples: int = 100,
    seed: int = 0,
    *,
    group: int = 8,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> TraceResult:
    """Hutchinson's estimate of ``tr(A)`` from the diagonal blocks of ``A`` alone.

    ``tr(A) = sum_b tr(A_bb)``, so each probe draws a Rademacher vector ``z_b`` for every block (``sizes`` gives
    their lengths, in order) and adds up ``z_b^T A_bb z_b``. ``block_forms`` computes those sums for ``group``
    probes at a time: it receives one matrix of probe rows per block, ``probes[b]`` of shape ``(s, sizes[b])``,
    and returns the ``s`` sums. Plain Hutchinson multiplies the whole ``A``, whose off-diagonal blocks add
    nothing to the mean and everything they hold to the variance: here the variance is
    ``2 sum_b (||A_bb||_F^2 - sum_i (A_bb)_ii^2) / samples``. When the blocks are strongly coupled, as the layers
    of a network are, that is many times smaller, for one product restricted to each block per probe.
    """
    samples, group = check_int("samples", samples, 2), check_int("group", group)
    sizes = [check_int("sizes", size) for size in sizes]
    generator = _generator(seed)
    totals = []
    for start in range(0, samples, group):
        count = min(group, samples - start)
        probes = [rademacher((count, size), generator, dtype=dtype, device=device) for size in sizes]
        totals.append(block_forms(probes).reshape(count))
    values = torch.cat(totals).cpu().double().numpy()
    return TraceResult(float(values.mean()), float(values.std(ddof=1) / math.sqrt(samples)), samples)


def _apply_rows(matvec: MatVec, rows: Tensor) -> Tensor:
    return torch.stack([matvec(row) for row in rows])


def hutch_plus_plus(
    matvec: MatVec,
    dim: int,
    samples: int = 100,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> TraceResult:
    """Hutch++ (Meyer, Musco, Musco and Woodruff, 2021): exact trace on a sketched top subspace, Hutchinson on the rest.

    A third of the products sketch ``A S`` and orthonormalize it into ``Q``, a third give ``tr(Q^T A Q)``
    exactly, and the rest estimate the trace of the deflated ``(I - QQ^T) A (I - QQ^T)`` by Hutchinson. When a
    few large eigenvalues dominate, the deflated part has a much smaller variance than ``A`` itself. The
    standard error is that of the Hutchinson part; ``samples`` counts every product.
    """
    dim, samples = check_int("dim", dim), check_int("samples", samples, 4)
    sketch_size = samples // 3
    residual_samples = samples - 2 * sketch_size
    generator = _generator(seed)
    sketch = _apply_rows(matvec, rademacher((sketch_size, dim), generator, dtype=dtype, device=device))
    basis = torch.linalg.qr(sketch.T).Q.T.contiguous()  # orthonormal rows spanning the sketch
    low_rank_trace = float(torch.sum(basis * _apply_rows(matvec, basis)))
    probes = _orthogonalize(rademacher((residual_samples, dim), generator, dtype=dtype, device=device).T, basis).T.contiguous()
    values = torch.stack([torch.dot(z, matvec(z)) for z in probes]).cpu().double().numpy()
    return TraceResult(
        low_rank_trace + float(values.mean()),
        float(values.std(ddof=1) / math.sqrt(residual_samples)),
        sketch_size + len(basis) + residual_samples,
    )


# ----------------------------------------------------------------------------------------------- density


def _smoothed_density(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """The average over runs of ``sum_i w_i N(t; node_i, sigma^2)`` at every grid point ``t``."""
    distance = (grid[None, None, :] - nodes[..., None]) / sigma
    kernels = np.exp(-0.5 * distance**2) / (sigma * math.sqrt(2 * math.pi))
    return np.einsum("rm,rmg->g", weights, kernels) / len(nodes)


def gauss_quadrature(coefficients: Tridiagonal, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Gauss quadrature rule of a Lanczos run: the eigenvalues ``theta_i`` of its tridiagonal matrix (nodes)
    and the squared first components ``w_i`` of their eigenvectors (weights, summing to 1), with
    ``sum_i w_i f(theta_i) = q_1^T f(A) q_1`` for polynomials ``f`` up to degree ``2 m - 1``.

    ``length`` pads a run that ended early (invariant Krylov space, exact rule) with nodes of weight 0, so that
    the rules of several runs stack into one array.
    """
    values, vectors = torch.linalg.eigh(coefficients.tridiagonal())
    nodes, weights = values.numpy(), vectors[0].numpy() ** 2
    missing = 0 if length is None else length - len(nodes)
    return np.pad(nodes, (0, missing), mode="edge"), np.pad(weights, (0, missing))


def density_from_quadrature(
    nodes: np.ndarray,
    weights: np.ndarray,
    dim: int,
    matvecs: int,
    grid: np.ndarray | None = None,
    sigma: float | None = None,
) -> Density:
    """The :class:`Density` of the quadrature rules ``(nodes[r], weights[r])`` of several runs: their average
    smoothed by Gaussian kernels of width ``sigma`` (default 1% of the range of the nodes) on ``grid`` (default
    1000 points spanning the nodes and 5 ``sigma`` beyond)."""
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    low, high = float(nodes.min()), float(nodes.max())
    if sigma is None:
        sigma = 0.01 * (high - low) if high > low else 0.01 * max(abs(high), 1.0)
    if grid is None:
        grid = np.linspace(low - 5 * sigma, high + 5 * sigma, 1000)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(f"grid must be a 1-D array of at least 2 points, got shape {grid.shape}")
    return Density(nodes, weights, grid, _smoothed_density(nodes, weights, grid, sigma), float(sigma), dim, matvecs)


def check_slq_arguments(dim: int, steps: int, runs: int, sigma: float | None) -> tuple[int, int, int]:
    """The checks of :func:`slq`, shared with other quadrature drivers; returns ``dim``, ``steps`` and ``runs``."""
    dim, steps, runs = check_int("dim", dim), check_int("steps", steps), check_int("runs", runs)
    if steps > dim:
        raise ValueError(f"steps must be <= dim={dim} (no more orthonormal vectors exist), got {steps}")
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    return dim, steps, runs


def slq(
    matvec: MatVec,
    dim: int,
    steps: int = 80,
    runs: int = 4,
    seed: int = 0,
    *,
    grid: np.ndarray | None = None,
    sigma: float | None = None,
    reorthogonalize: bool = False,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> Density:
    """The eigenvalue density of a symmetric operator by stochastic Lanczos quadrature.

    Each run starts Lanczos from a normalized Rademacher vector ``v``; its :func:`gauss_quadrature` rule has
    ``sum_i w_i f(theta_i) = v^T f(A) v`` for polynomials ``f`` up to degree ``2 steps - 1``. Averaged over runs
    this estimates the spectral density ``(1/dim) sum_j delta(t - lambda_j)``, smoothed as
    :func:`density_from_quadrature` says. Runs use the plain recurrence (:func:`lanczos_recurrence`: two
    vectors of memory, copies of converged eigenvalues share their weight); ``reorthogonalize=True`` keeps a
    ``steps x dim`` orthonormal basis instead (:func:`lanczos`), so that ``steps = dim`` gives every eigenvalue
    exactly once.
    """
    dim, steps, runs = check_slq_arguments(dim, steps, runs, sigma)
    generator = _generator(seed)
    rules, matvecs = [], 0
    for _ in range(runs):
        start = rademacher((dim,), generator, dtype=dtype, device=device)
        if reorthogonalize:
            coefficients, _, _ = _lanczos(matvec, start, steps, generator)
        else:
            coefficients = _recurrence(matvec, start, steps)
        rules.append(gauss_quadrature(coefficients, steps))
        matvecs += len(coefficients.alphas)
    nodes, weights = (np.stack(parts) for parts in zip(*rules))
    return density_from_quadrature(nodes, weights, dim, matvecs, grid, sigma)
