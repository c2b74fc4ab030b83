"""dldna.widgets driven without a frontend: runs follow the latest setting, cancelled runs never draw, and
repeated re-runs leave no threads or models behind."""

from __future__ import annotations

import gc
import json
import threading
import time
import weakref

import numpy as np
import pytest
import torch
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.landscape.toy import run_optimizer, toy_surfaces
from dldna.optim import SGD, Adam
from dldna.widgets import Playground, TrainerPanel


def blobs(n_train: int = 512, n_test: int = 128, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.arange(n) % 4
        return centres[labels] + 0.8 * torch.randn(n, 2, generator=generator), labels

    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return Dataset("blobs", x_train, y_train, x_test, y_test, ("a", "b", "c", "d"), (0.0,), (1.0,))


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 4))


class DrawSpy:
    """Wraps a panel's ``_draw`` and records, per call, the run's generation, status, and whether it drew."""

    def __init__(self, panel: TrainerPanel) -> None:
        self.panel, self.original, self.calls = panel, panel._draw, []
        self.lock = threading.Lock()
        panel._draw = self

    def __call__(self, generation, settings, history, final=False) -> None:
        with self.lock:
            self.panel.drawn_generation = None
            self.original(generation, settings, history, final)
            self.calls.append((generation, history.status, final, self.panel.drawn_generation == generation, settings))


def test_panel_draws_the_run_of_the_current_setting() -> None:
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=3, batch_size=32, debounce_s=0, device="cpu", start=False)
    spy = DrawSpy(panel)
    panel.controls.lr.value = 0.1
    history = panel.wait()
    assert history is not None and history.status == "completed"
    assert history.config["optimizer"] == "SGD" and history.config["hyperparameters"]["lr"] == pytest.approx(0.1)
    assert history.config["batch_size"] == 32 and len(history.epochs["test_acc"]) == 3
    assert panel.drawn_generation == panel.generation
    np.testing.assert_allclose(panel.figure.data[1].y, 100 * np.asarray(history.epochs["test_acc"]))
    assert len(panel.figure.data[0].y) == history.num_steps
    assert "done: epoch 3/3" in panel.status.value and "cpu" in panel.status.value
    assert "lr=1.0e-01" in panel.figure.layout.title.text
    assert [c[0] for c in spy.calls] == [panel.generation] * 4 and all(c[3] for c in spy.calls)
    # The same setting trained directly gives the same curve: the panel adds nothing to the run.
    dldna.set_seed(0)
    model = tiny_model()
    direct = dldna.train.fit(model, SGD(model.parameters(), lr=0.1), panel.data, epochs=3, batch_size=32, progress=False)
    assert direct.steps["loss"] == history.steps["loss"]
    json.dumps(panel.widget.get_state(), default=str)


def test_a_new_setting_cancels_the_running_run_and_its_curve_is_never_drawn() -> None:
    panel = TrainerPanel(blobs(n_train=4096), tiny_model, optimizer="Adam", epochs=20, batch_size=16, debounce_s=0, device="cpu")
    spy = DrawSpy(panel)
    first = panel.generation
    deadline = time.monotonic() + 60
    while not spy.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spy.calls and spy.calls[0][0] == first and spy.calls[0][3], "the first run drew no epoch"
    panel.epochs.value = 2
    panel.controls.lr.value = 0.01
    history = panel.wait()
    assert history.status == "completed" and history.config["epochs"] == 2
    assert history.config["hyperparameters"]["lr"] == pytest.approx(0.01)
    first_calls = [c for c in spy.calls if c[0] == first]
    final_first = [c for c in first_calls if c[2]]
    assert final_first and final_first[0][1] == "stopped" and not final_first[0][3], "the cancelled run drew its final curve"
    assert len(first_calls) - 1 < 20, "the first run was not stopped early"
    # The epochs change started a run of its own (no debounce here); the lr change stopped it in turn.
    for generation in {c[0] for c in spy.calls} - {panel.generation}:
        (final,) = [c for c in spy.calls if c[0] == generation and c[2]]
        assert final[1] == "stopped" and not final[3]
    assert panel.drawn_generation == panel.generation
    np.testing.assert_allclose(panel.figure.data[1].y, 100 * np.asarray(history.epochs["test_acc"]))


def test_debounce_starts_one_run_for_a_burst_of_slider_moves() -> None:
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=1, debounce_s=0.3, device="cpu", start=False)
    spy = DrawSpy(panel)
    for lr in (0.01, 0.02, 0.05, 0.2):
        panel.controls.lr.value = lr
    history = panel.wait()
    assert history is not None and history.config["hyperparameters"]["lr"] == pytest.approx(0.2)
    assert {c[0] for c in spy.calls} == {panel.generation}


def test_changing_the_optimizer_shows_its_defaults_and_starts_one_run() -> None:
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", start=False)
    spy = DrawSpy(panel)
    panel.optimizer.value = "Adam"
    history = panel.wait()
    assert panel.controls.lr.value == pytest.approx(1e-3) and not panel.controls.beta1.disabled
    assert panel.controls.momentum.disabled
    assert history.config["optimizer"] == "Adam" and history.config["hyperparameters"]["betas"] == (0.9, 0.999)
    assert len({c[0] for c in spy.calls}) == 1
    panel.optimizer.value = "RMSprop"
    panel.wait()
    assert panel.controls.beta2.description == "α" and panel.history.config["hyperparameters"]["alpha"] == pytest.approx(0.99)


def test_a_diverging_setting_is_reported_not_raised() -> None:
    panel = TrainerPanel(blobs(), lambda: nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4)),
                         optimizer="SGD", epochs=3, debounce_s=0, device="cpu", start=False)
    panel.controls.momentum.value = 0.99
    panel.controls.lr.value = 10.0
    history = panel.wait()
    assert history.diverged and f"diverged at step {history.diverged_at}" in panel.status.value


def test_twenty_reruns_leave_no_threads_or_models_behind() -> None:
    models: list[weakref.ref] = []

    def tracked_model() -> nn.Module:
        model = tiny_model()
        models.append(weakref.ref(model))
        return model

    threads_before = threading.active_count()
    panel = TrainerPanel(blobs(n_train=256), tracked_model, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", start=False)
    for i in range(20):
        panel.controls.lr.value = 0.01 * (i + 1)
        if i % 2:
            panel.wait()
    panel.wait()
    gc.collect()
    assert threading.active_count() == threads_before
    assert sum(ref() is not None for ref in models) == 0
    assert panel.history.config["hyperparameters"]["lr"] == pytest.approx(0.2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_memory_stays_flat_over_reruns() -> None:
    panel = TrainerPanel(blobs(), tiny_model, optimizer="Adam", epochs=1, debounce_s=0, device="cuda", start=False)
    allocated = []
    for i in range(100):
        panel.controls.lr.value = 10 ** (-4 + i / 50)
        panel.wait()
        gc.collect()
        allocated.append(torch.cuda.memory_allocated())
    assert panel.generation == 100, "every setting started a run"
    assert max(allocated[2:]) - allocated[1] < 2**20, allocated


def test_playground_draws_the_path_of_the_current_setting() -> None:
    playground = Playground(surface="ravine", optimizer="SGD", steps=50, lr=0.05)
    surface = toy_surfaces()["ravine"]
    playground.controls.momentum.value = 0.5
    playground.controls.lr.value = 0.1
    expected = run_optimizer(surface, SGD, steps=50, lr=0.1, momentum=0.5, weight_decay=0.0)
    np.testing.assert_allclose(playground.figure.data[1].x, expected.points[:, 0])
    np.testing.assert_allclose(playground.figure.data[1].y, expected.points[:, 1])
    assert playground.status.value == playground.trajectory.summary() and "after 50 steps" in playground.status.value
    playground.controls.lr.value = 0.5
    assert playground.trajectory.diverged and "diverged at step" in playground.status.value


def test_playground_follows_surface_and_optimizer_changes() -> None:
    playground = Playground(steps=30)
    playground.surface.value = "rosenbrock"
    rosenbrock = toy_surfaces()["rosenbrock"]
    assert list(playground.figure.data[2].x) == [rosenbrock.start[0]]
    assert tuple(playground.figure.layout.xaxis.range) == tuple(rosenbrock.box[:2])
    playground.optimizer.value = "Adam"
    playground.controls.lr.value = 0.05
    expected = run_optimizer(rosenbrock, Adam, steps=30, lr=0.05, betas=(0.9, 0.999), weight_decay=0.0)
    np.testing.assert_allclose(playground.trajectory.points, expected.points)
    with pytest.raises(ValueError, match="surface"):
        Playground(surface="no such surface")


def test_bad_settings_are_refused_and_a_failing_run_says_why() -> None:
    for options, argument in (
        (dict(optimizer="Adamax"), "optimizer"),
        (dict(batch_size=100), "batch_size"),
        (dict(epochs=0), "epochs"),
        (dict(debounce_s=-1.0), "debounce_s"),
    ):
        with pytest.raises(ValueError, match=argument):
            TrainerPanel(blobs(), tiny_model, device="cpu", start=False, **options)
    wrong_input = lambda: nn.Sequential(nn.Linear(3, 4))  # blobs have two features
    panel = TrainerPanel(blobs(), wrong_input, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", start=False)
    panel.controls.lr.value = 0.05
    panel.wait()
    assert "could not train" in panel.status.value and panel.history is None


def test_close_stops_the_run_in_progress() -> None:
    panel = TrainerPanel(blobs(n_train=16384), tiny_model, optimizer="SGD", epochs=20, batch_size=16, debounce_s=0, device="cpu", start=False)
    panel.controls.lr.value = 0.05
    time.sleep(0.2)
    started = time.monotonic()
    panel.close()
    assert time.monotonic() - started < 5
    assert panel._thread is not None and not panel._thread.is_alive()
