"""Figures of training runs: loss and accuracy curves from :class:`~dldna.history.History` objects."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex
from matplotlib.ticker import MaxNLocator
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dldna.history import History
from dldna.train.seeds import spread

LOG_AXIS = dict(type="log", dtick="D2", tickformat="~g")
"""A plotly log axis labelled at 1, 2 and 5 of each decade as plain numbers (0.2, 0.5, 1): plotly's default
labels every digit when a loss spans about one decade, which crowds the axis."""

Runs = Mapping[str, History]


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start), to read noisy step losses."""
    data = np.asarray(values, dtype=float)
    if window <= 1 or len(data) == 0:
        return data
    cumulative = np.cumsum(np.insert(data, 0, 0.0))
    counts = np.minimum(np.arange(1, len(data) + 1), window)
    return (cumulative[1:] - cumulative[np.maximum(np.arange(1, len(data) + 1) - window, 0)]) / counts


def _smoothing_window(run: History) -> int:
    return max(1, run.steps_per_epoch // 10)


def plot_runs(runs: Runs, title: str | None = None, log_loss: bool = True) -> plt.Figure:
    """Training loss per step (smoothed) and test accuracy per epoch, one line per run; diverged runs marked."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for name, run in runs.items():
        steps = np.arange(1, run.num_steps + 1)
        (line,) = ax_loss.plot(steps, smooth(run.steps["loss"], _smoothing_window(run)), label=name, lw=1.4)
        if run.diverged:
            ax_loss.axvline(run.diverged_at + 1, color=line.get_color(), ls=":", lw=1)
            label = f"{name}: diverged at step {run.diverged_at}"
            ax_acc.plot([], [], color=line.get_color(), ls=":", label=label)
        epochs = np.arange(1, len(run.epochs["test_acc"]) + 1)
        ax_acc.plot(epochs, 100 * np.asarray(run.epochs["test_acc"]), "o-", color=line.get_color(), label=name, ms=3)
    if log_loss:
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="optimizer step", ylabel="training loss (cross-entropy)", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.legend(fontsize=8, loc="lower right")
    ax_loss.grid(alpha=0.3)
    ax_acc.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def _padded(curves: Sequence[np.ndarray]) -> np.ndarray:
    """Curves of different lengths (a diverged seed stops early) as rows of one array, padded with NaN."""
    longest = max(len(curve) for curve in curves)
    return np.array([np.pad(np.asarray(c, dtype=float), (0, longest - len(c)), constant_values=np.nan) for c in curves])


def plot_spread(groups: Mapping[str, Sequence[History]], title: str | None = None, log_loss: bool = True) -> plt.Figure:
    """Several seeds per setting: the mean training loss per step (smoothed) and the mean test accuracy per epoch,
    each with a band from the lowest to the highest seed, so a reader sees whether two settings' runs overlap.
    Legend entries give the final test accuracy as mean ± standard deviation and the number of seeds."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(13, 3.8), constrained_layout=True)
    for index, (name, runs) in enumerate(groups.items()):
        if not runs:
            raise ValueError(f"setting {name!r} has no runs")
        style = "-" if index < 10 else "--"  # the colour cycle has ten colours: later settings are dashed
        window = _smoothing_window(runs[0])
        loss = _padded([smooth(run.steps["loss"], window) for run in runs])
        accuracy = 100 * _padded([np.asarray(run.epochs["test_acc"]) for run in runs])
        steps, epochs = np.arange(1, loss.shape[1] + 1), np.arange(1, accuracy.shape[1] + 1)
        final = spread(runs)
        diverged = sum(run.diverged for run in runs)
        label = f"{name}: {final.mean:.1%} ± {final.std:.1%} ({len(runs)} seeds" + (f", {diverged} diverged)" if diverged else ")")
        (line,) = ax_loss.plot(steps, np.nanmean(loss, axis=0), style, lw=1.4, label=label)
        ax_loss.fill_between(steps, np.nanmin(loss, axis=0), np.nanmax(loss, axis=0), color=line.get_color(), alpha=0.2, lw=0)
        ax_acc.plot(epochs, np.nanmean(accuracy, axis=0), "o" + style, ms=3, color=line.get_color(), label=label)
        ax_acc.fill_between(epochs, np.nanmin(accuracy, axis=0), np.nanmax(accuracy, axis=0), color=line.get_color(), alpha=0.2, lw=0)
    if log_loss:
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="optimizer step", ylabel="training loss (cross-entropy)", title="Training loss (mean, band: all seeds)")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy (mean, band: all seeds)")
    ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
    # Beside the data, never over it; a short legend in a readable size, a long one (14 optimizers) smaller to fit.
    ax_acc.legend(fontsize=9 if len(groups) <= 8 else 7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plotly_runs(runs: Runs, title: str | None = None, max_points: int = 400) -> go.Figure:
    """Interactive version of :func:`plot_runs`; step curves are downsampled to ``max_points`` to keep pages
    light (the last step is always kept), and a diverged run says so in its legend entry."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Training loss", "Test accuracy"))
    palette = [to_hex(color) for color in plt.rcParams["axes.prop_cycle"].by_key()["color"]]
    for i, (name, run) in enumerate(runs.items()):
        color = palette[i % len(palette)]
        loss = smooth(run.steps["loss"], _smoothing_window(run))
        keep = np.unique(np.linspace(0, len(loss) - 1, min(max_points, len(loss))).astype(int)) if len(loss) else []
        label = f"{name} (diverged at step {run.diverged_at})" if run.diverged else name
        fig.add_scatter(x=np.asarray(keep) + 1, y=loss[keep], name=label, line=dict(color=color), legendgroup=name, row=1, col=1)
        epochs = np.arange(1, len(run.epochs["test_acc"]) + 1)
        fig.add_scatter(
            x=epochs, y=100 * np.asarray(run.epochs["test_acc"]), name=name, mode="lines+markers",
            line=dict(color=color), legendgroup=name, showlegend=False, row=1, col=2,
        )
    fig.update_yaxes(LOG_AXIS, title_text="training loss", row=1, col=1)
    fig.update_yaxes(title_text="test accuracy (%)", row=1, col=2)
    fig.update_xaxes(title_text="optimizer step", row=1, col=1)
    longest = max((len(run.epochs["test_acc"]) for run in runs.values()), default=0)
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=1 if longest <= 12 else None, row=1, col=2)  # whole epochs
    fig.update_layout(title=title, height=380, margin=dict(l=60, r=20, t=60, b=50), legend=dict(orientation="h", y=-0.25))
    return fig


def show_images(images, labels, classes: Sequence[str], rows: int = 2, cols: int = 8) -> plt.Figure:
    """A grid of images (``(N, 1, H, W)`` in [0, 1]) titled with their class names."""
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), constrained_layout=True)
    for ax, image, label in zip(np.ravel(axes), images, labels):
        ax.imshow(np.asarray(image.detach().cpu()).squeeze(0), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(classes[int(label)], fontsize=8)
        ax.axis("off")
    return fig
