"""dldna.optim against torch.optim step for step (float64), and invariants where torch has no reference."""

from __future__ import annotations

import copy
import inspect
import math
from typing import Any, Callable

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import dldna.optim as dopt
from dldna.callbacks import Callback, TrainState

REFERENCE_STEPS = 100
RESTART_AT = 60


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny tensors: one intra-op thread avoids thread-pool overhead on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def float64_default():
    """torch keeps step counts and NAdam's μ-product in the default dtype: float64 keeps them exact."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1000 + step)
    return torch.randn(16, 5, generator=generator, dtype=torch.float64), torch.randint(0, 3, (16,), generator=generator)


def param_groups(model: nn.Sequential, first: dict[str, Any]) -> list[dict[str, Any]]:
    """Two groups: the first layer with its own settings, the last layer with the optimizer's defaults."""
    return [{"params": model[0].parameters(), **first}, {"params": model[2].parameters()}]


def closure_for(model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> Callable[[], torch.Tensor]:
    inputs, targets = batch(step)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs), targets)
        loss.backward()
        return loss

    return closure


def max_relative_difference(ours: nn.Module, reference: nn.Module) -> float:
    worst = 0.0
    for a, b in zip(ours.parameters(), reference.parameters()):
        worst = max(worst, ((a - b).abs().max() / b.abs().max().clamp(min=1e-300)).item())
    return worst


# (our class, torch class, constructor arguments, first group's overrides)
REFERENCE_CASES = {
    "sgd-plain": (dopt.SGD, torch.optim.SGD, dict(lr=0.1), dict(lr=0.05, weight_decay=0.01)),
    "sgd-momentum": (dopt.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), dict(lr=0.05, weight_decay=0.01)),
    "sgd-dampening": (dopt.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5), dict(weight_decay=0.01)),
    "sgd-nesterov": (dopt.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.8, nesterov=True), dict(lr=0.02, weight_decay=0.1)),
    "sgd-decay-only": (dopt.SGD, torch.optim.SGD, dict(lr=0.1, weight_decay=1e-3), dict(lr=0.3)),
    "adagrad": (dopt.Adagrad, torch.optim.Adagrad, dict(lr=0.05), dict(lr=0.1, weight_decay=0.01)),
    "adagrad-lr-decay": (dopt.Adagrad, torch.optim.Adagrad, dict(lr=0.05, lr_decay=0.01), dict(lr=0.1)),
    "adagrad-accumulator": (
        dopt.Adagrad, torch.optim.Adagrad, dict(lr=0.05, initial_accumulator_value=0.1, eps=1e-6), dict(weight_decay=0.1),
    ),
    "rmsprop": (dopt.RMSprop, torch.optim.RMSprop, dict(lr=1e-3), dict(lr=3e-3, weight_decay=0.01)),
    "rmsprop-centered": (dopt.RMSprop, torch.optim.RMSprop, dict(lr=1e-3, centered=True), dict(alpha=0.9)),
    "rmsprop-momentum": (dopt.RMSprop, torch.optim.RMSprop, dict(lr=1e-3, momentum=0.9), dict(lr=5e-4, weight_decay=0.01)),
    "rmsprop-centered-momentum": (
        dopt.RMSprop, torch.optim.RMSprop, dict(lr=1e-3, momentum=0.5, centered=True), dict(eps=1e-6),
    ),
    "adam": (dopt.Adam, torch.optim.Adam, dict(lr=1e-2), dict(lr=3e-3, weight_decay=0.01)),
    "adam-amsgrad": (dopt.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True), dict(betas=(0.8, 0.99))),
    "adamw": (dopt.AdamW, torch.optim.AdamW, dict(lr=1e-2), dict(lr=3e-3, weight_decay=0.1)),
    "adamw-amsgrad": (dopt.AdamW, torch.optim.AdamW, dict(lr=1e-2, amsgrad=True), dict(weight_decay=0.0)),
    "nadam": (dopt.NAdam, torch.optim.NAdam, dict(lr=1e-2), dict(lr=3e-3, weight_decay=0.01)),
    "nadam-decoupled": (
        dopt.NAdam, torch.optim.NAdam, dict(lr=1e-2, decoupled_weight_decay=True, weight_decay=0.1), dict(momentum_decay=0.01),
    ),
    "radam": (dopt.RAdam, torch.optim.RAdam, dict(lr=1e-2), dict(lr=3e-3, weight_decay=0.01)),
    "radam-decoupled": (
        dopt.RAdam, torch.optim.RAdam, dict(lr=1e-2, decoupled_weight_decay=True, weight_decay=0.1), dict(betas=(0.9, 0.95)),
    ),
    "adafactor": (dopt.Adafactor, torch.optim.Adafactor, dict(lr=1e-2), dict(lr=5e-3, weight_decay=0.01)),
    "adafactor-options": (
        dopt.Adafactor, torch.optim.Adafactor, dict(lr=1e-2, beta2_decay=-0.6, eps=(1e-30, 1e-3), d=2.0), dict(lr=0.1),
    ),
}


def run_pair(case: str, steps: int, restart_at: int | None) -> tuple[float, float]:
    """Train the same model with ours and torch's optimizer; returns (max rel. param diff, max rel. loss diff)."""
    ours_cls, torch_cls, kwargs, first = REFERENCE_CASES[case]
    model = small_model()
    reference = copy.deepcopy(model)
    ours = ours_cls(param_groups(model, first), **kwargs)
    theirs = torch_cls(param_groups(reference, first), **kwargs)
    ours_schedule = torch.optim.lr_scheduler.StepLR(ours, step_size=45, gamma=0.3)
    theirs_schedule = torch.optim.lr_scheduler.StepLR(theirs, step_size=45, gamma=0.3)
    worst_loss = 0.0
    for step in range(steps):
        if step == restart_at:
            saved = copy.deepcopy(ours.state_dict())
            ours = ours_cls(param_groups(model, first), **kwargs)
            ours.load_state_dict(saved)
            schedule_state = ours_schedule.state_dict()
            ours_schedule = torch.optim.lr_scheduler.StepLR(ours, step_size=45, gamma=0.3)
            ours_schedule.load_state_dict(schedule_state)
        loss_ours = ours.step(closure_for(model, ours, step))
        loss_theirs = theirs.step(closure_for(reference, theirs, step))
        worst_loss = max(worst_loss, abs(loss_ours.item() - loss_theirs.item()) / abs(loss_theirs.item()))
        ours_schedule.step()
        theirs_schedule.step()
    assert ours.param_groups[0]["lr"] == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-15)
    assert ours.param_groups[0]["lr"] < first.get("lr", kwargs.get("lr", 1.0))
    assert max_relative_difference(model, small_model()) > 1e-3
    return max_relative_difference(model, reference), worst_loss


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_matches_torch_step_for_step(case: str, float64_default) -> None:
    """Two param groups, a StepLR schedule on both, a state_dict round trip at step 60, closures."""
    params_diff, loss_diff = run_pair(case, REFERENCE_STEPS, RESTART_AT)
    assert params_diff < 1e-12
    assert loss_diff < 1e-12


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_torch_state_dict_loads_into_ours(case: str, float64_default) -> None:
    """torch's state (same keys) continues in ours exactly as in torch."""
    ours_cls, torch_cls, kwargs, first = REFERENCE_CASES[case]
    reference = small_model()
    theirs = torch_cls(param_groups(reference, first), **kwargs)
    for step in range(30):
        theirs.step(closure_for(reference, theirs, step))
    model = copy.deepcopy(reference)
    ours = ours_cls(param_groups(model, first), **kwargs)
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    for step in range(30, 60):
        ours.step(closure_for(model, ours, step))
        theirs.step(closure_for(reference, theirs, step))
    assert max_relative_difference(model, reference) < 1e-12


# ---------------------------------------------------------------------------------------------------------
# Functional updates: tensor hyperparameters (one value per stacked configuration) give the float results.

FUNCTIONAL_CASES = {
    "sgd": (dopt.sgd_update, dict(lr=(0.1, 0.02), momentum=(0.9, 0.5), weight_decay=(0.0, 0.1)), dict(nesterov=True)),
    "adagrad": (dopt.adagrad_update, dict(lr=(0.1, 0.02), lr_decay=(0.0, 0.1), initial_accumulator_value=(0.0, 0.5)), {}),
    "rmsprop": (dopt.rmsprop_update, dict(lr=(1e-2, 1e-3), alpha=(0.9, 0.99), momentum=(0.0, 0.9)), dict(centered=True)),
    "adam": (dopt.adam_update, dict(lr=(1e-2, 1e-3), beta1=(0.9, 0.5), beta2=(0.99, 0.999)), dict(amsgrad=True)),
    "adamw": (dopt.adamw_update, dict(lr=(1e-2, 1e-3), weight_decay=(0.1, 0.0)), {}),
    "nadam": (dopt.nadam_update, dict(lr=(1e-2, 1e-3), beta1=(0.9, 0.8), momentum_decay=(4e-3, 1e-2)), {}),
    "radam": (dopt.radam_update, dict(lr=(1e-2, 1e-3), beta2=(0.999, 0.8), weight_decay=(0.0, 0.1)), {}),
    "adabelief": (dopt.adabelief_update, dict(lr=(1e-2, 1e-3), beta1=(0.9, 0.5), weight_decay=(0.1, 0.0)), {}),
    "lion": (dopt.lion_update, dict(lr=(1e-3, 1e-4), beta1=(0.9, 0.5), weight_decay=(0.1, 0.0)), {}),
    "sophia": (dopt.sophia_update, dict(lr=(1e-2, 1e-3), rho=(0.04, 1.0), weight_decay=(0.1, 0.0)), {}),
}


@pytest.mark.parametrize("case", sorted(FUNCTIONAL_CASES))
def test_functional_update_accepts_tensor_hyperparameters(case: str) -> None:
    """Two configurations stacked along dim 0 with (2, 1) hyperparameter tensors = two runs with floats."""
    update, per_config, flags = FUNCTIONAL_CASES[case]
    generator = torch.Generator().manual_seed(3)
    start = torch.randn(2, 6, generator=generator, dtype=torch.float64)
    grads = torch.randn(40, 2, 6, generator=generator, dtype=torch.float64)
    stacked, stacked_state = start.clone(), {}
    tensors = {name: torch.tensor(values, dtype=torch.float64).reshape(2, 1) for name, values in per_config.items()}
    for grad in grads:
        update(stacked, grad, stacked_state, **tensors, **flags)
    for index in range(2):
        single, state = start[index].clone(), {}
        floats = {name: values[index] for name, values in per_config.items()}
        for grad in grads:
            update(single, grad[index], state, **floats, **flags)
        torch.testing.assert_close(stacked[index], single, rtol=1e-12, atol=1e-14)
    assert not torch.equal(stacked, start)


# ---------------------------------------------------------------------------------------------------------
# One way to plug an optimizer in: its update function, and the group keys its class reads for it.


@pytest.mark.parametrize("name", sorted(dopt.OPTIMIZERS))
def test_class_defaults_are_its_update_functions_arguments(name: str) -> None:
    """``hyperparameters(defaults)`` names every keyword argument of the update function, and the function's own
    defaults (used when the chapter calls it by hand) are the class's: the declaration the widgets and the
    sweep read agrees with the code that runs."""
    cls = dopt.OPTIMIZERS[name]
    arguments = cls.hyperparameters(dopt.default_hyperparameters(cls))
    keywords = {key: p.default for key, p in inspect.signature(cls.update).parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert list(arguments) == list(keywords)
    assert {key: value for key, value in arguments.items() if key != "lr"} == {key: value for key, value in keywords.items() if key != "lr"}


def test_default_hyperparameters_reads_torch_classes_too() -> None:
    assert dopt.default_hyperparameters(dopt.Adam) == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
    assert dopt.default_hyperparameters(torch.optim.SGD)["momentum"] == 0


# ---------------------------------------------------------------------------------------------------------
# Invariants where torch has no reference.


def random_steps(optimizer: torch.optim.Optimizer, param: torch.Tensor, steps: int, seed: int = 0):
    """Feed ``steps`` random gradients; yields the update ``w_new - w_old`` of each step."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        param.grad = torch.randn(param.shape, generator=generator, dtype=param.dtype)
        before = param.detach().clone()
        optimizer.step()
        yield param.detach() - before


def test_lion_moves_every_coordinate_by_exactly_lr() -> None:
    param = nn.Parameter(torch.randn(50, dtype=torch.float64))
    lr = 3e-3
    for update in random_steps(dopt.Lion([param], lr=lr), param, 30):
        torch.testing.assert_close(update.abs(), torch.full_like(update, lr), rtol=1e-9, atol=0)


def test_lion_decay_is_decoupled() -> None:
    param = nn.Parameter(torch.randn(50, dtype=torch.float64))
    lr, decay = 3e-3, 0.5
    optimizer = dopt.Lion([param], lr=lr, weight_decay=decay)
    before = param.detach().clone()
    (update,) = random_steps(optimizer, param, 1)
    torch.testing.assert_close(update, -lr * (torch.sign(param.grad) + decay * before), rtol=1e-12, atol=1e-15)


def test_adam_first_step_is_about_lr_times_sign() -> None:
    param = nn.Parameter(torch.randn(100, dtype=torch.float64))
    lr = 1e-2
    optimizer = dopt.Adam([param], lr=lr)
    (update,) = random_steps(optimizer, param, 1)
    torch.testing.assert_close(update, -lr * torch.sign(param.grad), rtol=1e-5, atol=0)


def test_adabelief_with_squared_gradient_as_belief_is_adam(monkeypatch) -> None:
    from dldna.optim import adabelief

    monkeypatch.setattr(adabelief, "belief_term", lambda grad, exp_avg: grad * grad)
    model = small_model()
    reference = copy.deepcopy(model)
    ours = dopt.AdaBelief(model.parameters(), lr=1e-2, eps=0.0, weight_decay=0.01, decoupled_weight_decay=False)
    adam = dopt.Adam(reference.parameters(), lr=1e-2, eps=0.0, weight_decay=0.01)
    for step in range(REFERENCE_STEPS):
        ours.step(closure_for(model, ours, step))
        adam.step(closure_for(reference, adam, step))
    assert max_relative_difference(model, reference) < 1e-12


def test_adabelief_differs_from_adam_with_its_belief_term() -> None:
    model = small_model()
    reference = copy.deepcopy(model)
    ours = dopt.AdaBelief(model.parameters(), lr=1e-2, eps=0.0)
    adam = dopt.Adam(reference.parameters(), lr=1e-2, eps=0.0)
    for step in range(10):
        ours.step(closure_for(model, ours, step))
        adam.step(closure_for(reference, adam, step))
    assert max_relative_difference(model, reference) > 1e-3


def frobenius(tensor: torch.Tensor) -> float:
    return math.sqrt(sum(value * value for value in tensor.flatten().tolist()))


def test_lars_trust_ratio_per_tensor_by_hand() -> None:
    """Two steps of LARS with momentum; each tensor's update recomputed from the paper's formulas."""
    model = small_model()
    lr, momentum, decay, trust = 0.5, 0.9, 0.01, 0.02
    optimizer = dopt.LARS(model.parameters(), lr=lr, momentum=momentum, weight_decay=decay, trust_coefficient=trust)
    buffers = [torch.zeros_like(p) for p in model.parameters()]
    for step in range(2):
        closure_for(model, optimizer, step)()
        before = [p.detach().clone() for p in model.parameters()]
        grads = [p.grad.clone() for p in model.parameters()]
        optimizer.step()
        for param, old, grad, buffer in zip(model.parameters(), before, grads, buffers):
            if old.dim() > 1:
                ratio = trust * frobenius(old) / (frobenius(grad) + decay * frobenius(old))
            else:
                ratio = 1.0
            buffer.mul_(momentum).add_(lr * ratio * (grad + decay * old))
            torch.testing.assert_close(param.detach(), old - buffer, rtol=1e-12, atol=1e-14)


def test_lars_adapts_one_dimensional_tensors_when_asked() -> None:
    bias = nn.Parameter(torch.randn(7, dtype=torch.float64))
    optimizer = dopt.LARS([bias], lr=0.5, trust_coefficient=0.02, exclude_1d=False)
    before = bias.detach().clone()
    (update,) = random_steps(optimizer, bias, 1)
    ratio = 0.02 * frobenius(before) / frobenius(bias.grad)
    torch.testing.assert_close(update, -0.5 * ratio * bias.grad, rtol=1e-12, atol=1e-15)


def test_lamb_trust_ratio_per_tensor_by_hand() -> None:
    """LAMB's first step: m̂ = g, v̂ = g², u = g / (|g| + ε) + λ w, step = lr ‖w‖/‖u‖ · u per tensor."""
    model = small_model()
    lr, decay, eps = 1e-2, 0.1, 1e-6
    optimizer = dopt.LAMB(model.parameters(), lr=lr, weight_decay=decay, eps=eps)
    closure_for(model, optimizer, 0)()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    for param, old in zip(model.parameters(), before):
        direction = param.grad / (param.grad.abs() + eps) + decay * old
        ratio = frobenius(old) / frobenius(direction)
        torch.testing.assert_close(param.detach(), old - lr * ratio * direction, rtol=1e-12, atol=1e-14)
        assert frobenius(param.detach() - old) == pytest.approx(lr * frobenius(old), rel=1e-10)


# --- Sophia


def test_sophia_step_never_exceeds_lr_per_coordinate() -> None:
    model = small_model()
    lr = 1e-2
    optimizer = dopt.Sophia(model.parameters(), lr=lr, weight_decay=0.0, rho=0.04)
    generator = torch.Generator().manual_seed(0)
    largest = 0.0
    for step in range(40):
        inputs, targets = batch(step)
        if step % 5 == 0:
            method = "hutchinson" if step % 10 else "gnb"
            optimizer.update_hessian(model, inputs, targets, method=method, generator=generator)
        closure_for(model, optimizer, step)()
        before = [p.detach().clone() for p in model.parameters()]
        optimizer.step()
        largest = max(largest, max((p.detach() - b).abs().max().item() for p, b in zip(model.parameters(), before)))
    assert largest <= lr * (1 + 1e-12)
    assert largest >= 0.999 * lr


def test_sophia_update_by_hand() -> None:
    """Newton-like where ρh is large, a clipped sign step where it is small or negative, decoupled decay."""
    param = nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64))
    lr, rho, decay, beta1 = 0.1, 0.5, 0.01, 0.9
    optimizer = dopt.Sophia([param], lr=lr, rho=rho, weight_decay=decay, betas=(beta1, 0.0))
    hessian = torch.tensor([4.0, 0.01, -1.0, 2.0], dtype=torch.float64)
    optimizer.accumulate_hessian([hessian])
    param.grad = torch.tensor([2.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    before = param.detach().clone()
    optimizer.step()
    momentum = (1 - beta1) * param.grad
    ratio = momentum / torch.clamp(rho * hessian, min=1e-15)
    expected = before * (1 - lr * decay) - lr * ratio.clamp(-1, 1)
    torch.testing.assert_close(param.detach(), expected, rtol=1e-14, atol=1e-15)
    assert ratio[0].abs() < 1 and ratio[1].abs() > 1


def random_spd(dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    factor = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return factor @ factor.T / dim + torch.diag(torch.linspace(0.5, 3.0, dim, dtype=torch.float64))


def assert_mean_within_standard_errors(samples: torch.Tensor, expected: torch.Tensor, errors: float = 5.0) -> None:
    standard_error = samples.std(dim=0) / samples.shape[0] ** 0.5
    assert ((samples.mean(dim=0) - expected).abs() <= errors * standard_error + 1e-12).all()


def test_hutchinson_is_unbiased_on_a_quadratic() -> None:
    hessian = random_spd(6, seed=1)
    weights = torch.randn(6, dtype=torch.float64, requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    samples = torch.stack(
        [dopt.hutchinson_diagonal(0.5 * weights @ hessian @ weights, [weights], generator)[0] for _ in range(1000)]
    )
    assert_mean_within_standard_errors(samples, torch.diagonal(hessian))
    assert (samples.std(dim=0) > 0).all()


def test_gauss_newton_bartlett_is_unbiased_for_softmax_regression() -> None:
    """For logits linear in the weights the Gauss-Newton matrix is the Hessian: E[B ĝ²] = diag(H)."""
    torch.manual_seed(0)
    layer = nn.Linear(4, 3).double()
    inputs = torch.randn(8, 4, dtype=torch.float64)
    targets = torch.randint(0, 3, (8,))
    params = dict(layer.named_parameters())

    def loss_of(weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (inputs,)), targets)

    exact = torch.func.hessian(loss_of, argnums=(0, 1))(params["weight"], params["bias"])
    diag_weight = torch.diagonal(exact[0][0].reshape(12, 12))
    diag_bias = torch.diagonal(exact[1][1])
    generator = torch.Generator().manual_seed(0)
    samples = [
        dopt.estimate_hessian_diagonal(layer, inputs, method="gnb", generator=generator) for _ in range(1000)
    ]
    assert_mean_within_standard_errors(torch.stack([s[0].flatten() for s in samples]), diag_weight)
    assert_mean_within_standard_errors(torch.stack([s[1] for s in samples]), diag_bias)
    assert all(param.grad is None for param in layer.parameters())


def test_sophia_refresh_callback_runs_every_k_steps(fashion) -> None:
    from dldna.models import MLP
    from dldna.train import fit

    torch.manual_seed(0)
    model = MLP(hidden=(32,))
    optimizer = dopt.Sophia(model.parameters(), lr=1e-3)
    history = fit(model, optimizer, fashion, epochs=1, batch_size=100, callbacks=[dopt.SophiaHessianRefresh(every=3)])
    assert history.extras["hessian_refresh_step"] == [0, 3, 6, 9]
    assert all(optimizer.state[p]["hessian"].abs().sum() > 0 for p in model.parameters())


# --- Lookahead


def run_steps(model: nn.Module, optimizer: torch.optim.Optimizer, steps: range) -> None:
    for step in steps:
        optimizer.step(closure_for(model, optimizer, step))


@pytest.mark.parametrize("inner", [dict(cls=dopt.SGD, lr=0.1, momentum=0.9), dict(cls=dopt.Adam, lr=1e-2)])
def test_lookahead_with_k1_alpha1_is_its_inner_optimizer(inner: dict[str, Any]) -> None:
    settings = dict(inner)
    cls = settings.pop("cls")
    model = small_model()
    reference = copy.deepcopy(model)
    run_steps(model, dopt.Lookahead(cls(model.parameters(), **settings), k=1, alpha=1.0), range(50))
    run_steps(reference, cls(reference.parameters(), **settings), range(50))
    assert max_relative_difference(model, reference) < 1e-12


def test_lookahead_pulls_slow_weights_every_k_steps() -> None:
    """After k inner steps from φ₀: w = φ₀ + α (θ_k - φ₀), θ_k being the inner optimizer's weights."""
    model = small_model()
    fast = copy.deepcopy(model)
    start = [p.detach().clone() for p in model.parameters()]
    run_steps(model, dopt.Lookahead(dopt.SGD(model.parameters(), lr=0.1), k=5, alpha=0.3), range(5))
    run_steps(fast, dopt.SGD(fast.parameters(), lr=0.1), range(5))
    for param, slow, theta in zip(model.parameters(), start, fast.parameters()):
        torch.testing.assert_close(param.detach(), slow + 0.3 * (theta.detach() - slow), rtol=1e-12, atol=1e-14)


def test_lookahead_state_dict_round_trip_and_scheduler() -> None:
    def make(model: nn.Module) -> dopt.Lookahead:
        return dopt.Lookahead(dopt.Adam(param_groups(model, dict(lr=3e-3)), lr=1e-2), k=4, alpha=0.5)

    model = small_model()
    reference = copy.deepcopy(model)
    optimizer, uninterrupted = make(model), make(reference)
    schedules = [torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5) for o in (optimizer, uninterrupted)]
    for step in range(30):
        if step == 13:
            saved = copy.deepcopy(optimizer.state_dict())
            optimizer = make(model)
            optimizer.load_state_dict(saved)
            schedules[0] = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
            schedules[0].last_epoch = schedules[1].last_epoch
        optimizer.step(closure_for(model, optimizer, step))
        uninterrupted.step(closure_for(reference, uninterrupted, step))
        for schedule in schedules:
            schedule.step()
    assert uninterrupted.optimizer.param_groups[1]["lr"] == pytest.approx(1e-2 * 0.125)
    assert optimizer.optimizer.param_groups[1]["lr"] == pytest.approx(1e-2 * 0.125)
    assert max_relative_difference(model, reference) < 1e-12


# --- SWA


def test_running_average_is_the_mean() -> None:
    snapshots = torch.randn(7, 5, dtype=torch.float64)
    average = snapshots[0].clone()
    for count, snapshot in enumerate(snapshots[1:], start=1):
        average = dopt.running_average(average, snapshot, count)
    torch.testing.assert_close(average, snapshots.mean(dim=0), rtol=1e-13, atol=1e-15)


class SnapshotEvery(Callback):
    def __init__(self, every: int) -> None:
        self.every, self.snapshots = every, []

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self.snapshots.append([p.detach().clone() for p in state.model.parameters()])


def test_swa_average_is_the_mean_of_its_snapshots(fashion) -> None:
    from dldna.models import MLP
    from dldna.train import fit

    torch.manual_seed(0)
    model = MLP(hidden=(32,))
    swa, recorder = dopt.StochasticWeightAveraging(every=2), SnapshotEvery(2)
    fit(model, dopt.SGD(model.parameters(), lr=0.05, momentum=0.9), fashion, epochs=1, batch_size=100,
        callbacks=[swa, recorder])
    assert swa.snapshots == len(recorder.snapshots) == 5
    for index, averaged in enumerate(swa.averaged.module.parameters()):
        expected = torch.stack([snapshot[index] for snapshot in recorder.snapshots]).mean(dim=0)
        torch.testing.assert_close(averaged, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Every optimizer trains: a small MLP on FashionMNIST, and a convex quadratic to its minimum.


@pytest.fixture(scope="module")
def fashion():
    from dldna.data import load_fashion_mnist

    return load_fashion_mnist(train_size=1000, test_size=200)


def make_lookahead(params, **kwargs) -> dopt.Lookahead:
    return dopt.Lookahead(dopt.Adam(params, **kwargs), k=5, alpha=0.5)


# name -> (factory, settings for the FashionMNIST MLP)
TRAINING_SETTINGS = {
    "SGD": (dopt.SGD, dict(lr=0.1, momentum=0.9)),
    "Adagrad": (dopt.Adagrad, dict(lr=0.05)),
    "RMSprop": (dopt.RMSprop, dict(lr=1e-3)),
    "Adam": (dopt.Adam, dict(lr=1e-3)),
    "AdamW": (dopt.AdamW, dict(lr=1e-3)),
    "NAdam": (dopt.NAdam, dict(lr=2e-3)),
    "RAdam": (dopt.RAdam, dict(lr=3e-3)),
    "AdaBelief": (dopt.AdaBelief, dict(lr=1e-3)),
    "Lion": (dopt.Lion, dict(lr=3e-4)),
    "Sophia": (dopt.Sophia, dict(lr=1e-3)),
    "Adafactor": (dopt.Adafactor, dict()),
    "LARS": (dopt.LARS, dict(lr=1.0, trust_coefficient=0.02)),
    "LAMB": (dopt.LAMB, dict(lr=1e-2)),
    "Lookahead": (make_lookahead, dict(lr=2e-3)),
}


def test_every_registered_optimizer_is_covered() -> None:
    assert set(dopt.OPTIMIZERS) | {"Lookahead"} == set(TRAINING_SETTINGS)
    assert all(issubclass(cls, torch.optim.Optimizer) for cls in dopt.OPTIMIZERS.values())
    assert set(dopt.__all__) <= set(dir(dopt))


@pytest.mark.parametrize("name", sorted(TRAINING_SETTINGS))
def test_optimizer_lowers_fashion_mnist_loss(name: str, fashion) -> None:
    from dldna.models import MLP
    from dldna.train import evaluate, fit

    factory, settings = TRAINING_SETTINGS[name]
    torch.manual_seed(0)
    model = MLP(hidden=(64,))
    x_train, y_train = fashion.split("train")
    loss_before, _ = evaluate(model, x_train, y_train)
    callbacks = [dopt.SophiaHessianRefresh(every=5)] if name == "Sophia" else []
    history = fit(model, factory(model.parameters(), **settings), fashion, epochs=3, batch_size=100, callbacks=callbacks)
    loss_after, _ = evaluate(model, x_train, y_train)
    assert history.status == "completed"
    assert loss_after < 0.75 * loss_before


QUADRATIC_DIM = 8


def quadratic_problem() -> tuple[torch.Tensor, torch.Tensor]:
    """``f(w) = ½ (w - w*)ᵀ H (w - w*)``, H SPD with eigenvalues in about [0.5, 5]."""
    generator = torch.Generator().manual_seed(7)
    return random_spd(QUADRATIC_DIM, seed=7), torch.randn(QUADRATIC_DIM, generator=generator, dtype=torch.float64)


QUADRATIC_ROOT_DIM = QUADRATIC_DIM**0.5
MINIMUM_NORM = quadratic_problem()[1].norm().item()

# name -> (factory, settings, steps, tolerance on ‖w - w*‖). Methods whose step keeps a fixed size near the
# minimum oscillate at the scale of that size: sign-based Lion at lr per coordinate (tolerance 2 lr √d),
# RMSprop at about lr per coordinate (lr √d), LAMB at one step's norm (lr ‖w*‖), Adafactor at its relative
# step (RMS(w) / √t per coordinate). The others converge to float64 precision or close.
QUADRATIC_SETTINGS = {
    "SGD": (dopt.SGD, dict(lr=0.1, momentum=0.5), 300, 1e-8),
    "Adagrad": (dopt.Adagrad, dict(lr=0.5), 600, 1e-6),
    "RMSprop": (dopt.RMSprop, dict(lr=1e-2), 1000, 1e-2 * QUADRATIC_ROOT_DIM),
    "Adam": (dopt.Adam, dict(lr=5e-2), 600, 1e-6),
    "AdamW": (dopt.AdamW, dict(lr=5e-2, weight_decay=0.0), 600, 1e-6),
    "NAdam": (dopt.NAdam, dict(lr=5e-2), 600, 1e-6),
    "RAdam": (dopt.RAdam, dict(lr=5e-2), 600, 1e-6),
    "AdaBelief": (dopt.AdaBelief, dict(lr=5e-2), 600, 1e-6),
    "Lion": (dopt.Lion, dict(lr=1e-2), 600, 2e-2 * QUADRATIC_ROOT_DIM),
    "Sophia": (dopt.Sophia, dict(lr=1e-2, rho=0.04, weight_decay=0.0), 1000, 1e-5),
    "Adafactor": (dopt.Adafactor, dict(lr=0.1), 800, 800**-0.5 * QUADRATIC_ROOT_DIM),
    "LARS": (dopt.LARS, dict(lr=0.1, trust_coefficient=0.05), 1000, 1e-8),
    "LAMB": (dopt.LAMB, dict(lr=1e-2), 1000, 1e-2 * MINIMUM_NORM),
    "Lookahead": (make_lookahead, dict(lr=5e-2), 600, 1e-6),
}


@pytest.mark.parametrize("name", sorted(QUADRATIC_SETTINGS))
def test_optimizer_reaches_quadratic_minimum(name: str) -> None:
    factory, settings, steps, tolerance = QUADRATIC_SETTINGS[name]
    hessian, minimum = quadratic_problem()

    def quadratic(weights: torch.Tensor) -> torch.Tensor:
        offset = weights - minimum
        return 0.5 * offset @ hessian @ offset

    weights = nn.Parameter(torch.ones(QUADRATIC_DIM, dtype=torch.float64))
    optimizer = factory([weights], **settings)
    for step in range(steps):
        optimizer.zero_grad()
        if name == "Sophia" and step % 10 == 0:
            optimizer.accumulate_hessian(dopt.hutchinson_diagonal(quadratic(weights), [weights]))
        quadratic(weights).backward()
        optimizer.step()
    assert (weights.detach() - minimum).norm().item() < tolerance


# ---------------------------------------------------------------------------------------------------------
# Hyperparameter checks and memory accounting.


def one_param() -> list[nn.Parameter]:
    return [nn.Parameter(torch.zeros(3))]


INVALID_SETTINGS = [
    (dopt.SGD, dict(lr=-0.1), "lr"),
    (dopt.SGD, dict(momentum=-0.5), "momentum"),
    (dopt.SGD, dict(nesterov=True), "nesterov"),
    (dopt.Adagrad, dict(lr_decay=-1.0), "lr_decay"),
    (dopt.Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (dopt.Adagrad, dict(eps=-1e-10), "eps"),
    (dopt.RMSprop, dict(alpha=-0.1), "alpha"),
    (dopt.RMSprop, dict(weight_decay=-1.0), "weight_decay"),
    (dopt.Adam, dict(betas=(1.0, 0.999)), "betas"),
    (dopt.AdamW, dict(betas=(0.9, -0.1)), "betas"),
    (dopt.AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (dopt.NAdam, dict(momentum_decay=-1.0), "momentum_decay"),
    (dopt.RAdam, dict(lr=-1e-3), "lr"),
    (dopt.AdaBelief, dict(eps=-1.0), "eps"),
    (dopt.Lion, dict(betas=(0.9,)), "betas"),
    (dopt.Lion, dict(weight_decay=-1.0), "weight_decay"),
    (dopt.Sophia, dict(rho=0.0), "rho"),
    (dopt.Sophia, dict(eps=0.0), "eps"),
    (dopt.Adafactor, dict(beta2_decay=0.5), "beta2_decay"),
    (dopt.Adafactor, dict(d=0.5), "d"),
    (dopt.Adafactor, dict(eps=(-1.0, 1e-3)), "eps"),
    (dopt.LARS, dict(trust_coefficient=0.0), "trust_coefficient"),
    (dopt.LAMB, dict(lr=-1.0), "lr"),
    (make_lookahead, dict(lr=-1.0), "lr"),
]


@pytest.mark.parametrize(("factory", "settings", "argument"), INVALID_SETTINGS)
def test_invalid_hyperparameter_raises_naming_it(factory, settings: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        factory(one_param(), **settings)


@pytest.mark.parametrize("name", sorted(dopt.OPTIMIZERS))
@pytest.mark.parametrize("lr", [math.nan, math.inf, -math.inf])
def test_every_optimizer_refuses_a_learning_rate_that_is_not_finite(name: str, lr: float) -> None:
    """torch.optim accepts ``lr=inf`` (and its optimizers without a check accept ``nan``); a run with either only
    produces NaN, so the constructor refuses both, in one sentence."""
    with pytest.raises(ValueError) as error:
        dopt.OPTIMIZERS[name](one_param(), lr=lr)
    assert str(error.value) == f"Invalid learning rate: lr={lr!r} (must be a finite number >= 0, such as lr=1e-3)"


@pytest.mark.parametrize(("factory", "settings", "message"), [
    (dopt.SGD, dict(lr=0.1, momentum=math.inf), "Invalid momentum: momentum=inf (must be a finite number >= 0)"),
    (dopt.AdamW, dict(weight_decay=math.nan), "Invalid weight_decay: weight_decay=nan (must be a finite number >= 0)"),
    (dopt.Adam, dict(betas=(math.nan, 0.999)), "Invalid beta parameter at index 0: betas[0]=nan (must be in [0, 1))"),
    (dopt.Sophia, dict(rho=math.inf), "Invalid rho: rho=inf (must be a finite number > 0)"),
    (dopt.SGD, dict(lr=True), "Invalid learning rate: lr=True (must be a finite number >= 0, such as lr=1e-3)"),
])
def test_other_hyperparameters_must_be_finite_too(factory, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        factory(one_param(), **settings)
    assert str(error.value) == message


@pytest.mark.parametrize(("settings", "argument"), [(dict(k=0), "k"), (dict(k=2.5), "k"), (dict(alpha=0.0), "alpha"),
                                                   (dict(alpha=1.5), "alpha")])
def test_invalid_lookahead_settings(settings: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        dopt.Lookahead(dopt.SGD(one_param(), lr=0.1), **settings)


@pytest.mark.parametrize(("factory", "argument"), [
    (lambda: dopt.SophiaHessianRefresh(every=0), "every"),
    (lambda: dopt.SophiaHessianRefresh(method="exact"), "method"),
    (lambda: dopt.StochasticWeightAveraging(every=0), "every"),
    (lambda: dopt.StochasticWeightAveraging(start=-1), "start"),
    (lambda: dopt.estimate_hessian_diagonal(nn.Linear(2, 2), torch.zeros(1, 2), method="exact"), "method"),
    (lambda: dopt.estimate_hessian_diagonal(nn.Linear(2, 2), torch.zeros(1, 2), method="hutchinson"), "targets"),
])
def test_invalid_helper_settings(factory: Callable[[], Any], argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        factory()


def test_state_bytes_counts_the_optimizer_buffers() -> None:
    model = small_model()
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    matrix = model[0].weight

    def bytes_after_one_step(optimizer: torch.optim.Optimizer) -> int:
        optimizer.step(closure_for(model, optimizer, 0))
        return dopt.state_bytes(optimizer)

    assert bytes_after_one_step(dopt.SGD(model.parameters(), lr=0.0)) == 0
    assert bytes_after_one_step(dopt.SGD(model.parameters(), lr=0.0, momentum=0.9)) == param_bytes
    assert bytes_after_one_step(dopt.Lion(model.parameters(), lr=0.0)) == param_bytes
    assert bytes_after_one_step(dopt.Adam(model.parameters(), lr=0.0)) == 2 * param_bytes
    assert bytes_after_one_step(dopt.Adam(model.parameters(), lr=0.0, amsgrad=True)) == 3 * param_bytes
    lookahead = dopt.Lookahead(dopt.Adam(model.parameters(), lr=0.0))
    assert bytes_after_one_step(lookahead) == 3 * param_bytes
    adafactor = dopt.Adafactor(model.parameters(), lr=0.0)
    factored = bytes_after_one_step(adafactor)
    assert adafactor.state[matrix]["row_var"].numel() + adafactor.state[matrix]["col_var"].numel() == sum(matrix.shape)
    assert factored < param_bytes
