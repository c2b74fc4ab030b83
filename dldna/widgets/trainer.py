"""A live training panel: move a slider and the model retrains, with its curves redrawn as epochs finish.

Training runs in a background thread through :func:`dldna.train.fit` (or :func:`~dldna.train.fit_fast` under
the full budget), so the notebook stays responsive. Slider moves are debounced (a run starts once the sliders
rest for ``debounce_s`` seconds). Every change bumps a generation counter and asks the running fit to stop
(:class:`~dldna.train.StopFlag`); a run draws only while its generation is still the current one, checked
under the same lock that bumps it, so a curve of a setting that is no longer selected is never drawn. A new
run starts only after the previous thread ended, so runs never pile up.

In Colab the figure is a PNG (see :mod:`dldna.widgets.live_figure`) and each run trains inside the kernel's
handler of the slider move, as ``ipywidgets.interact`` does: Colab does not show widget changes made from a
background thread once the cell has finished (colabtools #3373). Its sliders then report a value when
released, which takes the place of the debounce.
"""

from __future__ import annotations

import functools
import html
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

import dldna
from dldna.data import Dataset, load_fashion_mnist
from dldna.data.dataset import check_count
from dldna.models import MLP
from dldna.train import Callback, History, StopFlag, TrainState, fit, fit_fast
from dldna.viz import smooth
from dldna.viz.render import display_live
from dldna.widgets.controls import HyperparameterControls, optimizer_choices
from dldna.widgets.figure_content import FigureContent, Line, Panel
from dldna.widgets.live_figure import LiveFigure, in_colab

BATCH_SIZES = (16, 32, 64, 128, 256, 512)


@dataclass(frozen=True)
class PanelSize:
    """What the panel trains by default: ``train_size``/``test_size`` FashionMNIST images (``None``: the whole
    split), an MLP with ``hidden`` widths, and the training path (``fast``: :func:`~dldna.train.fit_fast`)."""

    train_size: int | None
    test_size: int | None
    hidden: tuple[int, ...]
    fast: bool


CPU_SIZE = PanelSize(train_size=2000, test_size=1000, hidden=(128,), fast=False)
FULL_SIZE = PanelSize(train_size=None, test_size=None, hidden=(512, 64), fast=True)


def panel_size(budget: dldna.Budget) -> PanelSize:
    """The panel's size under ``budget``, chosen so that a re-run takes about a second: on a CPU a 2,000-image
    subset and a 784-128-10 MLP; under the full budget (CUDA) the whole training set, the chapters'
    784-512-64-10 MLP, and the CUDA-graph step of ``fit_fast``."""
    return budget.pick(cpu=CPU_SIZE, full=FULL_SIZE)


@dataclass(frozen=True)
class RunSettings:
    """What one run trains with, read from the controls when the run starts."""

    optimizer_class: type[torch.optim.Optimizer]
    hyperparameters: dict[str, Any]
    batch_size: int
    epochs: int
    label: str


class _DrawEachEpoch(Callback):
    def __init__(self, panel: "TrainerPanel", generation: int, settings: RunSettings) -> None:
        self.panel, self.generation, self.settings = panel, generation, settings

    def on_epoch_end(self, state: TrainState) -> None:
        self.panel._draw(self.generation, self.settings, state.history)


class TrainerPanel:
    """Sliders for the optimizer, learning rate, momentum or betas, weight decay, batch size and epochs; a
    live plot of training loss per step and test accuracy per epoch; a status line; a note saying what runs.

    ``budget`` (a :class:`dldna.Budget` or its name; default :func:`dldna.budget`) sizes the defaults with
    :func:`panel_size`: ``data`` defaults to FashionMNIST (``train_size``/``test_size`` images, by default the
    budget's) and ``model_fn`` to an MLP of the budget's widths; the full budget trains with
    :func:`~dldna.train.fit_fast`. Training runs on ``device``, by default the budget's. Display the panel by
    leaving it as the last expression of a cell. :meth:`wait` blocks until the current setting's run has finished
    and returns its History; a run that raised (a model that does not fit the data, say) shows the error in the
    status line, and :meth:`wait` raises it again.
    """

    def __init__(
        self,
        data: Dataset | None = None,
        model_fn: Callable[[], nn.Module] | None = None,
        *,
        budget: dldna.Budget | str | None = None,
        train_size: int | None = None,
        test_size: int | None = None,
        optimizer: str = "Adam",
        epochs: int = 3,
        batch_size: int = 64,
        debounce_s: float = 0.4,
        device: torch.device | str | None = None,
        seed: int = 0,
        start: bool = True,
    ) -> None:
        choices = optimizer_choices()
        if optimizer not in choices:
            raise ValueError(f"optimizer must be one of {sorted(choices)}, got {optimizer!r}")
        if batch_size not in BATCH_SIZES:
            raise ValueError(f"batch_size must be one of {BATCH_SIZES}, got {batch_size!r}")
        check_count("epochs", epochs)
        if epochs > 20:
            raise ValueError(f"epochs={epochs} is outside its slider's range: pass a value between 1 and 20")
        if not (isinstance(debounce_s, (int, float)) and math.isfinite(debounce_s) and debounce_s >= 0):
            raise ValueError(f"debounce_s must be a finite number of seconds >= 0, got {debounce_s!r}: pass e.g. debounce_s=0.4")
        check_count("seed", seed, minimum=0)
        if budget is not None and not isinstance(budget, (dldna.Budget, str)):
            raise TypeError(f"budget must be a dldna.Budget, 'cpu', 'full' or None, got {type(budget).__name__}")
        self.budget = budget if isinstance(budget, dldna.Budget) else dldna.budget(budget)
        self.size = panel_size(self.budget)
        self.device = dldna.device(device) if device is not None else self.budget.device
        if data is None:
            data = load_fashion_mnist(
                train_size=train_size if train_size is not None else self.size.train_size,
                test_size=test_size if test_size is not None else self.size.test_size,
                device=self.device,
            )
        self.data = data.to(self.device)
        features = math.prod(self.data.input_shape)
        self.widths = (features, *self.size.hidden, self.data.num_classes) if model_fn is None else None
        self.model_fn = model_fn or functools.partial(MLP, in_features=features, hidden=self.size.hidden, num_classes=self.data.num_classes)
        self.seed, self.debounce_s = seed, debounce_s
        self.background = not in_colab()

        self.controls = HyperparameterControls()
        self.optimizer = widgets.Dropdown(options=list(choices), value=optimizer, description="optimizer")
        self.batch_size = widgets.SelectionSlider(options=list(BATCH_SIZES), value=batch_size, description="batch size")
        self.epochs = widgets.IntSlider(value=epochs, min=1, max=20, description="epochs")
        self.status = widgets.HTML()
        self.note = widgets.HTML(f"<small>{self._note()}</small>")
        self.controls.use(choices[optimizer])
        self.live = LiveFigure(self._content(None, None))

        self.generation = 0
        self.drawn_generation: int | None = None
        self.history: History | None = None
        self._drawn: tuple[int, int, int] | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._thread: threading.Thread | None = None
        self._thread_generation: int | None = None
        self._stop: StopFlag | None = None
        self._failure: tuple[int, Exception] | None = None

        self.optimizer.observe(self._on_optimizer, names="value")
        for control in (*self.controls.sliders, self.batch_size, self.epochs):
            control.observe(self._on_change, names="value")
            if not self.background:
                control.continuous_update = False
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.optimizer, self.batch_size, self.epochs]),
                widgets.HBox([widgets.VBox(list(self.controls.sliders[:3])), widgets.VBox(list(self.controls.sliders[3:]))]),
                self.live.view,
                self.status,
                self.note,
            ]
        )
        if start:
            self.schedule()

    @property
    def content(self) -> FigureContent:
        """What the figure shows now: loss per step (left) and test accuracy per epoch (right)."""
        return self.live.content

    def _content(self, settings: RunSettings | None, history: History | None) -> FigureContent:
        """The figure of ``history`` (empty before the first run): the data both renderings draw."""
        steps = loss = epochs = accuracy = np.zeros(0)
        if history is not None:
            raw = np.asarray(history.steps["loss"], dtype=float)
            finite = np.flatnonzero(np.isfinite(raw))
            steps, loss = finite + 1, smooth(raw[finite], max(1, history.steps_per_epoch // 10))
            accuracy = 100 * np.asarray(history.epochs["test_acc"], dtype=float)
            epochs = np.arange(1, len(accuracy) + 1)
        return FigureContent(
            panels=(
                Panel("Training loss", "optimizer step", "cross-entropy", (Line(steps, loss),), log_y=True),
                Panel("Test accuracy", "epoch", "test accuracy (%)", (Line(epochs, accuracy, mode="lines+markers"),)),
            ),
            title=settings.label if settings is not None else "",
        )

    def _note(self, history: History | None = None) -> str:
        """The line under the panel: the data, model, device and training path of a run (of ``history``'s, once
        one ran: its parameter count and whether a CUDA graph ran come from there)."""
        if self.widths is not None:
            model = "an MLP " + "-".join(str(width) for width in self.widths)
        else:
            model = "the model of model_fn" if history is None else f"a {history.config['model']}"
        if history is not None:
            model += f" ({history.config['parameters']:,} parameters)"
        path = "fit"
        if self.size.fast:
            graph = history is not None and history.config.get("cuda_graph")
            path = "fit_fast" if history is None else f"fit_fast ({'each step replayed as a CUDA graph' if graph else 'eager steps'})"
        note = (
            f"Each run trains {model} on {len(self.data.y_train):,} {self.data.name} training samples and tests it on "
            f"{len(self.data.y_test):,}, on {self.device} with {path}: the {self.budget.name} budget."
        )
        if not self.budget.full:
            note += (
                " Under the full budget (on a CUDA GPU) the panel trains on the whole FashionMNIST training set with "
                f"an MLP 784-{'-'.join(str(width) for width in FULL_SIZE.hidden)}-10 and fit_fast."
            )
        return note

    def settings(self) -> RunSettings:
        """The run the controls describe now."""
        return RunSettings(
            optimizer_class=self.controls.optimizer_class,
            hyperparameters=self.controls.kwargs(),
            batch_size=self.batch_size.value,
            epochs=self.epochs.value,
            label=f"{self.controls.describe()}, batch {self.batch_size.value}",
        )

    def _on_optimizer(self, change: dict[str, Any]) -> None:
        """A new optimizer shows its own defaults; the slider changes this makes start a single run."""
        self.controls.switch(change["new"], self._on_change)
        self.schedule()

    def _on_change(self, change: dict[str, Any]) -> None:
        self.schedule()

    def schedule(self) -> None:
        """Cancel the run in progress and start one for the current setting after the debounce delay (in Colab:
        train it now, in the caller's thread)."""
        with self._lock:
            self.generation += 1
            generation = self.generation
            if self._stop is not None:
                self._stop.set()
            if self._timer is not None:
                self._timer.cancel()
            self.status.value = "<b>setting changed</b>: waiting for the sliders to rest…"
            if self.background and self.debounce_s > 0:
                self._timer = threading.Timer(self.debounce_s, self._start, args=(generation,))
                self._timer.daemon = True
                self._timer.start()
                return
        if self.background:
            self._start(generation)
        else:
            settings = self.settings()
            self.status.value = f"training {settings.label} on {self.device}…"
            self._train(generation, settings, StopFlag())

    def _start(self, generation: int) -> None:
        """Start the run of ``generation`` once the previous run (already asked to stop) has ended."""
        while True:
            with self._lock:
                if generation != self.generation:
                    return
                running = self._thread
                if running is None or not running.is_alive():
                    settings = self.settings()
                    self._stop = StopFlag()
                    self._thread = threading.Thread(
                        target=self._train, args=(generation, settings, self._stop), daemon=True, name="dldna-trainer"
                    )
                    self._thread_generation = generation
                    self.status.value = f"training {settings.label} on {self.device}…"
                    self._thread.start()
                    return
            running.join()

    def _train(self, generation: int, settings: RunSettings, stop: StopFlag) -> None:
        try:
            dldna.set_seed(self.seed)
            model = self.model_fn()
            optimizer = settings.optimizer_class(model.parameters(), **settings.hyperparameters)
            train = fit_fast if self.size.fast else fit
            history = train(
                model, optimizer, self.data, epochs=settings.epochs, batch_size=settings.batch_size, seed=self.seed,
                callbacks=[stop, _DrawEachEpoch(self, generation, settings)], progress=False,
            )
        except Exception as error:  # shown in the panel and raised again by wait(): a thread cannot raise to the caller
            with self._lock:
                self._failure = (generation, error)
                if generation == self.generation:
                    self.status.value = f"<b>could not train {html.escape(settings.label)}</b>: {html.escape(str(error))}"
            return
        self._draw(generation, settings, history, final=True)

    def _draw(self, generation: int, settings: RunSettings, history: History, final: bool = False) -> None:
        """Show ``history`` if ``generation`` is still the current setting's; otherwise draw nothing. The figure
        is redrawn only when the run has new steps or epochs since the last draw."""
        content = self._content(settings, history)
        drawn = (generation, history.num_steps, len(history.epochs["test_acc"]))
        with self._lock:
            if generation != self.generation:
                return
            if drawn != self._drawn:
                self.live.show(content)
                self._drawn = drawn
            self.status.value = self._status_line(settings, history, final)
            self.note.value = f"<small>{self._note(history)}</small>"
            self.drawn_generation = generation
            self.history = history

    def _status_line(self, settings: RunSettings, history: History, final: bool) -> str:
        epochs_done = len(history.epochs["test_acc"])
        elapsed = sum(history.epochs["time_s"]) if not final else history.total_time_s
        parts = [f"{self.device}", f"{elapsed:.1f} s"]
        if history.diverged:
            parts.insert(0, f"<b>diverged at step {history.diverged_at}</b> ({history.divergence_cause()})")
        elif final and history.learned_nothing:
            parts.insert(0, f"<b>{history.outcome()}</b> after {epochs_done} epochs")
        else:
            state = "done" if final else "training"
            parts.insert(0, f"{state}: epoch {epochs_done}/{settings.epochs}")
            if epochs_done:
                parts.append(f"test accuracy {history.final_test_acc:.1%}")
        return " · ".join(parts)

    def wait(self, timeout: float = 120.0) -> History | None:
        """Block until the run of the current setting has ended (or ``timeout`` seconds passed) and return its
        History; if that run raised, raise its exception here."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            with self._lock:
                generation, timer, thread = self.generation, self._timer, self._thread
                started = self._thread_generation == generation
            if started:
                thread.join(remaining)
                break
            if timer is None or not timer.is_alive():
                break
            timer.join(remaining)
        with self._lock:
            failure = self._failure
            if failure is not None and failure[0] == self.generation:
                raise failure[1]
        return self.history

    def close(self) -> None:
        """Stop the run in progress and forget pending slider moves (for example before closing the notebook)."""
        with self._lock:
            self.generation += 1
            if self._timer is not None:
                self._timer.cancel()
            if self._stop is not None:
                self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _ipython_display_(self) -> None:
        display_live(self.widget, "Here the live training panel retrains a small network on FashionMNIST with the optimizer settings you pick.")
