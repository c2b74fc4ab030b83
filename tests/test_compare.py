"""Optimizers side by side: the learning-rate search and runs of dldna.train.compare, the flatness probe
(dldna.landscape.random_direction_losses) and the comparison figure (dldna.viz.compare) on those runs."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.landscape import random_direction_losses
from dldna.train import fit
from dldna.train.compare import LRSearch, compare_optimizers, train_run, tune_lr
from dldna.viz.compare import plotly_comparison


def blobs(seed: int = 0) -> Dataset:
    """Four Gaussian blobs in 2-D with train, validation and test splits."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 4
        return centres[labels] + 0.7 * torch.randn(n, 2, generator=generator), labels

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = sample(256), sample(128), sample(128)
    return Dataset("blobs", x_train, y_train, x_test, y_test, ("a", "b", "c", "d"), (0.0,), (1.0,), x_val, y_val)


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))


def test_tune_lr_scores_on_validation_and_marks_divergence() -> None:
    data = blobs()
    search = tune_lr(data, small_model, torch.optim.SGD, [1e-4, 0.3, 1e36], epochs=2, batch_size=32)
    assert search.val_loss[2] == math.inf and math.isnan(search.val_acc[2])
    assert search.best_lr == 0.3 and search.best_index == 1
    dldna.set_seed(0)
    model = small_model()
    reference = fit(model, torch.optim.SGD(model.parameters(), lr=0.3), data, epochs=2, batch_size=32, eval_split="val")
    assert search.val_loss[1] == pytest.approx(reference.epochs["test_loss"][-1], rel=1e-6)
    assert search.val_acc[1] == pytest.approx(reference.epochs["test_acc"][-1])


def test_lr_search_best_lr_is_lowest_loss() -> None:
    search = LRSearch((0.1, 0.01, 0.001), (0.5, 0.2, math.inf), (0.8, 0.9, math.nan))
    assert search.best_lr == 0.01


def test_tune_lr_rejects_bad_input() -> None:
    data = blobs()
    with pytest.raises(ValueError, match="lrs"):
        tune_lr(data, small_model, torch.optim.SGD, [])
    with pytest.raises(ValueError, match="lrs"):
        tune_lr(data, small_model, torch.optim.SGD, [-0.1])
    no_val = Dataset("blobs", data.x_train, data.y_train, data.x_test, data.y_test, data.classes, (0.0,), (1.0,))
    with pytest.raises(ValueError, match="val_size"):
        tune_lr(no_val, small_model, torch.optim.SGD, [0.1])


def test_compare_optimizers_starts_every_run_from_the_same_weights() -> None:
    data = blobs()
    seen_first_layers: list[torch.Tensor] = []

    def record_initial(model: nn.Module, optimizer: torch.optim.Optimizer) -> list:
        seen_first_layers.append(model[0].weight.detach().clone())
        return []

    runs = compare_optimizers(
        data,
        small_model,
        {"sgd": functools.partial(torch.optim.SGD, lr=0.1), "same sgd": functools.partial(torch.optim.SGD, lr=0.1),
         "adam": functools.partial(torch.optim.Adam, lr=0.01)},
        epochs=2,
        batch_size=64,
        callbacks={"sgd": record_initial, "adam": record_initial},
    )
    assert list(runs) == ["sgd", "same sgd", "adam"]
    assert runs["sgd"].steps["loss"] == runs["same sgd"].steps["loss"]
    assert runs["sgd"].steps["loss"] != runs["adam"].steps["loss"]
    assert runs["adam"].config["optimizer"] == "Adam" and len(runs["adam"].epochs["test_acc"]) == 2
    assert len(seen_first_layers) == 2 and torch.equal(seen_first_layers[0], seen_first_layers[1])
    with pytest.raises(ValueError, match="callbacks"):
        compare_optimizers(data, small_model, {"sgd": torch.optim.SGD}, callbacks={"lion": record_initial})
    with pytest.raises(ValueError, match="optimizers"):
        compare_optimizers(data, small_model, {})


def test_random_direction_losses_are_centred_on_the_model_and_leave_it_unchanged() -> None:
    data = blobs()
    dldna.set_seed(0)
    model = small_model()
    fit(model, torch.optim.SGD(model.parameters(), lr=0.3), data, epochs=3, batch_size=32, progress=False)
    before = [p.detach().clone() for p in model.parameters()]
    alphas = np.linspace(-1, 1, 5)
    losses = random_direction_losses(model, data.x_test, data.y_test, alphas, directions=2)
    assert losses.shape == (2, 5)
    own = torch.nn.functional.cross_entropy(model(data.x_test), data.y_test).item()
    np.testing.assert_allclose(losses[:, 2], own, rtol=1e-5)
    assert np.all(losses[:, [0, 4]] > losses[:, [2]])
    assert not np.allclose(losses[0], losses[1])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="directions"):
        random_direction_losses(model, data.x_test, data.y_test, alphas, directions=0)


def test_train_run_returns_the_trained_model_and_optimizer_state() -> None:
    data = blobs()
    model, optimizer, history = train_run(data, small_model, functools.partial(torch.optim.Adam, lr=0.01), epochs=2, batch_size=64, seed=1)
    dldna.set_seed(1)
    reference = small_model()
    reference_history = fit(reference, torch.optim.Adam(reference.parameters(), lr=0.01), data, epochs=2, batch_size=64, seed=1)
    assert history.steps["loss"] == reference_history.steps["loss"]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters()))
    assert int(optimizer.state[next(model.parameters())]["step"]) == history.num_steps == 8


def test_plotly_comparison_has_one_slider_step_per_run_highlighting_it() -> None:
    data = blobs()
    runs = compare_optimizers(
        data, small_model, {"sgd": functools.partial(torch.optim.SGD, lr=0.1), "adam": functools.partial(torch.optim.Adam, lr=0.01)},
        epochs=1, batch_size=64,
    )
    fig = plotly_comparison(runs, {"adam": "lr 0.01"})
    steps = fig.layout.sliders[0].steps
    assert [step.label for step in steps] == ["sgd", "adam"] and len(fig.data) == 2
    assert steps[1].args[0]["opacity"] == [0.2, 1.0] and steps[1].args[1]["title.text"] == "adam: lr 0.01"
    assert fig.data[0].opacity == 1.0 and fig.data[1].opacity == 0.2
    assert fig.data[0].y[0] == pytest.approx(runs["sgd"].steps["loss"][0])  # smoothing starts at the first loss
    with pytest.raises(ValueError, match="runs"):
        plotly_comparison({})
