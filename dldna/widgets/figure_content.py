"""What a live figure shows, written once and rendered two ways: as a plotly figure, or as a PNG drawn by
matplotlib's Agg canvas.

The live widgets describe each redraw as a :class:`FigureContent` (panels of lines and contour maps with their
titles, axis labels and ranges). :func:`to_plotly` and :func:`to_matplotlib` turn the same content into either
library's figure, so the data a reader sees does not depend on which one their notebook can display.
:func:`to_png` renders off-screen on a figure of its own: it neither changes nor uses pyplot's backend.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

LINE_MODES = ("lines", "markers", "lines+markers")
MATPLOTLIB_MARKERS = {"circle": "o", "x": "x", "star": "*"}
PIXELS_PER_INCH = 100
PNG_WIDTH = 900


@dataclass(frozen=True, eq=False)
class Line:
    """Points joined by a line, drawn as markers, or both (``mode`` as in plotly)."""

    x: Sequence[float]
    y: Sequence[float]
    mode: str = "lines"
    color: str | None = None
    marker: str = "circle"
    size: float = 6.0

    def __post_init__(self) -> None:
        if self.mode not in LINE_MODES:
            raise ValueError(f"mode must be one of {LINE_MODES}, got {self.mode!r}")
        if self.marker not in MATPLOTLIB_MARKERS:
            raise ValueError(f"marker must be one of {sorted(MATPLOTLIB_MARKERS)}, got {self.marker!r}")


@dataclass(frozen=True, eq=False)
class ContourMap:
    """Filled contours of ``z`` (rows along ``y``, columns along ``x``) with a colour bar titled ``label``."""

    x: Sequence[float]
    y: Sequence[float]
    z: np.ndarray
    label: str
    levels: int = 30


@dataclass(frozen=True, eq=False)
class Panel:
    """One set of axes: its traces, title, axis labels, and optionally a log y axis and fixed ranges."""

    title: str
    xlabel: str
    ylabel: str
    traces: tuple[Line | ContourMap, ...]
    log_y: bool = False
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None


@dataclass(frozen=True, eq=False)
class FigureContent:
    """A figure: panels side by side under one title, ``width`` by ``height`` pixels (``width=None``: plotly
    fills the notebook's width and the PNG is :data:`PNG_WIDTH` pixels wide)."""

    panels: tuple[Panel, ...]
    title: str = ""
    height: int = 330
    width: int | None = None


def to_plotly(content: FigureContent) -> go.Figure:
    """The content as a plotly figure (one subplot per panel)."""
    figure = make_subplots(rows=1, cols=len(content.panels), subplot_titles=[panel.title for panel in content.panels])
    for column, panel in enumerate(content.panels, start=1):
        for trace in panel.traces:
            figure.add_trace(_plotly_trace(trace), row=1, col=column)
        figure.update_xaxes(title_text=panel.xlabel, range=panel.x_range, row=1, col=column)
        figure.update_yaxes(
            title_text=panel.ylabel, type="log" if panel.log_y else "linear", range=_plotly_y_range(panel), row=1, col=column
        )
    figure.update_layout(
        title=content.title, height=content.height, width=content.width, showlegend=False,
        margin=dict(l=60, r=20, t=60, b=45),
    )
    return figure


def _plotly_trace(trace: Line | ContourMap) -> go.Scatter | go.Contour:
    if isinstance(trace, ContourMap):
        return go.Contour(
            x=np.asarray(trace.x), y=np.asarray(trace.y), z=trace.z, colorscale="Viridis", ncontours=trace.levels,
            colorbar=dict(title=dict(text=trace.label)), hoverinfo="skip",
        )
    style = dict(color=trace.color) if trace.color else {}
    return go.Scatter(
        x=np.asarray(trace.x), y=np.asarray(trace.y), mode=trace.mode, line=style,
        marker=dict(symbol=trace.marker, size=trace.size, **style),
    )


def _plotly_y_range(panel: Panel) -> list[float] | None:
    """The panel's y range as plotly takes it (in powers of ten on a log axis)."""
    if panel.y_range is None:
        return None
    return [float(np.log10(value)) for value in panel.y_range] if panel.log_y else list(panel.y_range)


def to_matplotlib(content: FigureContent) -> Figure:
    """The content as a matplotlib figure on an Agg canvas of its own (pyplot is never involved)."""
    figure = Figure(
        figsize=((content.width or PNG_WIDTH) / PIXELS_PER_INCH, content.height / PIXELS_PER_INCH),
        dpi=PIXELS_PER_INCH, layout="constrained",
    )
    FigureCanvasAgg(figure)
    for ax, panel in zip(figure.subplots(1, len(content.panels), squeeze=False)[0], content.panels):
        for trace in panel.traces:
            _draw_matplotlib(ax, trace)
        if panel.log_y:
            ax.set_yscale("log")
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
        if panel.x_range is not None:
            ax.set_xlim(panel.x_range)
        if panel.y_range is not None:
            ax.set_ylim(panel.y_range)
        if not any(isinstance(t, ContourMap) for t in panel.traces):
            ax.grid(alpha=0.3)
    if content.title:
        figure.suptitle(content.title, fontsize=11)
    return figure


def _draw_matplotlib(ax: Axes, trace: Line | ContourMap) -> None:
    if isinstance(trace, ContourMap):
        filled = ax.contourf(trace.x, trace.y, trace.z, levels=trace.levels, cmap="viridis")
        ax.figure.colorbar(filled, ax=ax, label=trace.label)
        return
    # plotly sizes markers in pixels, matplotlib in points (1/72 inch)
    ax.plot(
        trace.x, trace.y,
        linestyle="-" if "lines" in trace.mode else "none",
        marker=MATPLOTLIB_MARKERS[trace.marker] if "markers" in trace.mode else None,
        markersize=trace.size * 72 / PIXELS_PER_INCH, color=trace.color, linewidth=1.5,
    )


def to_png(content: FigureContent, scale: float = 2.0) -> bytes:
    """The content as PNG bytes, ``scale`` times its pixel size (2: sharp on high-density screens)."""
    buffer = io.BytesIO()
    to_matplotlib(content).savefig(buffer, format="png", dpi=PIXELS_PER_INCH * scale)
    return buffer.getvalue()
