"""Optimizers side by side on a page: a figure of their runs with a slider that highlights one at a time, and a
Markdown table of already formatted results (:mod:`dldna.train.compare` trains the runs)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dldna.history import History
from dldna.viz.training import LOG_AXIS, smooth


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table from already formatted cells, for ``IPython.display.Markdown`` on a page."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError(f"every row must have {len(headers)} cells, one per header")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plotly_comparison(runs: Mapping[str, History], captions: Mapping[str, str] | None = None, max_points: int = 300) -> go.Figure:
    """Training loss of every run (smoothed), with a slider that highlights one run at a time.

    All curves are drawn once and each slider step only changes their opacity and width and the title
    (``captions[name]``), so the figure works on a static page without a kernel.
    """
    if not runs:
        raise ValueError("runs must hold at least one History")
    names = list(runs)
    fig = go.Figure()
    for name in names:
        run = runs[name]
        loss = smooth(run.steps["loss"], max(1, run.steps_per_epoch // 10))
        keep = np.unique(np.linspace(0, len(loss) - 1, min(max_points, len(loss))).astype(int)) if len(loss) else []
        fig.add_scatter(x=np.asarray(keep) + 1, y=loss[keep], name=name, mode="lines")

    def highlight(index: int) -> list[dict]:
        title = f"{names[index]}: {(captions or {}).get(names[index], '')}".rstrip(": ")
        return [
            {"opacity": [1.0 if i == index else 0.2 for i in range(len(names))],
             "line.width": [3 if i == index else 1 for i in range(len(names))]},
            {"title.text": title},
        ]

    steps = [dict(method="update", label=name, args=highlight(i)) for i, name in enumerate(names)]
    first = highlight(0)
    fig.update_traces(opacity=0.2, line_width=1)
    fig.data[0].opacity, fig.data[0].line.width = 1.0, 3
    fig.update_layout(
        title=first[1]["title.text"], height=440, sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="optimizer: "), pad=dict(t=40))],
        xaxis_title="optimizer step", yaxis=dict(LOG_AXIS, title_text="training loss (cross-entropy, smoothed)"),
        margin=dict(l=60, r=20, t=60, b=40),
    )
    return fig
