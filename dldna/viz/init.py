"""Figures of weight initialisation: signals through depth and the distribution of activations per layer, from
the measurements of :mod:`dldna.init.diagnostics`."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from dldna.init.diagnostics import SignalPropagation


def plot_signal_propagation(results: Mapping[str, SignalPropagation], title: str | None = None) -> plt.Figure:
    """Activation std (forward) and gradient std (backward) against layer index, log scale, one line per run:
    the picture of vanishing and exploding signals."""
    fig, (ax_forward, ax_backward) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for name, stats in results.items():
        layers = np.arange(1, len(stats.layers) + 1)
        ax_forward.plot(layers, stats.activation_std, label=name, lw=1.5)
        ax_backward.plot(layers, stats.gradient_std, label=name, lw=1.5)
    ax_forward.set(yscale="log", xlabel="layer (depth)", ylabel="std of activations", title="Forward signal")
    ax_backward.set(yscale="log", xlabel="layer (depth)", ylabel="std of dLoss/d(layer output)", title="Backward signal")
    for ax in (ax_forward, ax_backward):
        ax.grid(alpha=0.3, which="both")
    ax_backward.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    return fig


ZERO_SHARE_APART = 0.1
"""Share of exact zeros above which :func:`plot_activation_histograms` counts them apart instead of drawing them."""


def plot_activation_histograms(
    stats: SignalPropagation, layers: Sequence[int] | None = None, bins: int = 60, title: str | None = None
) -> plt.Figure:
    """Histograms of activation values at a few layers (default: five evenly spaced, 0-based indices), as in
    Glorot & Bengio's Figure 6: watch the distribution collapse to 0 or pile up at saturation with depth.

    Where more than ``ZERO_SHARE_APART`` of a layer's values are exactly 0 (the units a ReLU switches off), the
    zeros are left out of the bars and their share is written in the panel: drawn, their spike would flatten
    every other bar."""
    count = len(stats.layers)
    chosen = list(layers) if layers is not None else sorted(set(np.linspace(0, count - 1, min(5, count)).astype(int)))
    if not chosen or min(chosen) < 0 or max(chosen) >= count:
        raise ValueError(f"Invalid layers: layers={chosen} (indices in [0, {count - 1}])")
    fig, axes = plt.subplots(1, len(chosen), figsize=(2.4 * len(chosen), 2.6), constrained_layout=True, squeeze=False)
    for ax, index in zip(axes[0], chosen):
        values = np.asarray(stats.activation_samples[index])
        zero_share = float(np.mean(values == 0)) if values.size else 0.0
        apart = zero_share > ZERO_SHARE_APART and zero_share < 1
        ax.hist(values[values != 0] if apart else values, bins=bins, density=True, color="tab:blue", alpha=0.8)
        ax.set(title=f"layer {index + 1}", xlabel="activation value", ylabel="density of non-zero values" if apart else "density")
        if apart:
            ax.text(0.97, 0.95, f"{zero_share:.0%} exactly 0\n(not drawn)", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
