"""dldna.widgets driven without a frontend: runs follow the latest setting, cancelled runs never draw,
repeated re-runs leave no threads or models behind, the panel is sized by the budget, and in Colab (faked
here) both widgets draw PNG images of the same content that plotly draws elsewhere."""

from __future__ import annotations

import base64
import gc
import io
import json
import sys
import threading
import time
import types
import weakref

import ipywidgets as widgets
import matplotlib
import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

import dldna
from dldna.data import Dataset
from dldna.models import MLP
from dldna.optim import SGD, Adam
from dldna.toy import run_optimizer, toy_surfaces
from dldna.widgets import Playground, TrainerPanel
from dldna.widgets.figure_content import ContourMap, FigureContent, Line, Panel, to_matplotlib, to_plotly
from dldna.widgets.controls import HyperparameterControls
from dldna.widgets.trainer import CPU_SIZE, FULL_SIZE, panel_size

CPU_BUDGET = dldna.Budget("cpu", torch.device("cpu"))
FULL_BUDGET_ON_CPU = dldna.Budget("full", torch.device("cpu"))


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
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=3, batch_size=32, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    spy = DrawSpy(panel)
    panel.controls.lr.value = 0.1
    history = panel.wait()
    assert history is not None and history.status == "completed"
    assert history.config["optimizer"] == "SGD" and history.config["hyperparameters"]["lr"] == pytest.approx(0.1)
    assert history.config["batch_size"] == 32 and len(history.epochs["test_acc"]) == 3
    assert panel.drawn_generation == panel.generation
    loss_panel, accuracy_panel = panel.content.panels
    np.testing.assert_allclose(accuracy_panel.traces[0].y, 100 * np.asarray(history.epochs["test_acc"]))
    assert len(loss_panel.traces[0].y) == history.num_steps and loss_panel.log_y
    assert not panel.live.image and panel.live.png is None
    np.testing.assert_allclose(panel.live.figure.data[1].y, accuracy_panel.traces[0].y)
    assert "done: epoch 3/3" in panel.status.value and "cpu" in panel.status.value
    assert "lr=1.0e-01" in panel.content.title and panel.live.figure.layout.title.text == panel.content.title
    assert [c[0] for c in spy.calls] == [panel.generation] * 4 and all(c[3] for c in spy.calls)
    # The same setting trained directly gives the same curve: the panel adds nothing to the run.
    dldna.set_seed(0)
    model = tiny_model()
    direct = dldna.train.fit(model, SGD(model.parameters(), lr=0.1), panel.data, epochs=3, batch_size=32, progress=False)
    assert direct.steps["loss"] == history.steps["loss"]
    json.dumps(panel.widget.get_state(), default=str)


def test_a_new_setting_cancels_the_running_run_and_its_curve_is_never_drawn() -> None:
    panel = TrainerPanel(blobs(n_train=4096), tiny_model, optimizer="Adam", epochs=20, batch_size=16, debounce_s=0, device="cpu", budget=CPU_BUDGET)
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
    np.testing.assert_allclose(panel.content.panels[1].traces[0].y, 100 * np.asarray(history.epochs["test_acc"]))


def test_debounce_starts_one_run_for_a_burst_of_slider_moves() -> None:
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=1, debounce_s=0.3, device="cpu", budget=CPU_BUDGET, start=False)
    spy = DrawSpy(panel)
    for lr in (0.01, 0.02, 0.05, 0.2):
        panel.controls.lr.value = lr
    history = panel.wait()
    assert history is not None and history.config["hyperparameters"]["lr"] == pytest.approx(0.2)
    assert {c[0] for c in spy.calls} == {panel.generation}


def test_changing_the_optimizer_shows_its_defaults_and_starts_one_run() -> None:
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
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
                         optimizer="SGD", epochs=3, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    panel.controls.momentum.value = 0.99
    panel.controls.lr.value = 10.0
    history = panel.wait()
    assert history.diverged and f"diverged at step {history.diverged_at}" in panel.status.value


def test_a_run_that_learns_nothing_says_so() -> None:
    def dead_relus() -> nn.Module:
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))
        nn.init.constant_(model[0].bias, -100.0)  # no unit ever activates: the output is the last bias alone
        nn.init.zeros_(model[2].bias)
        return model

    panel = TrainerPanel(blobs(), dead_relus, optimizer="SGD", epochs=2, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    panel.controls.lr.value = 0.1
    history = panel.wait()
    assert history.status == "learned nothing"
    assert "<b>learned nothing (25.0% test accuracy, loss at ln 4)</b> after 2 epochs" in panel.status.value


def test_twenty_reruns_leave_no_threads_or_models_behind() -> None:
    models: list[weakref.ref] = []

    def tracked_model() -> nn.Module:
        model = tiny_model()
        models.append(weakref.ref(model))
        return model

    threads_before = threading.active_count()
    panel = TrainerPanel(blobs(n_train=256), tracked_model, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
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
    path = playground.content.panels[0].traces[1]
    np.testing.assert_allclose(path.x, expected.points[:, 0])
    np.testing.assert_allclose(path.y, expected.points[:, 1])
    np.testing.assert_allclose(playground.live.figure.data[1].x, expected.points[:, 0])
    assert playground.status.value == playground.trajectory.summary() and "after 50 steps" in playground.status.value
    playground.controls.lr.value = 0.5
    assert playground.trajectory.diverged and "diverged at step" in playground.status.value


def test_playground_follows_surface_and_optimizer_changes() -> None:
    playground = Playground(steps=30)
    playground.surface.value = "rosenbrock"
    rosenbrock = toy_surfaces()["rosenbrock"]
    (panel,) = playground.content.panels
    assert list(panel.traces[2].x) == [rosenbrock.start[0]] and panel.x_range == tuple(rosenbrock.box[:2])
    assert tuple(playground.live.figure.layout.xaxis.range) == tuple(rosenbrock.box[:2])
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
        (dict(debounce_s=float("nan")), "debounce_s must be a finite number of seconds >= 0, got nan"),
        (dict(epochs=25), "epochs=25 is outside its slider's range: pass a value between 1 and 20"),
        (dict(budget="huge"), "budget"),
    ):
        with pytest.raises(ValueError, match=argument):
            TrainerPanel(blobs(), tiny_model, device="cpu", **{"budget": CPU_BUDGET, "start": False, **options})
    with pytest.raises(TypeError, match="budget"):
        TrainerPanel(blobs(), tiny_model, budget=torch.device("cpu"), start=False)
    with pytest.raises(TypeError, match="epochs must be a whole number >= 1, got 2.5: pass an int such as epochs=2"):
        TrainerPanel(blobs(), tiny_model, device="cpu", budget=CPU_BUDGET, epochs=2.5, start=False)
    assert TrainerPanel(blobs(), tiny_model, device="cpu", budget="full", start=False).size == FULL_SIZE
    wrong_input = lambda: nn.Sequential(nn.Linear(3, 4))  # blobs have two features
    panel = TrainerPanel(blobs(), wrong_input, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    panel.controls.lr.value = 0.05
    with pytest.raises(ValueError, match=r"model cannot take this data's inputs, of shape \(2,\) per sample"):
        panel.wait()
    assert "could not train" in panel.status.value and "make its first layer take that shape" in panel.status.value
    assert panel.history is None


@pytest.mark.parametrize("background", [True, False])
def test_an_error_in_the_run_shows_in_the_status_and_wait_raises_it(monkeypatch: pytest.MonkeyPatch, background: bool) -> None:
    """Before, an exception in the training thread vanished: the status said "training ..." forever and wait()
    returned None. The same holds for a run trained in the slider's handler (Colab)."""
    three_classes = lambda: nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 3))  # blobs have four classes
    panel = TrainerPanel(blobs(), three_classes, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    panel.background = background
    panel.controls.lr.value = 0.05
    with pytest.raises(ValueError, match=r"model gives 3 scores per sample but the labels go up to 3: make its last layer output 4 values"):
        panel.wait()
    assert "could not train SGD(" in panel.status.value and "make its last layer output 4 values" in panel.status.value

    def broken_model() -> nn.Module:
        raise KeyError("no such layer")

    panel = TrainerPanel(blobs(), broken_model, optimizer="SGD", epochs=1, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    panel.background = background
    panel.controls.lr.value = 0.05
    with pytest.raises(KeyError, match="no such layer"):
        panel.wait()
    assert "could not train" in panel.status.value and "no such layer" in panel.status.value
    panel.model_fn = tiny_model
    panel.controls.lr.value = 0.1
    assert panel.wait().status == "completed", "a later setting that trains is not haunted by the old error"


def test_playground_and_sliders_refuse_values_instead_of_clamping_them() -> None:
    """Before, lr=0, -1 and 100 were clamped to the slider's ends without a word and nan was accepted."""
    for lr in (0.0, -1.0, 100.0):
        with pytest.raises(ValueError, match=rf"lr={lr!r} is outside its slider's range: pass a value between 0.0001 and 10"):
            Playground(lr=lr)
    with pytest.raises(ValueError, match="lr must be a finite number between 0.0001 and 10, got nan"):
        Playground(lr=float("nan"))
    with pytest.raises(ValueError, match="steps=5000 is outside its slider's range: pass a value between 1 and 2000"):
        Playground(steps=5000)
    with pytest.raises(TypeError, match="steps must be a whole number >= 1, got 50.5: pass an int such as steps=50"):
        Playground(steps=50.5)
    for lr_range in ((1e-5, float("inf")), (float("nan"), 1.0)):
        with pytest.raises(ValueError, match=r"lr_range must be two finite numbers \(low, high\), got .*: pass e.g. lr_range=\(1e-5, 10.0\)"):
            HyperparameterControls(lr_range)
    with pytest.raises(ValueError, match="lr_range must satisfy 0 < low < high"):
        HyperparameterControls((1.0, 0.1))


def test_close_stops_the_run_in_progress() -> None:
    panel = TrainerPanel(blobs(n_train=16384), tiny_model, optimizer="SGD", epochs=20, batch_size=16, debounce_s=0, device="cpu", budget=CPU_BUDGET, start=False)
    panel.controls.lr.value = 0.05
    time.sleep(0.2)
    started = time.monotonic()
    panel.close()
    assert time.monotonic() - started < 5
    assert panel._thread is not None and not panel._thread.is_alive()


# --- The same content drawn by plotly and by matplotlib ---------------------------------------------------


def test_plotly_and_matplotlib_draw_the_same_content() -> None:
    grid = np.linspace(-1.0, 1.0, 5)
    content = FigureContent(
        panels=(
            Panel("Loss", "step", "loss", (Line([1, 2, 3], [3.0, 2.0, 1.5]),), log_y=True),
            Panel(
                "Surface", "w₁", "w₂",
                (ContourMap(grid, grid, np.add.outer(grid**2, grid**2), "loss"), Line([0.5], [-0.5], mode="markers", color="red", marker="x")),
                x_range=(-1.0, 1.0), y_range=(-1.0, 1.0),
            ),
        ),
        title="two panels",
    )
    plotly_figure = to_plotly(content)
    assert plotly_figure.layout.title.text == "two panels"
    assert [a.text for a in plotly_figure.layout.annotations] == ["Loss", "Surface"]
    assert plotly_figure.layout.yaxis.type == "log" and plotly_figure.layout.yaxis2.type == "linear"
    assert plotly_figure.layout.xaxis.title.text == "step" and plotly_figure.layout.yaxis2.title.text == "w₂"
    assert tuple(plotly_figure.layout.xaxis2.range) == (-1.0, 1.0)
    np.testing.assert_allclose(plotly_figure.data[0].y, [3.0, 2.0, 1.5])
    np.testing.assert_allclose(plotly_figure.data[1].z, content.panels[1].traces[0].z)
    assert plotly_figure.data[2].mode == "markers" and plotly_figure.data[2].marker.symbol == "x"

    figure = to_matplotlib(content)
    loss_ax, surface_ax = (ax for ax in figure.axes if ax.get_label() != "<colorbar>")
    assert figure.get_suptitle() == "two panels" and [loss_ax.get_title(), surface_ax.get_title()] == ["Loss", "Surface"]
    assert loss_ax.get_yscale() == "log" and surface_ax.get_yscale() == "linear"
    assert (loss_ax.get_xlabel(), surface_ax.get_ylabel()) == ("step", "w₂")
    assert surface_ax.get_xlim() == (-1.0, 1.0)
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), [3.0, 2.0, 1.5])
    (marker,) = surface_ax.lines
    assert marker.get_linestyle() == "None" and marker.get_marker() == "x" and marker.get_color() == "red"
    assert len(surface_ax.collections) == 1 and any(ax.get_label() == "<colorbar>" for ax in figure.axes)
    assert not plt.get_fignums(), "the PNG figure must not be registered with pyplot"
    with pytest.raises(ValueError, match="mode"):
        Line([1], [1], mode="bars")


# --- Colab: PNG images and runs in the kernel's handler ---------------------------------------------------


@pytest.fixture
def colab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the widgets believe they run in Google Colab."""
    if "google" not in sys.modules:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))


def descendants(widget: widgets.Widget) -> list[widgets.Widget]:
    children = getattr(widget, "children", ())
    return [widget, *(w for child in children for w in descendants(child))]


def shown_png(view: widgets.Output) -> bytes:
    """The PNG an image-mode figure's Output shows (it shows nothing else)."""
    (output,) = view.outputs
    assert set(output["data"]) == {"image/png", "text/plain"}, "the Output may hold only the image"
    return base64.b64decode(output["data"]["image/png"])


def pixels(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def assert_core_widgets_only(root: widgets.Widget) -> None:
    tree = descendants(root)
    assert not any(isinstance(w, go.FigureWidget) for w in tree)
    assert all(type(w).__module__.startswith("ipywidgets.") for w in tree), {type(w) for w in tree}


def test_in_colab_the_panel_draws_a_png_each_epoch_and_trains_in_the_handler(colab) -> None:
    backend = matplotlib.get_backend()
    threads_before = threading.active_count()
    panel = TrainerPanel(blobs(), tiny_model, optimizer="SGD", epochs=3, batch_size=32, debounce_s=0.3, device="cpu", budget=CPU_BUDGET, start=False)
    assert panel.live.image and not panel.background
    assert all(not control.continuous_update for control in (*panel.controls.sliders, panel.batch_size, panel.epochs))
    assert_core_widgets_only(panel.widget)
    drawn = []
    show = panel.live.show

    def record(content) -> None:
        show(content)
        drawn.append((len(content.panels[1].traces[0].y), shown_png(panel.live.view)))

    panel.live.show = record
    panel.controls.lr.value = 0.1  # in Colab the slider's handler trains the run to its end
    history = panel.history
    assert history is not None and history.status == "completed" and len(history.epochs["test_acc"]) == 3
    assert threading.active_count() == threads_before, "no thread or timer in Colab"
    assert panel.wait() is history and "done: epoch 3/3" in panel.status.value
    assert [epochs for epochs, _ in drawn] == [1, 2, 3], "one image per epoch, none repeated at the end"
    first, last = pixels(drawn[0][1]), pixels(drawn[-1][1])
    assert first.shape == last.shape == (2 * 330, 2 * 900, 4)
    assert not np.array_equal(first, last), "the image must change across epochs"
    assert drawn[-1][1] == panel.live.png
    np.testing.assert_allclose(panel.content.panels[1].traces[0].y, 100 * np.asarray(history.epochs["test_acc"]))
    assert matplotlib.get_backend() == backend and not plt.get_fignums()
    assert_core_widgets_only(panel.widget)


def test_in_colab_the_playground_redraws_its_png_when_a_slider_moves(colab) -> None:
    playground = Playground(surface="ravine", optimizer="SGD", steps=50, lr=0.05)
    assert playground.live.image and not playground.controls.lr.continuous_update
    assert_core_widgets_only(playground.widget)
    before = shown_png(playground.live.view)
    playground.controls.lr.value = 0.01
    after = shown_png(playground.live.view)
    assert pixels(before).shape == pixels(after).shape == (2 * 430, 2 * 560, 4)
    assert not np.array_equal(pixels(before), pixels(after))
    expected = run_optimizer(toy_surfaces()["ravine"], SGD, steps=50, lr=0.01, momentum=0.0, weight_decay=0.0)
    np.testing.assert_allclose(playground.content.panels[0].traces[1].x, expected.points[:, 0])
    assert "lr=1.0e-02" in playground.content.title


def test_display_live_leaves_the_website_note_out_only_in_colab(monkeypatch: pytest.MonkeyPatch, colab) -> None:
    import IPython.display

    from dldna.viz import display_live

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda bundle, raw: shown.append(bundle))
    display_live(widgets.IntSlider(), "A slider.")
    monkeypatch.delitem(sys.modules, "google.colab")
    display_live(widgets.IntSlider(), "A slider.")
    colab_bundle, jupyter_bundle = shown
    assert "application/vnd.jupyter.widget-view+json" in colab_bundle and "text/html" not in colab_bundle
    assert "dldna-live-note" in jupyter_bundle["text/html"] and "A slider." in jupyter_bundle["text/html"]


# --- Sizing by budget -------------------------------------------------------------------------------------


def test_the_budget_sizes_the_panel() -> None:
    assert panel_size(CPU_BUDGET) == CPU_SIZE and panel_size(FULL_BUDGET_ON_CPU) == FULL_SIZE
    assert (CPU_SIZE.train_size, CPU_SIZE.test_size, CPU_SIZE.hidden, CPU_SIZE.fast) == (2000, 1000, (128,), False)
    assert (FULL_SIZE.train_size, FULL_SIZE.test_size, FULL_SIZE.hidden, FULL_SIZE.fast) == (None, None, (512, 64), True)
    chapters_mlp = [layer.out_features for layer in MLP().modules() if isinstance(layer, nn.Linear)]
    assert [*FULL_SIZE.hidden, 10] == chapters_mlp, "the full budget trains the chapters' 784-512-64-10 MLP"


def test_the_panel_loads_fashion_mnist_at_the_budgets_size(monkeypatch: pytest.MonkeyPatch) -> None:
    requested = []

    def fake_fashion_mnist(**sizes) -> Dataset:
        requested.append(sizes)
        return blobs()

    monkeypatch.setattr("dldna.widgets.trainer.load_fashion_mnist", fake_fashion_mnist)
    TrainerPanel(budget=CPU_BUDGET, start=False)
    TrainerPanel(budget=FULL_BUDGET_ON_CPU, start=False)
    TrainerPanel(budget=FULL_BUDGET_ON_CPU, train_size=500, start=False)
    assert [(r["train_size"], r["test_size"], str(r["device"])) for r in requested] == [
        (2000, 1000, "cpu"), (None, None, "cpu"), (500, None, "cpu"),
    ]


def test_under_the_full_budget_the_panel_trains_the_larger_mlp_with_fit_fast_and_says_so() -> None:
    panel = TrainerPanel(blobs(), optimizer="SGD", epochs=2, debounce_s=0, budget=FULL_BUDGET_ON_CPU, start=False)
    assert panel.device == torch.device("cpu")
    assert "an MLP 2-512-64-4 on 512 blobs training samples and tests it on 128, on cpu with fit_fast: the full budget" in panel.note.value
    panel.controls.lr.value = 0.05
    history = panel.wait()
    assert history.status == "completed" and history.config["fast"] is True
    assert history.config["parameters"] == sum(p.numel() for p in MLP(2, (512, 64), 4).parameters())
    assert f"({history.config['parameters']:,} parameters)" in panel.note.value
    assert "fit_fast (eager steps)" in panel.note.value and "Under the full budget" not in panel.note.value

    small = TrainerPanel(blobs(), optimizer="SGD", epochs=1, debounce_s=0, budget=CPU_BUDGET, start=False)
    assert "an MLP 2-128-4" in small.note.value and "with fit: the cpu budget" in small.note.value
    assert "Under the full budget (on a CUDA GPU) the panel trains on the whole FashionMNIST training set with an MLP 784-512-64-10 and fit_fast" in small.note.value
    small.controls.lr.value = 0.05
    assert "fast" not in small.wait().config


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_full_budget_replays_each_step_as_a_cuda_graph() -> None:
    panel = TrainerPanel(blobs(n_train=2048), optimizer="Adam", epochs=2, debounce_s=0, budget=dldna.Budget("full", torch.device("cuda")), start=False)
    panel.controls.lr.value = 3e-3
    history = panel.wait()
    assert history.status == "completed" and history.config.get("cuda_graph") is True
    assert "on cuda with fit_fast (each step replayed as a CUDA graph): the full budget" in panel.note.value
