"""Slider figures over precomputed training runs, interactive on a static page (no kernel).

:func:`sweep_slider` takes the Histories of a sweep (for example from :func:`dldna.train.sweep.sweep`) and
draws training loss and test accuracy with a slider over one hyperparameter (say the learning rate), one
line per value of a second (say β₁), and buttons for a third (say the batch size). The slider restyles only
the traces' ``y`` values and ``name``s and the buttons only their visibility, so the two controls combine
freely in the browser. Curves are smoothed and downsampled to ``max_points`` points so the page stays small;
:func:`html_size` measures what a figure adds to a page.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from dldna.history import History
from dldna.viz.training import LOG_AXIS, smooth


def _setting(run: History, name: str) -> Any:
    """A run's value of ``name``: a hyperparameter, ``batch_size``, or a ``betas`` entry as ``beta1``/``beta2``."""
    hyper = run.config.get("hyperparameters", {})
    if name in hyper:
        return hyper[name]
    if name in ("beta1", "beta2") and "betas" in hyper:
        return hyper["betas"][int(name[-1]) - 1]
    if name in run.config:
        return run.config[name]
    raise ValueError(f"run {run.config.get('optimizer', '?')} has no setting {name!r} (hyperparameters: {sorted(hyper)})")


def _label(name: str, value: Any) -> str:
    return f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"


def _curve(run: History, keep: np.ndarray) -> list[float | None]:
    """The run's smoothed training loss at the step indices ``keep``; ``None`` past its last finite step."""
    loss = np.asarray(run.steps["loss"], dtype=float)
    finite = int(np.argmax(~np.isfinite(loss))) if not np.isfinite(loss).all() else len(loss)
    smoothed = smooth(loss[:finite], max(1, run.steps_per_epoch // 10))
    return [float(smoothed[i]) if i < finite else None for i in keep]


def sweep_slider(
    runs: Sequence[History],
    slider: str = "lr",
    lines: str | None = None,
    groups: str | None = None,
    *,
    max_points: int = 200,
    title: str | None = None,
) -> go.Figure:
    """Training loss per epoch (left, log scale) and test accuracy (right) of ``runs``, with a slider over
    the values of ``slider``, one line per value of ``lines`` and one button per value of ``groups``.

    Each run must have a distinct combination of the three settings. Diverged runs end where their loss
    stopped being finite and say so in the legend. Step curves keep at most ``max_points`` points.
    """
    if not runs:
        raise ValueError("runs must hold at least one History")
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    axes = [name for name in (slider, lines, groups) if name is not None]
    if len(set(axes)) != len(axes):
        raise ValueError(f"slider, lines and groups must name different settings, got {axes}")
    keys = [tuple(_setting(run, name) if name else None for name in (slider, lines, groups)) for run in runs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two runs share the same {', '.join(axes)}: pass a setting that tells them apart")
    by_key = dict(zip(keys, runs))
    slider_values, line_values, group_values = (sorted({key[i] for key in keys}) for i in range(3))

    # One trace pair (loss, accuracy) per (group, line); a trace keeps its x across slider values.
    pairs = [(group, line) for group in group_values for line in line_values]
    step_index: dict[tuple[Any, Any], np.ndarray] = {}
    epoch_count: dict[tuple[Any, Any], int] = {}
    for group, line in pairs:
        members = [by_key[(value, line, group)] for value in slider_values if (value, line, group) in by_key]
        longest = max((run.num_steps for run in members), default=0)
        step_index[(group, line)] = np.unique(np.linspace(0, max(longest - 1, 0), min(max_points, max(longest, 1))).astype(int))
        epoch_count[(group, line)] = max((len(run.epochs["test_acc"]) for run in members), default=0)

    figure = make_subplots(rows=1, cols=2, subplot_titles=("Training loss (smoothed)", "Test accuracy"))
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    first = slider_values[0]
    for group, line in pairs:
        color = palette[line_values.index(line) % len(palette)]
        visible = group == group_values[0]
        keep = step_index[(group, line)]
        spe = next(r.steps_per_epoch for v in slider_values if (r := by_key.get((v, line, group))) is not None)
        name = _label(lines, line) if lines else "run"
        figure.add_scatter(x=(keep + 1) / spe, y=[None] * len(keep), name=name, line=dict(color=color), legendgroup=name, visible=visible, row=1, col=1)
        epochs = np.arange(1, epoch_count[(group, line)] + 1)
        figure.add_scatter(x=epochs, y=[None] * len(epochs), name=name, mode="lines+markers", line=dict(color=color),
                           legendgroup=name, showlegend=False, visible=visible, row=1, col=2)

    def restyle_for(value: Any) -> dict[str, list[Any]]:
        ys, names = [], []
        for group, line in pairs:
            run = by_key.get((value, line, group))
            name = _label(lines, line) if lines else "run"
            epochs = epoch_count[(group, line)]
            if run is None:
                loss, accuracy, name = [None] * len(step_index[(group, line)]), [None] * epochs, f"{name} (not run)"
            else:
                loss = _curve(run, step_index[(group, line)])
                accuracy = [100 * a for a in run.epochs["test_acc"]] + [None] * (epochs - len(run.epochs["test_acc"]))
                if run.diverged:
                    name = f"{name} (diverged at step {run.diverged_at})"
            ys += [loss, accuracy]
            names += [name, name]
        return {"y": ys, "name": names}

    initial = restyle_for(first)
    for trace, values, name in zip(figure.data, initial["y"], initial["name"]):
        trace.update(y=values, name=name)
    figure.update_layout(
        sliders=[
            dict(
                active=0,
                currentvalue=dict(prefix=f"{slider} = "),
                pad=dict(t=50),
                steps=[dict(method="restyle", label=f"{v:.3g}" if isinstance(v, float) else str(v), args=[restyle_for(v)]) for v in slider_values],
            )
        ]
    )
    if groups is not None:
        buttons = [
            dict(method="restyle", label=_label(groups, g), args=[{"visible": [pair[0] == g for pair in pairs for _ in range(2)]}])
            for g in group_values
        ]
        figure.update_layout(updatemenus=[dict(type="buttons", direction="right", buttons=buttons, x=0.0, xanchor="left", y=1.14, yanchor="bottom")])
    figure.update_xaxes(title_text="epoch", row=1, col=1)
    figure.update_xaxes(title_text="epoch", dtick=1, row=1, col=2)
    figure.update_yaxes(LOG_AXIS, title_text="cross-entropy", row=1, col=1)
    figure.update_yaxes(title_text="test accuracy (%)", row=1, col=2)
    # Title on top, then one row with the buttons (left) and the legend (right), then the plots, then the slider:
    # nothing overlaps at the website's text width (about 700 px) or wider.
    figure.update_layout(
        title=dict(text=title, y=0.98, yanchor="top"), height=520, margin=dict(l=60, r=20, t=130, b=40),
        legend=dict(orientation="h", x=1.0, xanchor="right", y=1.14, yanchor="bottom"),
    )
    return figure


def html_size(figure: go.Figure) -> int:
    """Bytes the figure adds to a page (its HTML and data, without plotly.js itself)."""
    return len(pio.to_html(figure, include_plotlyjs=False, full_html=False).encode())
