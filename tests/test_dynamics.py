"""dldna.dynamics: metric callbacks against hand computation, schedules against their formulas and torch,
the noise-scale estimators on problems with a known answer, clipping, the range test and the checklist."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.dynamics import bugs
from dldna.dynamics import (
    EffectiveLR,
    GradientClipping,
    GradientNoiseScale,
    LayerStats,
    LossImprovement,
    StopAtTarget,
    check_gradient_flow,
    check_gradients,
    check_initial_loss,
    check_overfit,
    check_random_labels,
    effective_lr,
    estimate_noise_scale,
    lr_range_test,
    noise_from_batch_gradients,
    series,
    two_batch_noise_scale,
)
from dldna.train import SCHEDULES, fit, lr_curve, make_scheduler


def patterns(n_train: int = 600, n_test: int = 300, classes: int = 4, noise: float = 1.0, seed: int = 0) -> Dataset:
    """Tiny 1x6x6 "images": a fixed random template per class plus Gaussian noise. Learnable in a few epochs."""
    generator = torch.Generator().manual_seed(seed)
    templates = torch.randn(classes, 1, 6, 6, generator=generator)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % classes
        return templates[labels] + noise * torch.randn(n, 1, 6, 6, generator=generator), labels

    (x_train, y_train), (x_test, y_test), (x_val, y_val) = sample(n_train), sample(n_test), sample(100)
    return Dataset("patterns", x_train, y_train, x_test, y_test, tuple("abcd"[:classes]), (0.0,), (1.0,), x_val, y_val)


def mlp(seed: int = 0, hidden: int = 16, classes: int = 4, norm: bool = False) -> nn.Sequential:
    dldna.set_seed(seed)
    layers = [nn.Flatten(), nn.Linear(36, hidden)] + ([nn.BatchNorm1d(hidden)] if norm else []) + [nn.ReLU(), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------ schedules


def test_schedule_curves_follow_their_formulas() -> None:
    T, lr = 100, 0.1
    t = np.arange(T)
    np.testing.assert_allclose(lr_curve("constant", T, lr), np.full(T, lr))
    np.testing.assert_allclose(lr_curve("step", T, lr, step_size=30, gamma=0.5), lr * 0.5 ** (t // 30))
    np.testing.assert_allclose(lr_curve("polynomial", T, lr, power=2.0), lr * (1 - t / T) ** 2, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(lr_curve("cosine", T, lr, min_lr=0.01), 0.01 + (lr - 0.01) * (1 + np.cos(np.pi * t / T)) / 2, rtol=1e-9)
    warm = 10
    ramp = lr * (0.01 + (1 - 0.01) * t[:warm] / warm)
    decay_t = t[warm:] - warm
    np.testing.assert_allclose(
        lr_curve("warmup_cosine", T, lr, warmup=warm),
        np.concatenate([ramp, lr * (1 + np.cos(np.pi * decay_t / (T - warm))) / 2]), rtol=1e-9, atol=1e-15,
    )
    np.testing.assert_allclose(
        lr_curve("warmup_linear", T, lr, warmup=warm), np.concatenate([ramp, lr * (1 - decay_t / (T - warm))]), rtol=1e-9, atol=1e-15
    )
    half = 10
    phase = np.abs((t / half) % 2 - 1)  # 1 at the bottom of each cycle, 0 at the top
    np.testing.assert_allclose(lr_curve("cyclical", T, lr, half_cycle=half), lr / 10 + (lr - lr / 10) * (1 - phase), rtol=1e-9)


def test_one_cycle_matches_torch_and_its_shape() -> None:
    T, lr = 200, 0.4
    curve = lr_curve("one_cycle", T, lr)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=T)
    expected = []
    for _ in range(T):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    np.testing.assert_allclose(curve, expected)
    assert curve[0] == pytest.approx(lr / 25) and curve.max() == pytest.approx(lr)
    assert int(np.argmax(curve)) == round(0.3 * T) - 1 and curve[-1] == pytest.approx(lr / 25 / 1e4)


def test_fit_uses_exactly_the_curve_of_the_schedule() -> None:
    data = patterns()
    for name in SCHEDULES:
        model = mlp()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        total = 3 * math.ceil(600 / 50)
        history = fit(model, optimizer, data, epochs=3, batch_size=50, scheduler=make_scheduler(optimizer, name, total), progress=False)
        np.testing.assert_allclose(history.steps["lr"], lr_curve(name, total, 0.05), err_msg=name)


def test_make_scheduler_rejects_bad_arguments() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="unknown schedule"):
        make_scheduler(optimizer, "exponential", 10)
    with pytest.raises(ValueError, match="do not apply"):
        make_scheduler(optimizer, "cosine", 10, gamma=0.5)
    with pytest.raises(ValueError, match="total_steps"):
        make_scheduler(optimizer, "cosine", 0)


def test_lr_range_test_sweeps_exponentially_stops_on_explosion_and_keeps_the_model() -> None:
    data, model = patterns(n_train=2000), mlp()
    before = copy.deepcopy(model.state_dict())
    result = lr_range_test(model, lambda p: torch.optim.SGD(p, lr=1.0), data, min_lr=1e-4, max_lr=100.0, steps=120, batch_size=32)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    ratios = result.lrs[1:] / result.lrs[:-1]
    np.testing.assert_allclose(ratios, (100.0 / 1e-4) ** (1 / 119), rtol=1e-9)
    assert result.lrs[0] == pytest.approx(1e-4)
    assert len(result.lrs) < 120, "the loss explodes before lr = 100 and the test must stop there"
    assert result.losses[:5].mean() > result.smoothed.min() and result.lr_at_min > 1e-3
    assert result.suggested_lr == pytest.approx(result.lr_at_min / 10)
    assert result.lrs[0] <= result.steepest_lr <= result.lr_at_min


# ------------------------------------------------------------------------------------------------ metrics


def test_layer_stats_against_hand_computation() -> None:
    data, model = patterns(), mlp()
    reference = copy.deepcopy(model)
    lr = 0.1
    history = fit(model, torch.optim.SGD(model.parameters(), lr=lr), data, epochs=1, batch_size=100, callbacks=[LayerStats(every=2)], progress=False)
    steps, grads = series(history, "layer_grad_norm")
    _, weights = series(history, "layer_weight_norm")
    _, ratios = series(history, "layer_update_ratio")
    assert list(steps) == [0, 2, 4] and sorted(grads) == ["1", "3"]
    # the first step by hand: the same batch, the same model
    order = torch.randperm(600, generator=torch.Generator().manual_seed(0))[:100]
    F.cross_entropy(reference(data.x_train[order]), data.y_train[order]).backward()
    for name, layer in (("1", reference[1]), ("3", reference[3])):
        assert grads[name][0] == pytest.approx(layer.weight.grad.norm().item(), rel=1e-5)
        assert weights[name][0] == pytest.approx(layer.weight.norm().item(), rel=1e-6)
        # plain SGD: the update is -lr * g, so the ratio is lr * |g| / |W| at every recorded step
        np.testing.assert_allclose(ratios[name], lr * grads[name] / weights[name], rtol=1e-4)


def test_effective_lr_after_one_adam_step_is_lr_over_abs_gradient() -> None:
    model = mlp()
    x, y = patterns().x_train[:64], patterns().y_train[:64]
    for amsgrad in (False, True):
        trial = copy.deepcopy(model)
        optimizer = torch.optim.Adam(trial.parameters(), lr=0.01, eps=1e-8, amsgrad=amsgrad)
        F.cross_entropy(trial(x), y).backward()
        grads = torch.cat([p.grad.flatten() for p in trial.parameters()])
        optimizer.step()
        # after one step v = (1 - beta2) g^2 and v_hat = g^2
        np.testing.assert_allclose(effective_lr(optimizer).numpy(), (0.01 / (grads.abs() + 1e-8)).numpy(), rtol=1e-4)
    with pytest.raises(ValueError, match="Adam"):
        effective_lr(torch.optim.SGD(model.parameters(), lr=0.1))


def test_effective_lr_callback_records_quantiles_of_the_step_just_taken() -> None:
    data, model = patterns(), mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, optimizer, data, epochs=1, batch_size=100, scheduler=scheduler, callbacks=[EffectiveLR(every=5)], progress=False)
    steps, stats = series(history, "effective_lr")
    assert list(steps) == [0, 5]
    assert np.all(stats["p10"] <= stats["median"]) and np.all(stats["median"] <= stats["p90"])
    # the step-5 record belongs to lr = 0.01 * 0.5**5, not to the rate the scheduler set afterwards
    assert stats["median"][1] == pytest.approx(torch.quantile(effective_lr(optimizer, [0.01 * 0.5**5]), 0.5).item(), rel=1e-5)


def test_loss_improvement_telescopes_to_the_total_drop() -> None:
    data, model = patterns(), mlp()
    initial = dldna.train.evaluate(copy.deepcopy(model), data.x_test, data.y_test)[0]
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=4, batch_size=50, callbacks=[LossImprovement(data)], progress=False)
    records = history.extras["loss_improvement"]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    total = sum(r["eval"] for r in records)
    assert total == pytest.approx(initial - history.epochs["test_loss"][-1], rel=1e-6)
    assert records[0]["eval"] > 0 and records[0]["eval_relative"] == pytest.approx(records[0]["eval"] / initial)


def test_stop_at_target_stops_at_the_first_evaluation_that_reaches_it() -> None:
    data, model = patterns(), mlp()
    callback = StopAtTarget(data.x_val, data.y_val, target=0.9, every=3)
    history = fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), data, epochs=50, batch_size=20, callbacks=[callback], progress=False)
    assert history.status == "stopped" and callback.steps_to_target == history.num_steps
    accuracies = [r["acc"] for r in history.extras["eval"]]
    assert accuracies[-1] >= 0.9 and max(accuracies[:-1]) < 0.9
    assert callback.steps_to_target % 3 == 0 and history.extras["steps_to_target"] == [callback.steps_to_target]
    with pytest.raises(ValueError, match="target"):
        StopAtTarget(data.x_val, data.y_val, target=90)


# ------------------------------------------------------------------------------------------------ noise scale


def test_two_batch_estimator_inverts_the_noise_model_exactly() -> None:
    grad_sq, trace = 2.5, 400.0
    small, big = grad_sq + trace / 8, grad_sq + trace / 512
    assert two_batch_noise_scale(small, big, 8, 512) == pytest.approx((trace, grad_sq, trace / grad_sq))
    with pytest.raises(ValueError):
        two_batch_noise_scale(small, big, 512, 8)


def test_batch_gradient_estimator_recovers_a_known_covariance() -> None:
    generator = torch.Generator().manual_seed(0)
    dim, b, m = 50, 16, 4000
    mean = torch.full((dim,), 0.3)
    scales = torch.linspace(0.5, 2.0, dim)  # per-sample gradient std per coordinate: tr(Sigma) = sum(scales^2)
    batch_means = mean + scales * torch.randn(m, dim, generator=generator) / math.sqrt(b)
    estimate = noise_from_batch_gradients(batch_means, b)
    assert estimate.trace == pytest.approx(scales.pow(2).sum().item(), rel=0.03)
    assert estimate.grad_sq == pytest.approx(mean.pow(2).sum().item(), rel=0.05)
    assert estimate.b_simple == pytest.approx(scales.pow(2).sum().item() / mean.pow(2).sum().item(), rel=0.06)


def test_noise_scale_of_a_model_matches_per_sample_gradients() -> None:
    """Least squares: per-sample gradients are known exactly, so tr(Sigma) and |G|^2 can be computed directly."""
    generator = torch.Generator().manual_seed(1)
    n, d = 8192, 10
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    y = x @ torch.ones(d, dtype=torch.float64) + 0.5 * torch.randn(n, generator=generator, dtype=torch.float64)
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(0.6)

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * (out.squeeze(1) - target).pow(2).mean()

    residual = (x @ model.weight.detach().squeeze(0) - y)[:, None]
    per_sample = residual * x
    true_trace = per_sample.var(dim=0).sum().item()
    true_grad_sq = per_sample.mean(dim=0).pow(2).sum().item()
    estimate = estimate_noise_scale(model, x, y, batch_size=32, num_batches=256, loss_fn=loss_fn)
    assert estimate.trace == pytest.approx(true_trace, rel=0.1)
    assert estimate.grad_sq == pytest.approx(true_grad_sq, rel=0.1)
    assert estimate.b_simple == pytest.approx(true_trace / true_grad_sq, rel=0.2)
    assert model.weight.grad is None
    with pytest.raises(ValueError, match="exceeds"):
        estimate_noise_scale(model, x, y, batch_size=4096, num_batches=4, loss_fn=loss_fn)


def test_noise_scale_callback_leaves_training_untouched() -> None:
    """With batch norm and the extra backward passes, a run with the callback is identical to one without."""
    data = patterns()
    runs = []
    for callbacks in ([], [GradientNoiseScale(every=3, chunks=4)]):
        model = mlp(norm=True)
        runs.append(fit(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), data, epochs=2, batch_size=60, callbacks=callbacks, progress=False))
    assert runs[0].steps["loss"] == runs[1].steps["loss"]
    steps, values = series(runs[1], "noise_scale")
    assert list(steps) == list(range(0, 20, 3))
    assert np.all(values["trace"] > 0) and np.isfinite(values["b_simple"]).any()


# ------------------------------------------------------------------------------------------------ clipping


def test_clipping_by_norm_matches_fits_own_clipping() -> None:
    data = patterns()
    plain, clipped = mlp(), mlp()
    callback = GradientClipping(max_norm=0.5)
    reference = fit(plain, torch.optim.SGD(plain.parameters(), lr=0.2), data, epochs=2, batch_size=50, max_grad_norm=0.5, progress=False)
    history = fit(clipped, torch.optim.SGD(clipped.parameters(), lr=0.2), data, epochs=2, batch_size=50, callbacks=[callback], progress=False)
    np.testing.assert_allclose(history.steps["loss"], reference.steps["loss"], rtol=1e-5)
    np.testing.assert_allclose(history.extras["grad_norm_before_clip"], reference.steps["grad_norm"], rtol=1e-5)
    expected = np.mean(np.array(reference.steps["grad_norm"]) > 0.5)
    assert callback.fraction == pytest.approx(expected) and history.extras["clip_fraction"] == [callback.fraction]
    assert 0 < callback.fraction < 1


def test_clipping_by_value_clamps_every_coordinate() -> None:
    data, model = patterns(), mlp()
    seen = []

    class Spy(dldna.train.Callback):
        def after_backward(self, state) -> None:
            seen.append(max(p.grad.abs().max().item() for p in state.model.parameters()))

    callback = GradientClipping(max_value=1e-3)
    fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=1, batch_size=100, callbacks=[callback, Spy()], progress=False)
    assert max(seen) <= 1e-3 + 1e-9 and callback.fraction == 1.0
    loose = GradientClipping(max_value=1e6)
    fit(mlp(), torch.optim.SGD(mlp().parameters(), lr=0.1), data, epochs=1, batch_size=100, callbacks=[loose], progress=False)
    assert loose.fraction == 0.0
    with pytest.raises(ValueError):
        GradientClipping()
    with pytest.raises(ValueError, match="max_norm"):
        GradientClipping(max_norm=-1.0)


# ------------------------------------------------------------------------------------------------ checklist


def test_initial_loss_check_passes_then_fails_with_a_scaled_head() -> None:
    data, model = patterns(), mlp()
    good = check_initial_loss(model, data.x_test, data.y_test)
    assert good.passed and good.measured["ln(C)"] == pytest.approx(math.log(4))
    bad = check_initial_loss(bugs.scale_last_layer(model, 30.0), data.x_test, data.y_test)
    assert not bad.passed and bad.measured["loss"] > math.log(4) + 1
    assert torch.equal(model[3].weight, mlp()[3].weight), "the original model must be unchanged"


def test_overfit_check_passes_then_fails_on_softmax_outputs() -> None:
    data, model = patterns(), mlp(hidden=32)
    good = check_overfit(model, data.x_train, data.y_train)
    assert good.passed and good.measured["steps"] < 300
    bad = check_overfit(bugs.SoftmaxOutput(model), data.x_train, data.y_train, steps=150)
    floor = math.log(1 + 3 / math.e)  # best loss reachable when probabilities are used as logits, 4 classes
    assert not bad.passed and bad.measured["final loss"] >= floor - 1e-4


def test_gradient_flow_check_passes_then_fails_with_a_detached_layer() -> None:
    data, model = patterns(), mlp()
    assert check_gradient_flow(model, data.x_train[:32], data.y_train[:32]).passed
    bad = check_gradient_flow(bugs.detach_after(model, 1), data.x_train[:32], data.y_train[:32])
    assert not bad.passed and bad.measured["without gradient"] == 2 and bad.measured["first without gradient"] == "front.1.weight"


def test_random_label_check_passes_then_fails_with_a_leaky_pipeline() -> None:
    data = patterns(n_train=800, n_test=400, noise=2.0)
    good = check_random_labels(lambda: mlp(hidden=64), data, epochs=5, batch_size=32, min_gap=0.3)
    assert good.passed and good.measured["chance"] == pytest.approx(0.25)
    assert good.measured["real-label test acc"] > 0.6
    bad = check_random_labels(lambda: mlp(hidden=64), data, epochs=5, batch_size=32, min_gap=0.3, pipeline=bugs.leak_labels)
    assert not bad.passed and bad.measured["shuffled-label test acc"] > 0.5


def test_gradient_check_passes_then_fails_with_a_wrong_backward() -> None:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 4, generator=generator), torch.randint(0, 3, (6,), generator=generator)
    for buggy in (False, True):
        dldna.set_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), bugs.Swish(buggy=buggy), nn.Linear(8, 3))
        result = check_gradients(model, x, y)
        assert result.passed is not buggy and result.measured["gradcheck"] == ("failed" if buggy else "passed")
        assert (result.measured["max relative error"] > 0.1) is buggy
        assert next(model.parameters()).dtype == torch.float32, "the model itself stays float32"
    swish = bugs.Swish()
    z = torch.linspace(-3, 3, 7)
    torch.testing.assert_close(swish(z), F.silu(z))


# ------------------------------------------------------------------------------------------------ sharpness


def test_top_hessian_eigenvalue_matches_the_exact_hessian_and_leaves_the_model_alone() -> None:
    data, model = patterns(n_train=40), mlp().double()
    x, y = data.x_train.double(), data.y_train
    params = dict(model.named_parameters())
    names = list(params)
    shapes = [p.shape for p in params.values()]
    sizes = [p.numel() for p in params.values()]

    def loss_of_flat(flat: torch.Tensor) -> torch.Tensor:
        pieces = dict(zip(names, (chunk.view(shape) for chunk, shape in zip(flat.split(sizes), shapes))))
        return F.cross_entropy(torch.func.functional_call(model, pieces, (x,)), y)

    flat = torch.cat([p.detach().flatten() for p in params.values()])
    eigenvalues = torch.linalg.eigvalsh(torch.func.hessian(loss_of_flat)(flat))
    exact = eigenvalues[eigenvalues.abs().argmax()].item()
    estimate = dldna.dynamics.top_hessian_eigenvalue(model, x, y, iterations=500, tolerance=1e-10)
    assert estimate == pytest.approx(exact, rel=1e-5)
    assert all(p.grad is None for p in model.parameters())
    normed = mlp(norm=True)
    running_mean = normed[2].running_mean.clone()
    dldna.dynamics.top_hessian_eigenvalue(normed, data.x_train, y, iterations=3)
    assert torch.equal(normed[2].running_mean, running_mean) and all(p.grad is None for p in normed.parameters())


def test_sharpness_callback_records_every_k_steps_and_its_bound_for_a_quadratic() -> None:
    data = patterns(n_train=64)
    x, y = data.x_train.flatten(1), data.y_train.double()
    linear = nn.Linear(36, 1, bias=False)
    with torch.no_grad():
        linear.weight.zero_()

    def half_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * (out.squeeze(1) - target.to(out.dtype)).pow(2).mean()

    # A linear model under half mean squared error has the constant Hessian X^T X / n.
    curvature = torch.linalg.eigvalsh(x.T @ x / len(x)).max().item()
    flat = Dataset("flat", x, data.y_train, x, data.y_train, ("a",), (0.0,), (1.0,))
    history = fit(linear, torch.optim.SGD(linear.parameters(), lr=0.01), flat, epochs=7, batch_size=64, loss_fn=half_mse,
                  callbacks=[dldna.dynamics.Sharpness(x, y, every=3, loss_fn=half_mse, iterations=300)], progress=False)
    steps, values = series(history, "sharpness")
    assert steps.tolist() == [0, 3, 6]
    assert values["top"] == pytest.approx([curvature] * 3, rel=1e-3)


# ------------------------------------------------------------------------------------------------ batch size


def test_step_curve_fit_recovers_the_model_and_regimes_follow_the_efficiency() -> None:
    batches = [8, 16, 32, 64, 128, 256, 512]
    steps = [300 * (1 + 40 / b) for b in batches]
    s_min, b_crit = dldna.dynamics.fit_step_curve(batches, steps)
    assert s_min == pytest.approx(300) and b_crit == pytest.approx(40)
    regimes = dldna.dynamics.scaling_regimes([16, 32, 64, 128], [400, 200, 150, 148])
    assert [name for _, name in regimes] == ["near-perfect", "diminishing", "stagnation"]
    assert regimes[0][0] == pytest.approx(1.0) and regimes[1][0] == pytest.approx(math.log2(200 / 150))
    with pytest.raises(ValueError):
        dldna.dynamics.fit_step_curve([16, 16], [10, 9])


def test_batch_size_sweep_keeps_the_fastest_learning_rate_of_each_batch_size() -> None:
    data = patterns()

    def sgd(params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    result = dldna.dynamics.batch_size_sweep(lambda: mlp(seed=3), sgd, data, batch_sizes=[10, 40], learning_rates=lambda b: [0.002, 0.05],
                                             target=0.9, max_steps=400, eval_every=lambda b: 2)
    for batch, best, lr, tried in zip(result.batch_sizes, result.steps, result.best_lrs, result.tried):
        reached = [s for _, s in tried if s is not None]
        assert best == min(reached) and dict(tried)[lr] == best and best % 2 == 0
        dldna.set_seed(0)
        model = mlp(seed=3)
        stopper = StopAtTarget(data.x_test, data.y_test, 0.9, every=2)
        fit(model, sgd(model.parameters(), lr), data, epochs=100, batch_size=batch, max_steps=400, callbacks=[stopper], progress=False)
        assert stopper.steps_to_target == best
    assert result.samples == tuple(s * b for s, b in zip(result.steps, result.batch_sizes))


def test_dynamics_exercise_checks_accept_the_reference_and_reject_common_mistakes() -> None:
    from dldna.exercises import dynamics as checks

    def noise_scale(per_sample: torch.Tensor, unbiased: bool = True) -> float:
        trace = per_sample.double().var(dim=0, unbiased=unbiased).sum()
        return (trace / (per_sample.double().mean(dim=0).pow(2).sum() - trace / len(per_sample))).item()

    assert checks.noise_scale(noise_scale)[0]
    assert not checks.noise_scale(lambda g: noise_scale(g, unbiased=False))[0]

    def clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
        return [g * min(1.0, max_norm / torch.sqrt(sum(t.pow(2).sum() for t in grads)).item()) for g in grads]

    assert checks.clip_norm(clip)[0]
    assert not checks.clip_norm(lambda grads, max_norm: [g.clamp(-max_norm, max_norm) for g in grads])[0]
    assert checks.stability((40.0, 1.5))[0] and not checks.stability((20.0, 1.5))[0]
    assert checks.divergence_lrs([0.3, 0.6])[0] and not checks.divergence_lrs([0.15, 0.3, 0.6])[0]
