"""A toy-surface playground: pick a surface and an optimizer, drag the learning rate or a beta, and the
optimizer's path over the surface's contour map redraws at once (a two-parameter run takes milliseconds, so
it runs on every slider move without a thread). In Colab the figure is a PNG redrawn when a slider is released
(see :mod:`dldna.widgets.live_figure`)."""

from __future__ import annotations

from typing import Any, Mapping

import ipywidgets as widgets
import numpy as np

from dldna.data.dataset import check_count
from dldna.toy import ToySurface, Trajectory, run_optimizer, toy_surfaces
from dldna.viz.render import display_live
from dldna.widgets.controls import HyperparameterControls, check_slider_value, optimizer_choices
from dldna.widgets.figure_content import ContourMap, FigureContent, Line, Panel
from dldna.widgets.live_figure import LiveFigure


LR_RANGE = (1e-4, 10.0)
MAX_STEPS = 2000


class Playground:
    """Contour map of a :class:`~dldna.toy.ToySurface` with the path of the chosen optimizer from the
    surface's start point; a status line gives the final loss or the step where the run diverged.

    ``lr`` is the starting learning rate (toy surfaces need larger steps than the optimizers' defaults), within the
    slider's range :data:`LR_RANGE`; ``steps`` is at most :data:`MAX_STEPS`. Values outside are refused, not clamped.
    ``surfaces`` defaults to :func:`~dldna.toy.toy_surfaces`; any mapping of names to
    ``ToySurface`` objects works (wrap a plain function ``f(xy) -> loss`` in one to give it a box and a start).
    """

    def __init__(
        self,
        surfaces: Mapping[str, ToySurface] | None = None,
        *,
        surface: str = "ravine",
        optimizer: str = "SGD",
        steps: int = 100,
        lr: float = 0.05,
        resolution: int = 120,
    ) -> None:
        self.surfaces = dict(surfaces if surfaces is not None else toy_surfaces())
        if surface not in self.surfaces:
            raise ValueError(f"surface must be one of {sorted(self.surfaces)}, got {surface!r}")
        choices = optimizer_choices()
        if optimizer not in choices:
            raise ValueError(f"optimizer must be one of {sorted(choices)}, got {optimizer!r}")
        check_count("steps", steps)
        if steps > MAX_STEPS:
            raise ValueError(f"steps={steps} is outside its slider's range: pass a value between 1 and {MAX_STEPS}")
        check_slider_value("lr", lr, *LR_RANGE)
        check_count("resolution", resolution, minimum=2)
        self.resolution = resolution
        self.surface = widgets.Dropdown(options=list(self.surfaces), value=surface, description="surface")
        self.optimizer = widgets.Dropdown(options=list(choices), value=optimizer, description="optimizer")
        self.steps = widgets.IntSlider(value=steps, min=1, max=MAX_STEPS, description="steps")
        self.controls = HyperparameterControls(lr_range=LR_RANGE)
        self.controls.use(choices[optimizer])
        self.controls.lr.value = lr
        self.status = widgets.HTML()
        self._contours: dict[str, ContourMap] = {}
        self.trajectory: Trajectory = self._run()
        self.live = LiveFigure(self._content(self.trajectory))
        self.status.value = self.trajectory.summary()

        self.surface.observe(self._on_change, names="value")
        self.optimizer.observe(self._on_optimizer, names="value")
        for control in (*self.controls.sliders, self.steps):
            control.observe(self._on_change, names="value")
            control.continuous_update = not self.live.image  # a PNG redraws when the slider is released
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.surface, self.optimizer, self.steps]),
                widgets.HBox([widgets.VBox(list(self.controls.sliders[:3])), widgets.VBox(list(self.controls.sliders[3:]))]),
                self.live.view,
                self.status,
            ]
        )

    @property
    def content(self) -> FigureContent:
        """What the figure shows now: the surface's contour map, the path, its start and the minimum."""
        return self.live.content

    def _contour(self) -> ContourMap:
        """The chosen surface's contour map (computed once per surface)."""
        name = self.surface.value
        if name not in self._contours:
            surface = self.surfaces[name]
            grid_x, grid_y, values = surface.grid(self.resolution)
            label = "loss"
            if surface.log_scale:
                values, label = np.log10(values - values.min() + 1e-3), "log₁₀(loss − min + 10⁻³)"
            self._contours[name] = ContourMap(grid_x[0], grid_y[:, 0], values, label)
        return self._contours[name]

    def _content(self, trajectory: Trajectory) -> FigureContent:
        """The figure of ``trajectory`` on the chosen surface: contour map, path, start and minimum."""
        surface = self.surfaces[self.surface.value]
        minimum = [surface.minimum] if surface.minimum is not None else []
        traces = (
            self._contour(),
            Line(trajectory.points[:, 0], trajectory.points[:, 1], mode="lines+markers", color="white", size=4),
            Line([surface.start[0]], [surface.start[1]], mode="markers", color="red", marker="x", size=11),
            Line([p[0] for p in minimum], [p[1] for p in minimum], mode="markers", color="gold", marker="star", size=13),
        )
        x_min, x_max, y_min, y_max = surface.box
        panel = Panel(surface.name, "w₁", "w₂", traces, x_range=(x_min, x_max), y_range=(y_min, y_max))
        return FigureContent(panels=(panel,), title=trajectory.name, height=430, width=560)

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments of the chosen optimizer from the sliders."""
        return self.controls.kwargs()

    def _run(self) -> Trajectory:
        """The chosen optimizer's run on the chosen surface with the sliders' values."""
        surface = self.surfaces[self.surface.value]
        return run_optimizer(surface, self.controls.optimizer_class, steps=self.steps.value, name=self.controls.describe(), **self.hyperparameters())

    def redraw(self) -> Trajectory:
        """Run the chosen optimizer on the chosen surface with the sliders' values and draw its path."""
        trajectory = self._run()
        self.live.show(self._content(trajectory))
        self.status.value = trajectory.summary()
        self.trajectory = trajectory
        return trajectory

    def _on_optimizer(self, change: dict[str, Any]) -> None:
        self.controls.switch(change["new"], self._on_change)
        self.redraw()

    def _on_change(self, change: dict[str, Any]) -> None:
        self.redraw()

    def _ipython_display_(self) -> None:
        display_live(self.widget, "Here the playground redraws an optimizer's path over a toy loss surface as you change its settings.")
