"""dldna.train.sweep: every configuration of a batched sweep equals training it alone with fit (float64)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import dldna
import dldna.optim
from dldna.data import Dataset
from dldna.optim import SGD, Adam
from dldna.train import History, fit
from dldna.train.sweep import grid, sweep, sweepable_optimizers


def blobs64(n_train: int = 300, n_test: int = 200, seed: int = 0) -> Dataset:
    """Four noisy Gaussian blobs in 2-D, in float64."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], dtype=torch.float64)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 4
        return centres[labels] + torch.randn(n, 2, generator=generator, dtype=torch.float64), labels

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return Dataset("blobs64", x_train, y_train, x_test, y_test, ("a", "b", "c", "d"), (0.0,), (1.0,))


def relu_mlp(seed: int = 0) -> nn.Module:
    dldna.set_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).double()


def assert_same_run(swept: History, alone: History) -> None:
    """Same status, same step count and the same numbers: 1e-10 for float64 quantities; fit keeps losses in
    float32 (``loss.float()``), so losses are compared at float32 precision."""
    assert swept.status == alone.status and swept.diverged_at == alone.diverged_at
    assert swept.num_steps == alone.num_steps and len(swept.epochs["test_acc"]) == len(alone.epochs["test_acc"])
    for name in ("grad_norm", "update_norm", "weight_norm", "lr"):
        np.testing.assert_allclose(swept.steps[name], alone.steps[name], rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(swept.steps["loss"], alone.steps["loss"], rtol=1e-6, atol=1e-9)
    for name in ("train_loss", "test_loss"):
        np.testing.assert_allclose(swept.epochs[name], alone.epochs[name], rtol=1e-6, err_msg=name)
    assert swept.epochs["train_acc"] == alone.epochs["train_acc"]
    assert swept.epochs["test_acc"] == alone.epochs["test_acc"]


def test_sgd_sweep_matches_fit_per_configuration_and_isolates_divergence() -> None:
    data, model = blobs64(), relu_mlp()
    initial = copy.deepcopy(model.state_dict())
    configs = [
        {"lr": 0.05},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.1, "momentum": 0.5, "weight_decay": 1e-3, "dampening": 0.1},
        {"lr": 300.0, "momentum": 0.9},
    ]
    swept = sweep(model, data, "sgd", configs, epochs=3, batch_size=32, seed=5)
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items()), "sweep changed the model"
    for config, history in zip(configs, swept):
        alone_model = copy.deepcopy(model)
        alone = fit(alone_model, SGD(alone_model.parameters(), **config), data, epochs=3, batch_size=32, seed=5, progress=False)
        assert_same_run(history, alone)
        assert history.config["hyperparameters"]["lr"] == config["lr"] and history.config["optimizer"] == "SGD"
    assert [h.status for h in swept] == ["completed"] * 3 + ["diverged"]
    assert swept[3].diverged_at < swept[3].steps_per_epoch and np.isfinite(swept[3].steps["loss"][:-1]).all()
    assert swept[1].final_test_acc > 0.6


def test_adam_sweep_over_betas_and_batch_sizes_matches_fit_and_torch() -> None:
    data, model = blobs64(), relu_mlp(1)
    configs = grid(lr=[0.03], beta1=[0.0, 0.9], batch_size=[25, 64]) + [{"lr": 0.01, "beta2": 0.9, "weight_decay": 0.01}]
    swept = sweep(model, data, "adam", configs, epochs=2, batch_size=50, seed=2)
    for config, history in zip(configs, swept):
        hyper = {k: v for k, v in config.items() if k != "batch_size"}
        betas = (hyper.pop("beta1", 0.9), hyper.pop("beta2", 0.999))
        alone_model = copy.deepcopy(model)
        alone = fit(
            alone_model, Adam(alone_model.parameters(), betas=betas, **hyper), data, epochs=2,
            batch_size=config.get("batch_size", 50), seed=2, progress=False,
        )
        assert_same_run(history, alone)
        assert history.config["batch_size"] == config.get("batch_size", 50)
    reference_model = copy.deepcopy(model)
    reference = fit(reference_model, torch.optim.Adam(reference_model.parameters(), lr=0.03, betas=(0.9, 0.999)), data, epochs=2, batch_size=64, seed=2, progress=False)
    index = configs.index({"lr": 0.03, "beta1": 0.9, "batch_size": 64})
    np.testing.assert_allclose(swept[index].steps["weight_norm"], reference.steps["weight_norm"], rtol=1e-10)


def test_max_steps_and_the_sweepable_optimizers() -> None:
    data, model = blobs64(), relu_mlp()
    (history,) = sweep(model, data, "sgd", [{"lr": 0.1}], epochs=5, batch_size=100, max_steps=4)
    assert history.num_steps == 4 and len(history.epochs["test_acc"]) == 2
    assert history.status == "learned nothing", "four steps leave the test accuracy at chance level (27%)"
    assert set(sweepable_optimizers()) == {"sgd", "adagrad", "rmsprop", "adam", "adamw", "nadam", "radam", "adabelief", "lion"}


def stacked_equals_slices(update, hyper: dict, flags: dict) -> bool:
    """Does ``update`` on two stacked configurations do what it does on each slice alone?"""
    generator = torch.Generator().manual_seed(0)
    params = torch.randn(2, 3, 4, generator=generator, dtype=torch.float64)
    grads = torch.randn(3, 2, 3, 4, generator=generator, dtype=torch.float64)
    values = {name: [value, 0.9 * value] for name, value in hyper.items()}  # a second configuration
    stacked_hyper = {name: torch.tensor(pair, dtype=torch.float64).view(2, 1, 1) for name, pair in values.items()}
    stacked, state = params.clone(), {}
    slices, slice_states = [params[i].clone() for i in range(2)], [{}, {}]
    for grad in grads:
        update(stacked, grad, state, **stacked_hyper, **flags)
        for i in range(2):
            update(slices[i], grad[i], slice_states[i], **{name: pair[i] for name, pair in values.items()}, **flags)
    return torch.allclose(stacked, torch.stack(slices), rtol=1e-10, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", sorted(sweepable_optimizers()))
def test_every_sweepable_update_treats_configurations_independently(name: str) -> None:
    """What ``sweepable`` promises: the update on stacked configurations equals the update on each alone."""
    cls = sweepable_optimizers()[name]
    defaults = cls.hyperparameters(dldna.optim.default_hyperparameters(cls))
    hyper = {key: (0.01 if key == "lr" else value) for key, value in defaults.items() if not isinstance(value, bool)}
    flags = {key: value for key, value in defaults.items() if isinstance(value, bool)}
    assert stacked_equals_slices(cls.update, hyper, flags)


def test_the_independence_check_catches_an_update_that_mixes_configurations() -> None:
    def mixing_update(param, grad, state, *, lr) -> None:
        param.sub_(lr * grad / grad.norm())

    assert not stacked_equals_slices(mixing_update, {"lr": 0.1}, {})
    assert not stacked_equals_slices(dldna.optim.LAMB.update, {"lr": 0.01}, {})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "newton"}, "optimizer"),
        ({"configs": []}, "configs"),
        ({"configs": [{"momentum": 0.9}]}, "lr"),
        ({"configs": [{"lr": 0.1, "betas": 0.9}]}, "betas"),
        ({"configs": [{"lr": -1.0}]}, "lr"),
        ({"configs": [{"lr": 0.1, "batch_size": 0}]}, "batch_size"),
        ({"configs": [{"lr": 0.1, "nesterov": 1}]}, "nesterov"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, message: str) -> None:
    arguments = {"optimizer": "sgd", "configs": [{"lr": 0.1}], **kwargs}
    with pytest.raises(ValueError, match=message):
        sweep(relu_mlp(), blobs64(), arguments.pop("optimizer"), arguments.pop("configs"), **arguments)


def test_grid_lists_every_combination() -> None:
    assert grid(lr=[1, 2], momentum=[0.0, 0.5, 0.9]) == [
        {"lr": lr, "momentum": m} for lr in (1, 2) for m in (0.0, 0.5, 0.9)
    ]
    with pytest.raises(ValueError, match="lr"):
        grid(lr=[])


def fake_run(lr: float, beta1: float, batch_size: int, steps: int = 500, diverge_at: int | None = None) -> History:
    """A History with a known loss curve, for testing figures without training."""
    loss = list(np.exp(-lr * np.arange(steps)) + beta1)
    history = History(config={"optimizer": "Adam", "hyperparameters": {"lr": lr, "betas": (beta1, 0.999)}, "batch_size": batch_size}, steps_per_epoch=100)
    history.steps["loss"] = loss[: diverge_at + 1] if diverge_at is not None else loss
    if diverge_at is not None:
        history.steps["loss"][-1] = float("nan")
        history.status, history.diverged_at = "diverged", diverge_at
    epochs = len(history.steps["loss"]) // 100
    history.epochs["test_acc"] = [0.5 + 0.01 * e + lr for e in range(epochs)]
    return history


def test_sweep_slider_restyles_the_curves_of_each_setting() -> None:
    from dldna.viz.sweep import html_size, sweep_slider
    from dldna.viz.training import smooth

    runs = [fake_run(lr, b1, bs, diverge_at=120 if lr == 0.3 and b1 == 0.9 else None) for lr in (0.01, 0.1, 0.3) for b1 in (0.0, 0.9) for bs in (64, 128)]
    figure = sweep_slider(runs, "lr", "beta1", "batch_size", max_points=50)
    (slider,) = figure.layout.sliders
    assert [step.label for step in slider.steps] == ["0.01", "0.1", "0.3"]
    assert len(figure.data) == 2 * 2 * 2  # (batch size, beta1) pairs x (loss, accuracy)
    assert all(len(trace.x) <= 50 for trace in figure.data)
    step = slider.steps[2].args[0]
    pair = 1  # batch size 64, beta1 0.9: traces 2 (loss) and 3 (accuracy)
    run = next(r for r in runs if r.config["hyperparameters"]["lr"] == 0.3 and r.config["hyperparameters"]["betas"][0] == 0.9 and r.config["batch_size"] == 64)
    keep = np.rint(np.asarray(figure.data[2 * pair].x) * 100 - 1).astype(int)
    expected = smooth(run.steps["loss"][:120], 10)
    assert step["y"][2 * pair][: np.sum(keep < 120)] == pytest.approx(list(expected[keep[keep < 120]]))
    assert all(v is None for v in step["y"][2 * pair][np.sum(keep < 120) :])
    assert step["name"][2 * pair] == "beta1=0.9 (diverged at step 120)"
    assert step["y"][2 * pair + 1][0] == pytest.approx(100 * run.epochs["test_acc"][0])
    (menu,) = figure.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["batch_size=64", "batch_size=128"]
    assert menu.buttons[1].args[0]["visible"] == [False] * 4 + [True] * 4
    assert [t.visible for t in figure.data] == [True] * 4 + [False] * 4
    assert 1000 < html_size(figure) < 200_000
    with pytest.raises(ValueError, match="share"):
        sweep_slider(runs, "lr", "beta1")


def test_sweep_refuses_bad_input_in_one_sentence() -> None:
    data = blobs64()
    with pytest.raises(ValueError, match=r"Invalid learning rate: lr=nan \(must be a finite number >= 0"):
        sweep(relu_mlp(), data, "adam", [{"lr": 1e-3}, {"lr": float("nan")}])
    with pytest.raises(TypeError, match=r"epochs must be a whole number >= 1, got 1.5: pass an int such as epochs=2"):
        sweep(relu_mlp(), data, "sgd", [{"lr": 0.1}], epochs=1.5)
    three_classes = nn.Sequential(nn.Linear(2, 3)).double()
    with pytest.raises(ValueError, match=r"model gives 3 scores per sample but the labels go up to 3"):
        sweep(three_classes, data, "sgd", [{"lr": 0.1}])
