"""Toy surfaces, optimizer runs on them, the slider figure, and the momentum rate analysis."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from dldna import toy
from dldna.optim import SGD, Adam, AdamW
from dldna.toy import momentum
from dldna.viz import toy as toy_viz


def gradient_at(surface: toy.ToySurface, point) -> torch.Tensor:
    w = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    surface(w).backward()
    return w.grad


@pytest.mark.parametrize("name", list(toy.toy_surfaces()))
def test_gradient_vanishes_at_every_critical_point(name):
    surface = toy.toy_surfaces()[name]
    assert surface.critical_points, "every surface is built around at least one stationary point"
    points = list(surface.critical_points) + ([surface.minimum] if surface.minimum is not None else [])
    for point in points:
        assert gradient_at(surface, point).abs().max().item() < 1e-9, (name, point)


@pytest.mark.parametrize("name", [n for n, s in toy.toy_surfaces().items() if s.minimum is not None])
def test_minimum_is_the_lowest_point_of_the_box(name):
    surface = toy.toy_surfaces()[name]
    _, _, values = surface.grid(301)
    assert values.min() >= surface.minimum_value - 1e-12
    assert values.min() - surface.minimum_value < 0.05 * (values.max() - values.min())


def test_four_wells_has_four_minima_and_the_deepest_is_the_minimum():
    surface = toy.four_wells(tilt_x=0.3, tilt_y=0.2)
    minima = toy.local_minima(surface)
    assert len(minima) == 4 and len(surface.critical_points) == 9
    depths = [surface(torch.tensor(p, dtype=torch.float64)).item() for p in minima]
    assert len(set(np.round(depths, 6))) == 4
    assert minima[int(np.argmin(depths))] == surface.minimum


def test_saddles_are_not_minima():
    for surface in (toy.saddle(), toy.monkey_saddle()):
        assert surface.minimum is None and toy.local_minima(surface) == ()
    hessian = torch.autograd.functional.hessian(toy.monkey_saddle(), torch.zeros(2, dtype=torch.float64))
    assert torch.equal(hessian, torch.zeros(2, 2, dtype=torch.float64))


@pytest.mark.parametrize(
    "ours, theirs, hyper",
    [
        (SGD, torch.optim.SGD, dict(lr=1e-3)),
        (SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9)),
        (SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9, nesterov=True)),
        (Adam, torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.99))),
    ],
)
def test_run_optimizer_matches_torch_optim_on_rosenbrock(ours, theirs, hyper):
    surface = toy.rosenbrock()
    mine = toy.run_optimizer(surface, ours, (-1.2, 1.0), 500, **hyper)
    reference = toy.run_optimizer(surface, theirs, (-1.2, 1.0), 500, **hyper)
    assert not mine.diverged and len(mine.points) == 501
    np.testing.assert_allclose(mine.points, reference.points, rtol=1e-10, atol=1e-12)
    assert np.linalg.norm(mine.points[-1] - mine.points[0]) > 0.1


def test_run_optimizer_records_losses_of_its_points():
    surface = toy.ravine(5.0)
    trajectory = toy.run_optimizer(surface, SGD, None, 30, lr=0.1)
    expected = 0.5 * (trajectory.points[:, 0] ** 2 + 5.0 * trajectory.points[:, 1] ** 2)
    np.testing.assert_allclose(trajectory.losses, expected, rtol=1e-12)
    # plain GD on a quadratic: each coordinate shrinks by (1 - lr * curvature) per step
    np.testing.assert_allclose(trajectory.points[-1], np.array(surface.start) * np.array([0.9, 0.5]) ** 30, rtol=1e-9)


def test_divergence_is_reported_not_raised():
    surface = toy.ravine(10.0)
    trajectory = toy.run_optimizer(surface, SGD, None, 500, lr=0.25)  # above the stable 2 / 10
    assert trajectory.diverged and trajectory.status == "diverged"
    assert 1 <= trajectory.diverged_at <= 500
    assert len(trajectory.points) == trajectory.diverged_at
    assert np.isfinite(trajectory.points).all() and np.isfinite(trajectory.losses).all()
    assert "diverged" in trajectory.summary()
    stable = toy.run_optimizer(surface, SGD, None, 500, lr=0.19)
    assert not stable.diverged and stable.final_loss < 1e-10


def test_race_runs_every_contestant_from_the_same_start():
    results = toy.race(toy.saddle(), {"SGD": (SGD, {"lr": 0.01}), "Adam": (Adam, {"lr": 0.01})}, steps=50)
    assert list(results) == ["SGD", "Adam"]
    for trajectory in results.values():
        np.testing.assert_array_equal(trajectory.points[0], toy.saddle().start)
    escape = {name: abs(t.points[-1, 1]) for name, t in results.items()}
    assert escape["Adam"] > 100 * escape["SGD"]  # Adam's normalised step leaves the saddle, SGD's barely moves


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="condition_number"):
        toy.ravine(0.5)
    with pytest.raises(ValueError, match="steps"):
        toy.run_optimizer(toy.ravine(), SGD, None, -1, lr=0.1)
    with pytest.raises(ValueError, match="start"):
        toy.run_optimizer(momentum.quadratic([1.0, 2.0]), SGD, None, 5, lr=0.1)
    with pytest.raises(ValueError, match="last dimension"):
        toy.ravine()(torch.zeros(3))
    with pytest.raises(ValueError, match="contestants"):
        toy.race(toy.ravine(), {})


def test_slider_figure_has_one_step_per_grid_value():
    lrs, betas = (0.02, 0.1, 0.19, 0.25), (0.0, 0.5, 0.9)
    grid = toy.trajectory_grid(toy.ravine(10.0), SGD, lrs, betas, steps=400)
    fig = toy_viz.plotly_trajectory_slider(grid, max_points=120)
    lr_slider, beta_slider = fig.layout.sliders
    assert [s.label for s in lr_slider.steps] == [f"{v:g}" for v in lrs]
    assert [s.label for s in beta_slider.steps] == [f"{v:g}" for v in betas]
    assert len(fig.data) == 1 + len(betas)
    for i, step in enumerate(lr_slider.steps):
        changes, traces = step.args
        assert list(traces) == [1, 2, 3] and len(changes["x"]) == len(betas)
        for j in range(len(betas)):
            assert len(changes["x"][j]) <= 120
            np.testing.assert_allclose(changes["x"][j][-1], grid.paths[i][j].points[-1, 0], atol=1e-4)
    assert any("diverged" in name for name in lr_slider.steps[-1].args[0]["name"])
    assert [sum(s.args[0]["visible"]) for s in beta_slider.steps] == [1, 1, 1]
    assert len(fig.to_json()) < 300_000


def test_figures_draw_paths_and_mark_divergence():
    results = toy.race(toy.ravine(10.0), {"ok": (SGD, {"lr": 0.1}), "too big": (SGD, {"lr": 0.3})}, steps=100)
    fig = toy_viz.plot_paths(toy.ravine(10.0), results)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("too big (diverged at step") for label in labels)
    plotly_fig = toy_viz.plotly_paths(toy.ravine(10.0), results)
    assert len(plotly_fig.data) == 1 + 2 + 1


# ---- momentum analysis -------------------------------------------------------------------------------------


def test_momentum_matrix_reproduces_sgd_iterates_exactly():
    lr, beta, curvature = 0.3, 0.7, 2.0
    trajectory = toy.run_optimizer(momentum.quadratic([curvature]), SGD, [1.0], 40, lr=lr, momentum=beta)
    # first step: the buffer starts as the gradient, i.e. as if b_0 = 0 before the step
    state = np.array([0.0, 1.0])
    matrix = momentum.momentum_matrix(lr, beta, curvature)
    for t in range(1, 41):
        state = matrix @ state
        assert state[1] == pytest.approx(trajectory.points[t, 0], rel=1e-12, abs=1e-14)


def test_spectral_radius_is_that_of_the_momentum_matrix():
    for lr, beta, curvature in [(0.5, 0.5, 1.0), (1.9, 0.1, 1.0), (0.1, 0.95, 3.0), (1.0, 0.0, 0.5), (4.0, 0.9, 1.0)]:
        eigenvalues = np.linalg.eigvals(momentum.momentum_matrix(lr, beta, curvature))
        assert momentum.spectral_radius(lr, beta, curvature) == pytest.approx(np.abs(eigenvalues).max(), rel=1e-12)
    grid = momentum.spectral_radius(np.array([[0.5], [1.9]]), np.array([0.1, 0.5, 0.9]), 1.0)
    assert grid.shape == (2, 3)
    assert grid[1, 2] == pytest.approx(np.abs(np.linalg.eigvals(momentum.momentum_matrix(1.9, 0.9, 1.0))).max())


@pytest.mark.parametrize("lr, beta", [(0.5, 0.5), (1.5, 0.2), (1.0, 0.9), (0.2, 0.0), (2.5, 0.1), (3.0, 0.6)])
def test_measured_rate_matches_spectral_radius(lr, beta):
    mu, big_l = 0.1, 1.0
    eigenvalues = np.linspace(mu, big_l, 8)
    measured = momentum.measured_rate(lr, beta, eigenvalues, steps=400)
    predicted = momentum.momentum_rate(lr, beta, mu, big_l)
    assert measured == pytest.approx(predicted, rel=2e-3)


def test_optimal_momentum_beats_the_best_gradient_descent():
    mu, big_l = 0.01, 1.0
    lr, beta, rate = momentum.best_momentum(mu, big_l)
    kappa = big_l / mu
    assert rate == pytest.approx((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1))
    assert momentum.momentum_rate(lr, beta, mu, big_l) == pytest.approx(rate, rel=1e-6)
    lr_gd, rate_gd = momentum.best_gd(mu, big_l)
    assert rate_gd == pytest.approx((kappa - 1) / (kappa + 1))
    assert momentum.momentum_rate(lr_gd, 0.0, mu, big_l) == pytest.approx(rate_gd, rel=1e-9)
    eigenvalues = np.geomspace(mu, big_l, 6)
    # at the optimum the roots are double at both ends of the spectrum (a t·ρᵗ factor): a looser tolerance
    assert momentum.measured_rate(lr, beta, eigenvalues, steps=1200) == pytest.approx(rate, rel=1e-2)
    assert momentum.measured_rate(lr_gd, 0.0, eigenvalues, steps=1200) == pytest.approx(rate_gd, rel=1e-3)
    neighbours = momentum.momentum_rate(lr * np.array([0.9, 1.0, 1.1])[:, None], beta * np.array([0.9, 1.0, 1.1]), mu, big_l)
    assert neighbours.min() == pytest.approx(neighbours[1, 1], rel=1e-9)


def test_nesterov_measured_rate_is_finite_and_differs():
    eigenvalues = [0.1, 1.0]
    heavy = momentum.measured_rate(1.0, 0.8, eigenvalues, steps=300)
    look_ahead = momentum.measured_rate(1.0, 0.8, eigenvalues, steps=300, nesterov=True)
    assert heavy < 1 and look_ahead < 1 and abs(heavy - look_ahead) > 1e-3


def test_momentum_regimes():
    regimes = momentum.momentum_regime(np.array([0.01, 1.0, 2.3, 4.5]), np.array([0.0, 0.5, 0.2, 0.9]))
    assert [momentum.MOMENTUM_REGIMES[r] for r in regimes] == ["monotone", "oscillating", "sign-flipping", "divergent"]
    betas = np.linspace(0, 0.95, 20)
    assert (momentum.momentum_regime(2 * (1 + betas) + 1e-6, betas) == 3).all()
    assert (momentum.momentum_regime(2 * (1 + betas) - 1e-3, betas) != 3).all()
    assert momentum.measured_rate(4.5, 0.9, [1.0], steps=100) > 1


def test_momentum_bad_spectrum():
    with pytest.raises(ValueError, match="mu"):
        momentum.best_momentum(2.0, 1.0)
    with pytest.raises(ValueError, match="eigenvalues"):
        momentum.quadratic([1.0, -1.0])


# ---- exercise checks of the optimizers chapter -------------------------------------------------------------


def test_momentum_by_hand_check_rejects_the_dampened_average():
    from dldna.exercises import optimizers as checks

    assert checks.momentum_by_hand([0.8, 0.46, 0.062])[0]
    w, buffer, dampened = 1.0, 0.0, []
    for _ in range(3):  # buf = m*buf + (1-m)*g is a different optimizer
        buffer = 0.9 * buffer + 0.1 * 2 * w
        w -= 0.1 * buffer
        dampened.append(w)
    assert not checks.momentum_by_hand(dampened)[0]


def test_adam_and_heavy_ball_checks_reject_wrong_updates():
    from dldna.exercises import optimizers as checks

    def adam_without_correction(w, g, m, v, t, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        return w - lr * m / (v.sqrt() + eps), m, v

    passed, message = checks.adam_update_check(adam_without_correction)
    assert not passed and "step 1" in message

    def heavy_ball_without_momentum(grad, w0, lr, beta, steps):
        iterates, w = [], w0.clone()
        for _ in range(steps):
            w = w - lr * grad(w)
            iterates.append(w)
        return torch.stack(iterates)

    assert not checks.heavy_ball_check(heavy_ball_without_momentum)[0]


def test_explore_answers_are_what_the_code_measures():
    from dldna.exercises import optimizers as checks

    assert checks.saddle_escape_answer() == 0.6
    predicted = [float(momentum.momentum_rate(1.0, beta, 0.01, 1.0)) for beta in checks.RATE_BETAS]
    assert checks.fastest_momentum() == checks.RATE_BETAS[int(np.argmin(predicted))]
    assert checks.uncorrected_ratios(1)[0] == pytest.approx(0.1 / np.sqrt(0.001), rel=1e-9)
    assert not checks.saddle_escape(0.3)[0] and not checks.momentum_rate_check(0.9)[0]
    assert checks.saddle_escape(0.6)[0]
    # a wrong choice is told it is wrong, never in which direction the right one lies
    assert checks.saddle_escape(0.3)[1] == checks.saddle_escape(0.9)[1]
    assert "smaller" not in checks.saddle_escape(0.9)[1] and "larger" not in checks.saddle_escape(0.3)[1]
    assert checks.saddle_escape(0.5) == (False, "The answer should be one of (0.0, 0.3, 0.6, 0.9).")


@pytest.mark.parametrize("adamw", [torch.optim.AdamW, "dldna"])
def test_decay_response_of_decoupled_decay_is_one_for_every_gradient_size(adamw) -> None:
    if adamw == "dldna":
        adamw = AdamW
    scales = np.logspace(-4, 1, 6)
    response = toy.decay_response(adamw, scales, lr=1e-3, weight_decay=1e-2, steps=100)
    np.testing.assert_allclose(response, 1.0, rtol=0.05)


def test_decay_response_of_l2_decay_in_adam_falls_with_gradient_size() -> None:
    scales = np.array([1e-5, 1e-2, 1.0, 10.0])
    response = toy.decay_response(torch.optim.Adam, scales, lr=1e-3, weight_decay=1e-2, steps=100)
    assert np.all(np.diff(response) < 0)
    assert response[0] > 20  # tiny gradients: the L2 term dominates Adam's normaliser, the step is ~lr, not lr*wd
    assert response[-1] == pytest.approx(1 / 10, rel=0.2)  # large gradients: the L2 term is divided by sqrt(v) ~ 10


def test_decay_response_matches_sgd_closed_form() -> None:
    # Plain SGD: w_T = (1 - lr wd)^T - lr sum_t (1 - lr wd)^(T-1-t) g_t with decay, 1 - lr sum_t g_t without.
    scales = torch.tensor([0.1, 1.0, 100.0], dtype=torch.float64)
    lr, wd, steps = 0.1, 0.5, 7
    response = toy.decay_response(torch.optim.SGD, scales.numpy(), lr=lr, weight_decay=wd, steps=steps, seed=3)
    grads = scales * torch.randn(steps, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    shrink = (1 - lr * wd) ** torch.arange(steps - 1, -1, -1, dtype=torch.float64)
    with_decay = (1 - lr * wd) ** steps - lr * (shrink[:, None] * grads).sum(0)
    without_decay = 1 - lr * grads.sum(0)
    expected = (without_decay - with_decay) / (1 - (1 - lr * wd) ** steps)
    np.testing.assert_allclose(response, expected.numpy(), rtol=1e-10)


def test_decay_response_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="grad_scales"):
        toy.decay_response(torch.optim.AdamW, [0.0, 1.0])
    with pytest.raises(ValueError, match="weight_decay"):
        toy.decay_response(torch.optim.AdamW, [1.0], weight_decay=0.0)
    with pytest.raises(ValueError, match="steps"):
        toy.decay_response(torch.optim.AdamW, [1.0], steps=0)


def test_lookahead_nesterov_is_torch_nesterov_seen_from_the_lookahead_point():
    """Sutskever's form takes the gradient at w + μv; its look-ahead points are the iterates of SGD(nesterov=True)
    (float64, every step), while its own weights w_t are another sequence."""
    loss = momentum.quadratic([0.1, 1.0, 3.0])
    start = [1.0, -2.0, 0.5]
    weights, lookahead = momentum.lookahead_nesterov(torch.func.grad(loss), start, lr=0.2, momentum=0.8, steps=60)
    torch_form = toy.run_optimizer(loss, SGD, start, 60, lr=0.2, momentum=0.8, nesterov=True).points[1:]
    np.testing.assert_allclose(lookahead.numpy(), torch_form, rtol=0, atol=1e-12)
    assert np.abs(weights.numpy() - torch_form).max() > 1e-3
    heavy_ball = toy.run_optimizer(loss, SGD, start, 60, lr=0.2, momentum=0.8).points[1:]
    assert np.abs(lookahead.numpy() - heavy_ball).max() > 1e-3
    with pytest.raises(ValueError, match="steps"):
        momentum.lookahead_nesterov(torch.func.grad(loss), start, lr=0.2, momentum=0.8, steps=0)
