"""Figures of normalisation: which elements of an ``(N, C, H, W)`` batch share one mean and variance under each
norm (:func:`dldna.norm.shared_statistics`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from dldna.norm import NORM_KINDS, reduction_axes, shared_statistics


def plot_shared_statistics(batch_size: int = 4, channels: int = 6, num_groups: int = 3) -> plt.Figure:
    """Four panels, one per norm: a grid of samples (rows) by channels (columns), each cell one feature map; the
    shaded cells share one mean and variance with the outlined cell (spatial positions are always shared)."""
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.0), constrained_layout=True)
    for ax, kind in zip(axes, NORM_KINDS):
        mask = shared_statistics(kind, batch_size, channels, num_groups)
        ax.imshow(mask, cmap="Blues", vmin=-0.3, vmax=1.3)
        ax.add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, lw=2.5, ec="black"))
        ax.set_xticks(np.arange(channels) - 0.5, minor=True)
        ax.set_yticks(np.arange(batch_size) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="minor", length=0)
        ax.set(xticks=range(channels), yticks=range(batch_size), xlabel="channel C", ylabel="sample N")
        title = f"{kind} norm" + (f" ({num_groups} groups)" if kind == "group" else "")
        ax.set_title(f"{title}\naxes {reduction_axes(kind)} of (N, C, H, W)", fontsize=9)
    return fig
