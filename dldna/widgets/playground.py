"""A toy-surface playground: pick a surface and an optimizer, drag the learning rate or a beta, and the
optimizer's path over the surface's contour map redraws at once (a two-parameter run takes milliseconds, so
it runs on every slider move without a thread)."""

from __future__ import annotations

from typing import Any, Mapping

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from dldna.landscape.toy import ToySurface, Trajectory, run_optimizer, toy_surfaces
from dldna.viz.render import display_live
from dldna.widgets.controls import HyperparameterControls, optimizer_choices
from dldna.widgets.live_figure import LiveFigure


class Playground:
    """Contour map of a :class:`~dldna.landscape.toy.ToySurface` with the path of the chosen optimizer from the
    surface's start point; a status line gives the final loss or the step where the run diverged.

    ``lr`` is the starting learning rate (toy surfaces need larger steps than the optimizers' defaults).
    ``surfaces`` defaults to :func:`~dldna.landscape.toy.toy_surfaces`; any mapping of names to
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
        if not 1 <= steps <= 2000:
            raise ValueError(f"steps must be between 1 and 2000, got {steps}")
        self.resolution = resolution
        self.surface = widgets.Dropdown(options=list(self.surfaces), value=surface, description="surface")
        self.optimizer = widgets.Dropdown(options=list(choices), value=optimizer, description="optimizer")
        self.steps = widgets.IntSlider(value=steps, min=1, max=2000, description="steps")
        self.controls = HyperparameterControls(lr_range=(1e-4, 10.0))
        self.controls.use(choices[optimizer])
        self.controls.lr.value = lr
        self.status = widgets.HTML()
        self.trajectory: Trajectory | None = None
        self.live = LiveFigure(self._base_figure())
        self._draw_surface()
        self.redraw()

        self.surface.observe(self._on_surface, names="value")
        self.optimizer.observe(self._on_optimizer, names="value")
        for control in (*self.controls.sliders, self.steps):
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.surface, self.optimizer, self.steps]),
                widgets.HBox([widgets.VBox(list(self.controls.sliders[:3])), widgets.VBox(list(self.controls.sliders[3:]))]),
                self.live.view,
                self.status,
            ]
        )

    @property
    def figure(self) -> go.Figure:
        return self.live.figure

    @staticmethod
    def _base_figure() -> go.Figure:
        figure = go.Figure()
        figure.add_contour(x=[], y=[], z=[], colorscale="Viridis", ncontours=30, name="surface")
        figure.add_scatter(x=[], y=[], mode="lines+markers", marker=dict(size=4, color="white"), line=dict(color="white"), name="path")
        figure.add_scatter(x=[], y=[], mode="markers", marker=dict(size=11, color="red", symbol="x"), name="start")
        figure.add_scatter(x=[], y=[], mode="markers", marker=dict(size=13, color="gold", symbol="star"), name="minimum")
        figure.update_layout(height=430, width=560, xaxis_title="w₁", yaxis_title="w₂", showlegend=False, margin=dict(l=55, r=20, t=50, b=45))
        return figure

    def _draw_surface(self) -> None:
        surface = self.surfaces[self.surface.value]
        grid_x, grid_y, values = surface.grid(self.resolution)
        label = "loss"
        if surface.log_scale:
            values, label = np.log10(values - values.min() + 1e-3), "log₁₀(loss − min + 10⁻³)"
        x_min, x_max, y_min, y_max = surface.box
        minimum = [surface.minimum] if surface.minimum is not None else []
        with self.live.update() as figure:
            figure.data[0].update(x=grid_x[0], y=grid_y[:, 0], z=values, colorbar=dict(title=dict(text=label)))
            figure.data[2].update(x=[surface.start[0]], y=[surface.start[1]])
            figure.data[3].update(x=[p[0] for p in minimum], y=[p[1] for p in minimum])
            figure.update_xaxes(range=[x_min, x_max])
            figure.update_yaxes(range=[y_min, y_max])

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments of the chosen optimizer from the sliders."""
        return self.controls.kwargs()

    def redraw(self) -> Trajectory:
        """Run the chosen optimizer on the chosen surface with the sliders' values and draw its path."""
        surface = self.surfaces[self.surface.value]
        trajectory = run_optimizer(surface, self.controls.optimizer_class, steps=self.steps.value, name=self.controls.describe(), **self.hyperparameters())
        with self.live.update() as figure:
            figure.data[1].update(x=trajectory.points[:, 0], y=trajectory.points[:, 1])
            figure.layout.title = f"{trajectory.name} on {surface.name}"
        self.status.value = trajectory.summary()
        self.trajectory = trajectory
        return trajectory

    def _on_surface(self, change: dict[str, Any]) -> None:
        self._draw_surface()
        self.redraw()

    def _on_optimizer(self, change: dict[str, Any]) -> None:
        self.controls.switch(change["new"], self._on_change)
        self.redraw()

    def _on_change(self, change: dict[str, Any]) -> None:
        self.redraw()

    def _ipython_display_(self) -> None:
        display_live(self.widget, "Here the playground redraws an optimizer's path over a toy loss surface as you change its settings.")
