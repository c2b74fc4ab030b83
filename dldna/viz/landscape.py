"""Figures of loss landscapes: interpolation curves, contour plots with a projected path, plotly 3-D surfaces.

They take :class:`dldna.landscape.surface.Surface` results and coordinate arrays; nothing here evaluates a model.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go

from dldna.landscape.surface import Surface


def _check_plane(surface: Surface) -> None:
    if len(surface.axes) != 2:
        raise ValueError(f"surface must be a 2-D plane, got {len(surface.axes)} axes")


def plot_interpolation(curves: Mapping[str, Surface], xlabel: str = "interpolation coefficient a") -> plt.Figure:
    """Loss (left) and accuracy (right) along one or more 1-D slices, one line per named curve."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for label, curve in curves.items():
        if len(curve.axes) != 1:
            raise ValueError(f"curve {label!r} must be 1-D")
        ax_loss.plot(curve.axes[0], curve.loss, label=label)
        ax_acc.plot(curve.axes[0], curve.accuracy * 100, label=label)
    ax_loss.set(xlabel=xlabel, ylabel="loss (cross-entropy, nats)", yscale="log")
    ax_acc.set(xlabel=xlabel, ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_contour(
    surface: Surface,
    ax: plt.Axes | None = None,
    path: np.ndarray | None = None,
    title: str | None = None,
    levels: int | np.ndarray = 20,
    log: bool = True,
    axis_labels: Sequence[str] = ("direction 1 (step)", "direction 2 (step)"),
) -> plt.Axes:
    """Filled contour of a plane's loss (log scale by default), optionally with a path of ``(a, b)`` points.

    ``levels`` is a count or explicit contour levels (in log10 units when ``log``), e.g. to share one colour
    scale between panels.
    """
    _check_plane(surface)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
    values = np.log10(surface.loss) if log else surface.loss
    filled = ax.contourf(surface.axes[0], surface.axes[1], values, levels=levels, cmap="viridis")
    ax.contour(surface.axes[0], surface.axes[1], values, levels=levels, colors="white", linewidths=0.4, alpha=0.5)
    plt.colorbar(filled, ax=ax, label="log10 loss" if log else "loss")
    if path is not None:
        ax.plot(path[:, 0], path[:, 1], "-o", color="tab:red", markersize=2.5, linewidth=1.2, label="trajectory")
        ax.plot(path[-1, 0], path[-1, 1], "*", color="white", markersize=12, markeredgecolor="black")
        ax.legend(loc="upper right", fontsize=8)
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1])
    if title:
        ax.set_title(title)
    return ax


def plotly_surface(surface: Surface, title: str = "Loss surface", log: bool = True, path: np.ndarray | None = None, path_loss: np.ndarray | None = None) -> go.Figure:
    """An interactive 3-D surface of a plane's loss (rotate and zoom on the page; no kernel needed)."""
    _check_plane(surface)
    values = np.log10(surface.loss) if log else surface.loss
    fig = go.Figure(go.Surface(x=surface.axes[0], y=surface.axes[1], z=values, colorscale="Viridis", colorbar={"title": "log10 loss" if log else "loss"}))
    if path is not None and path_loss is not None:
        z = np.log10(path_loss) if log else path_loss
        fig.add_trace(go.Scatter3d(x=path[:, 0], y=path[:, 1], z=z, mode="lines+markers", marker={"size": 2}, line={"color": "red"}, name="trajectory"))
    fig.update_layout(
        title=title,
        scene={"xaxis_title": "direction 1", "yaxis_title": "direction 2", "zaxis_title": "log10 loss" if log else "loss"},
        height=520,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
    )
    return fig
