"""A live training panel: move a slider and the model retrains, with its curves redrawn as epochs finish.

Training runs in a background thread through :func:`dldna.train.fit`, so the notebook stays responsive.
Slider moves are debounced (a run starts once the sliders rest for ``debounce_s`` seconds). Every change
bumps a generation counter and asks the running fit to stop (:class:`~dldna.train.StopFlag`); a run draws
only while its generation is still the current one, checked under the same lock that bumps it, so a curve
of a setting that is no longer selected is never drawn. A new run starts only after the previous thread
ended, so runs never pile up.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import ipywidgets as widgets
import numpy as np
import torch
from plotly.subplots import make_subplots
from torch import nn

import dldna
from dldna.data import Dataset, load_fashion_mnist
from dldna.models import MLP
from dldna.train import Callback, History, StopFlag, TrainState, fit
from dldna.viz import smooth
from dldna.viz.render import display_live
from dldna.widgets.controls import HyperparameterControls, optimizer_choices
from dldna.widgets.live_figure import LiveFigure

BATCH_SIZES = (16, 32, 64, 128, 256, 512)


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
    live plot of training loss per step and test accuracy per epoch; a status line.

    ``data`` defaults to a FashionMNIST subset of ``train_size`` images and ``model_fn`` to a 784-128-10 MLP,
    sized so that a re-run takes a second or two on a laptop CPU. Display the panel by leaving it as the last
    expression of a cell. :meth:`wait` blocks until the current setting's run has finished.
    """

    def __init__(
        self,
        data: Dataset | None = None,
        model_fn: Callable[[], nn.Module] | None = None,
        *,
        train_size: int = 2000,
        test_size: int = 1000,
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
            raise ValueError(f"batch_size must be one of {BATCH_SIZES}, got {batch_size}")
        if not 1 <= epochs <= 20:
            raise ValueError(f"epochs must be between 1 and 20, got {epochs}")
        if debounce_s < 0:
            raise ValueError(f"debounce_s must be >= 0, got {debounce_s}")
        self.device = dldna.device(device)
        if data is None:
            data = load_fashion_mnist(train_size=train_size, test_size=test_size, device=self.device)
            note = (
                f"Trained on a {len(data.y_train):,}-image subset of FashionMNIST (tested on {len(data.y_test):,} "
                "images) so that a re-run takes a second or two; pass data=load_fashion_mnist() for the full set."
            )
        else:
            data = data.to(self.device)
            note = f"Trained on {data.name}: {len(data.y_train):,} training and {len(data.y_test):,} test samples."
        self.data = data
        features = math.prod(data.input_shape)
        self.model_fn = model_fn or (lambda: MLP(in_features=features, hidden=(128,), num_classes=data.num_classes))
        self.seed, self.debounce_s = seed, debounce_s

        self.controls = HyperparameterControls()
        self.optimizer = widgets.Dropdown(options=list(choices), value=optimizer, description="optimizer")
        self.batch_size = widgets.SelectionSlider(options=list(BATCH_SIZES), value=batch_size, description="batch size")
        self.epochs = widgets.IntSlider(value=epochs, min=1, max=20, description="epochs")
        self.status = widgets.HTML()
        self.note = widgets.HTML(f"<small>{note}</small>")
        self.controls.use(choices[optimizer])
        self.live = LiveFigure(self._empty_figure())

        self.generation = 0
        self.drawn_generation: int | None = None
        self.history: History | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._thread: threading.Thread | None = None
        self._thread_generation: int | None = None
        self._stop: StopFlag | None = None

        self.optimizer.observe(self._on_optimizer, names="value")
        for control in (*self.controls.sliders, self.batch_size, self.epochs):
            control.observe(self._on_change, names="value")
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
    def figure(self):
        """The plotly figure on screen (loss per step left, test accuracy per epoch right)."""
        return self.live.figure

    def _empty_figure(self):
        figure = make_subplots(rows=1, cols=2, subplot_titles=("Training loss", "Test accuracy"))
        figure.add_scatter(x=[], y=[], mode="lines", name="training loss", row=1, col=1)
        figure.add_scatter(x=[], y=[], mode="lines+markers", name="test accuracy", row=1, col=2)
        figure.update_xaxes(title_text="optimizer step", row=1, col=1)
        figure.update_xaxes(title_text="epoch", row=1, col=2)
        figure.update_yaxes(title_text="cross-entropy", type="log", row=1, col=1)
        figure.update_yaxes(title_text="test accuracy (%)", row=1, col=2)
        figure.update_layout(height=330, showlegend=False, margin=dict(l=60, r=20, t=60, b=45))
        return figure

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
        """Cancel the run in progress and start one for the current setting after the debounce delay."""
        with self._lock:
            self.generation += 1
            generation = self.generation
            if self._stop is not None:
                self._stop.set()
            if self._timer is not None:
                self._timer.cancel()
            self.status.value = "<b>setting changed</b>: waiting for the sliders to rest…"
            if self.debounce_s > 0:
                self._timer = threading.Timer(self.debounce_s, self._start, args=(generation,))
                self._timer.daemon = True
                self._timer.start()
                return
        self._start(generation)

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
            history = fit(
                model, optimizer, self.data, epochs=settings.epochs, batch_size=settings.batch_size, seed=self.seed,
                callbacks=[stop, _DrawEachEpoch(self, generation, settings)], progress=False,
            )
        except (ValueError, RuntimeError) as error:
            with self._lock:
                if generation == self.generation:
                    self.status.value = f"<b>could not train {settings.label}</b>: {error}"
            return
        self._draw(generation, settings, history, final=True)

    def _draw(self, generation: int, settings: RunSettings, history: History, final: bool = False) -> None:
        """Show ``history`` if ``generation`` is still the current setting's; otherwise draw nothing."""
        loss = np.asarray(history.steps["loss"], dtype=float)
        finite = np.flatnonzero(np.isfinite(loss))
        smoothed = smooth(loss[finite], max(1, history.steps_per_epoch // 10))
        accuracy = 100 * np.asarray(history.epochs["test_acc"], dtype=float)
        with self._lock:
            if generation != self.generation:
                return
            with self.live.update() as figure:
                figure.data[0].update(x=finite + 1, y=smoothed)
                figure.data[1].update(x=np.arange(1, len(accuracy) + 1), y=accuracy)
                figure.layout.title = settings.label
            self.status.value = self._status_line(settings, history, final)
            self.drawn_generation = generation
            self.history = history

    def _status_line(self, settings: RunSettings, history: History, final: bool) -> str:
        epochs_done = len(history.epochs["test_acc"])
        elapsed = sum(history.epochs["time_s"]) if not final else history.total_time_s
        parts = [f"{self.device}", f"{elapsed:.1f} s"]
        if history.diverged:
            parts.insert(0, f"<b>diverged at step {history.diverged_at}</b> (the loss became non-finite)")
        else:
            state = "done" if final else "training"
            parts.insert(0, f"{state}: epoch {epochs_done}/{settings.epochs}")
            if epochs_done:
                parts.append(f"test accuracy {history.final_test_acc:.1%}")
        return " · ".join(parts)

    def wait(self, timeout: float = 120.0) -> History | None:
        """Block until the run of the current setting has ended (or ``timeout`` seconds passed); its History."""
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
