"""Figures of optimizers on two-dimensional toy surfaces (:mod:`dldna.toy`) and of the momentum
analysis (:mod:`dldna.toy.momentum`): contour maps with paths (matplotlib and plotly), a kernel-free
plotly figure with sliders over a precomputed grid of hyperparameters, loss curves, and the (lr, β) phase
diagram of heavy-ball momentum."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from dldna.toy.momentum import MOMENTUM_REGIMES, best_gd, best_momentum, momentum_rate, momentum_regime
from dldna.toy.runs import Trajectory, TrajectoryGrid
from dldna.toy.surfaces import ToySurface

__all__ = [
    "plot_loss_curves",
    "plot_momentum_phase",
    "plot_paths",
    "plotly_paths",
    "plotly_trajectory_slider",
]

Trajectories = Mapping[str, Trajectory] | Sequence[Trajectory]
AXIS_LABELS = ("w₁ (first parameter)", "w₂ (second parameter)")


def _as_list(trajectories: Trajectories) -> list[Trajectory]:
    return list(trajectories.values()) if isinstance(trajectories, Mapping) else list(trajectories)


def _label(trajectory: Trajectory) -> str:
    if trajectory.diverged:
        return f"{trajectory.name} (diverged at step {trajectory.diverged_at})"
    return trajectory.name


def _thin(points: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` rows of ``points``, evenly spaced, always keeping the first and last."""
    if len(points) <= max_points:
        return points
    keep = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
    return points[keep]


def _display_values(surface: ToySurface, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Loss values as drawn: ``log10(loss - min + 0.01)`` for surfaces spanning decades, else the loss."""
    if surface.log_scale:
        return np.log10(values - values.min() + 1e-2), "log₁₀(loss − min + 0.01)"
    return values, "loss"


def plot_paths(
    surface: ToySurface,
    trajectories: Trajectories,
    ax: plt.Axes | None = None,
    title: str | None = None,
    resolution: int = 200,
    levels: int = 30,
) -> plt.Figure:
    """Contour map of ``surface`` over its box with each optimizer's path; a diverged run is drawn up to
    the step before it blew up and says so in the legend."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    grid_x, grid_y, values = surface.grid(resolution)
    shown, label = _display_values(surface, values)
    contour = ax.contourf(grid_x, grid_y, shown, levels=levels, cmap="viridis", alpha=0.85)
    ax.contour(grid_x, grid_y, shown, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
    ax.figure.colorbar(contour, ax=ax, label=label)
    for trajectory in _as_list(trajectories):
        points = trajectory.points
        (line,) = ax.plot(points[:, 0], points[:, 1], "-", lw=1.5, marker=".", ms=3, label=_label(trajectory))
        ax.plot(*points[-1], "x" if trajectory.diverged else "o", color=line.get_color(), ms=7)
    paths = _as_list(trajectories)
    if paths:
        ax.plot(*paths[0].points[0], "s", color="white", mec="black", ms=7, label="start")
    if surface.minimum is not None:
        ax.plot(*surface.minimum, "*", color="red", ms=12, mec="black", label="minimum")
    x_min, x_max, y_min, y_max = surface.box
    ax.set(xlim=(x_min, x_max), ylim=(y_min, y_max), xlabel=AXIS_LABELS[0], ylabel=AXIS_LABELS[1])
    ax.set_title(title or surface.name)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    return ax.figure


def plot_loss_curves(trajectories: Trajectories, ax: plt.Axes | None = None, title: str | None = None, log: bool = True) -> plt.Figure:
    """Loss against step for each trajectory (log scale by default); a diverged run ends with an ×."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.6), constrained_layout=True)
    for trajectory in _as_list(trajectories):
        losses = trajectory.losses
        (line,) = ax.plot(np.arange(len(losses)), losses, lw=1.5, label=_label(trajectory))
        if trajectory.diverged:
            ax.plot(len(losses) - 1, losses[-1], "x", color=line.get_color(), ms=8)
    if log:
        ax.set_yscale("log")
    ax.set(xlabel="optimizer step", ylabel="loss", title=title or "Loss along the path")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax.figure


def _contour_trace(surface: ToySurface, resolution: int) -> go.Contour:
    grid_x, grid_y, values = surface.grid(resolution)
    shown, label = _display_values(surface, values)
    return go.Contour(
        x=np.round(grid_x[0], 4), y=np.round(grid_y[:, 0], 4), z=np.round(shown, 4), colorscale="Viridis",
        ncontours=30, colorbar=dict(title=label), hoverinfo="skip", showscale=True,
    )


def _surface_layout(surface: ToySurface, title: str) -> dict:
    x_min, x_max, y_min, y_max = surface.box
    return dict(
        title=title,
        xaxis=dict(title=AXIS_LABELS[0], range=[x_min, x_max]),
        yaxis=dict(title=AXIS_LABELS[1], range=[y_min, y_max]),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0),
        height=520,
        margin=dict(t=90),
    )


def plotly_paths(
    surface: ToySurface, trajectories: Trajectories, title: str | None = None, resolution: int = 120, max_points: int = 300
) -> go.Figure:
    """Interactive :func:`plot_paths`; each path is thinned to ``max_points`` points to keep the page light."""
    fig = go.Figure([_contour_trace(surface, resolution)])
    for trajectory in _as_list(trajectories):
        points = np.round(_thin(trajectory.points, max_points), 4)
        fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="lines+markers", marker=dict(size=3), name=_label(trajectory)))
    if surface.minimum is not None:
        fig.add_trace(go.Scatter(x=[surface.minimum[0]], y=[surface.minimum[1]], mode="markers", name="minimum",
                                 marker=dict(symbol="star", size=14, color="red", line=dict(color="black", width=1))))
    layout = _surface_layout(surface, title or surface.name)
    # Several paths make a legend of several rows: below the map it never covers the title.
    layout.update(legend=dict(orientation="h", y=-0.14, yanchor="top", x=0), margin=dict(t=60, b=150), height=600)
    fig.update_layout(**layout)
    return fig


def plotly_trajectory_slider(
    grid: TrajectoryGrid, title: str | None = None, resolution: int = 100, max_points: int = 200
) -> go.Figure:
    """A kernel-free figure: one slider over ``grid.lrs`` and one over ``grid.betas`` choose which precomputed
    path is drawn on the contour map.

    One path trace per β value holds the path for the selected learning rate; the learning-rate slider
    restyles the data of all of them at once and the β slider switches which one is visible, so the two
    sliders work independently in a static page. Paths are thinned to ``max_points`` points.
    """
    surface = grid.surface
    lr_index, beta_index = len(grid.lrs) // 2, len(grid.betas) // 2
    thinned = [[np.round(_thin(path.points, max_points), 4) for path in row] for row in grid.paths]
    fig = go.Figure([_contour_trace(surface, resolution)])
    for j in range(len(grid.betas)):
        points = thinned[lr_index][j]
        fig.add_trace(go.Scatter(
            x=points[:, 0], y=points[:, 1], mode="lines+markers", marker=dict(size=4), line=dict(color="orange", width=2),
            name=_label(grid.paths[lr_index][j]), visible=j == beta_index, showlegend=True,
        ))
    path_traces = list(range(1, len(grid.betas) + 1))
    lr_steps = [
        dict(
            method="restyle",
            label=f"{lr:g}",
            args=[{"x": [p[:, 0] for p in thinned[i]], "y": [p[:, 1] for p in thinned[i]],
                   "name": [_label(path) for path in grid.paths[i]]}, path_traces],
        )
        for i, lr in enumerate(grid.lrs)
    ]
    beta_steps = [
        dict(method="restyle", label=f"{beta:g}", args=[{"visible": [k == j for k in range(len(grid.betas))]}, path_traces])
        for j, beta in enumerate(grid.betas)
    ]
    layout = _surface_layout(surface, title or f"{surface.name}: choose the learning rate and {grid.beta_label}")
    layout.update(
        height=640,
        margin=dict(t=90, b=170),
        sliders=[
            dict(active=lr_index, steps=lr_steps, currentvalue=dict(prefix="learning rate: "), y=-0.12, len=0.9, pad=dict(t=30)),
            dict(active=beta_index, steps=beta_steps, currentvalue=dict(prefix=f"{grid.beta_label}: "), y=-0.32, len=0.9, pad=dict(t=30)),
        ],
    )
    fig.update_layout(**layout)
    return fig


REGIME_COLOURS = ("#4c9be8", "#7fc97f", "#fdb462", "#d9d9d9")


def plot_momentum_phase(mu: float, big_l: float, resolution: int = 240, beta_max: float = 0.995) -> plt.Figure:
    """Two panels. Left: the regime of one eigen-direction over ``(lr·λ, β)`` (monotone, oscillating,
    sign-flipping, divergent). Right: the predicted rate of momentum on a quadratic with eigenvalues in
    ``[mu, big_l]`` over ``(lr, β)``, with the divergence boundary (rate = 1), the optimal momentum and the best
    plain gradient descent marked."""
    betas = np.linspace(0.0, beta_max, resolution)
    fig, (ax_regime, ax_rate) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)

    products = np.linspace(0.0, 4.2, resolution)
    regimes = momentum_regime(products[None, :], betas[:, None])
    ax_regime.pcolormesh(products, betas, regimes, cmap=ListedColormap(REGIME_COLOURS), vmin=-0.5, vmax=3.5, shading="auto")
    ax_regime.set(xlabel="lr · λ (step size times curvature)", ylabel="momentum β", title="One eigen-direction")
    ax_regime.legend(handles=[Patch(color=c, label=n) for c, n in zip(REGIME_COLOURS, MOMENTUM_REGIMES)], fontsize=8, loc="upper left")

    lr_max = 4.2 / big_l
    lrs = np.linspace(lr_max / resolution, lr_max, resolution)
    rates = momentum_rate(lrs[None, :], betas[:, None], mu, big_l)
    shown = np.ma.masked_where(rates >= 1, rates)
    mesh = ax_rate.pcolormesh(lrs, betas, shown, cmap="magma_r", vmin=0, vmax=1, shading="auto")
    ax_rate.set_facecolor(REGIME_COLOURS[3])
    fig.colorbar(mesh, ax=ax_rate, label="convergence rate (error factor per step)")
    ax_rate.contour(lrs, betas, rates, levels=[1.0], colors="black", linewidths=1.2)
    lr_best, beta_best, rate_best = best_momentum(mu, big_l)
    lr_gd, rate_gd = best_gd(mu, big_l)
    ax_rate.plot(lr_best, beta_best, "*", color="cyan", mec="black", ms=14, label=f"best momentum: rate {rate_best:.3f}")
    ax_rate.plot(lr_gd, 0.0, "o", color="white", mec="black", ms=8, clip_on=False, label=f"best plain GD: rate {rate_gd:.3f}")
    ax_rate.set(xlabel="learning rate lr", ylabel="momentum β",
                title=f"Worst rate over λ ∈ [{mu:g}, {big_l:g}] (grey: diverges)")
    ax_rate.legend(fontsize=8, loc="upper right")
    return fig
