"""A plotly figure in a notebook that can be redrawn from a training thread.

With ``anywidget`` installed, plotly's ``FigureWidget`` changes traces in place in the browser. Without it,
the figure is shown in an ``ipywidgets.Output`` whose single output is replaced at each redraw, rendered by the
notebook's plotly renderer (the same output a displayed figure produces).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import ipywidgets as widgets
import plotly.graph_objects as go


class LiveFigure:
    """``figure`` is the plotly figure to change inside :meth:`update`; ``view`` is the widget to show."""

    def __init__(self, figure: go.Figure) -> None:
        try:
            self.figure: go.Figure = go.FigureWidget(figure)
            self._output: widgets.Output | None = None
            self.view: widgets.Widget = self.figure
        except ImportError:
            self.figure = figure
            self._output = widgets.Output()
            self.view = self._output
            self._show()

    def _show(self) -> None:
        bundle = self.figure._repr_mimebundle_()
        self._output.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    @contextlib.contextmanager
    def update(self) -> Iterator[go.Figure]:
        """Change ``figure`` inside the block; the view shows all the changes at once when it ends."""
        if self._output is None:
            with self.figure.batch_update():
                yield self.figure
        else:
            yield self.figure
            self._show()
