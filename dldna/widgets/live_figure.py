"""A figure in a notebook that can be redrawn while the code that feeds it runs.

Each redraw hands :meth:`LiveFigure.show` a :class:`~dldna.widgets.figure_content.FigureContent`; the
figure then draws it the way the notebook can display it:

- in Colab, as a PNG image (matplotlib on an off-screen Agg canvas) inside an ``ipywidgets.Output``: Colab
  displays core ipywidgets and images in an ``Output``, but has a long record of showing neither plotly's
  ``FigureWidget`` nor plotly's HTML inside an ``Output`` (plotly.py #2202, colabtools #5889);
- elsewhere, as plotly: a ``FigureWidget`` whose traces change in place when ``anywidget`` is installed,
  otherwise an ``Output`` whose single output is replaced by the figure's usual notebook output.
"""

from __future__ import annotations

import base64
import sys

import ipywidgets as widgets
import plotly.graph_objects as go

from dldna.widgets.figure_content import PNG_WIDTH, FigureContent, to_plotly, to_png


def in_colab() -> bool:
    """Whether this kernel runs in Google Colab."""
    return "google.colab" in sys.modules


class LiveFigure:
    """Shows a :class:`FigureContent` in :attr:`view` and redraws it at each :meth:`show`.

    ``image=None`` draws a PNG in Colab and plotly elsewhere; ``True`` or ``False`` forces one. After a redraw,
    :attr:`content` is what is on screen, and :attr:`png` (image mode) or :attr:`figure` (plotly mode) its
    rendering.
    """

    def __init__(self, content: FigureContent, *, image: bool | None = None) -> None:
        self.image = in_colab() if image is None else image
        self.png: bytes | None = None
        self.figure: go.Figure | None = None
        self._output: widgets.Output | None = None
        if self.image:
            self._output = widgets.Output()
            self.view: widgets.Widget = self._output
        else:
            try:
                self.figure = go.FigureWidget(to_plotly(content))
                self.view = self.figure
            except ImportError:  # FigureWidget needs anywidget
                self._output = widgets.Output()
                self.view = self._output
        self.show(content)

    def show(self, content: FigureContent) -> None:
        """Draw ``content`` in place of what the figure showed."""
        if self.image:
            self.png = to_png(content)
            self._replace_output(
                {"image/png": base64.b64encode(self.png).decode("ascii"), "text/plain": content.title or "figure"},
                {"image/png": {"width": content.width or PNG_WIDTH, "height": content.height}},
            )
        elif self._output is not None:
            self.figure = to_plotly(content)
            self._replace_output(self.figure._repr_mimebundle_(), {})
        else:
            _update_in_place(self.figure, to_plotly(content))
        self.content = content

    def _replace_output(self, data: dict, metadata: dict) -> None:
        self._output.outputs = ({"output_type": "display_data", "data": data, "metadata": metadata},)


def _update_in_place(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Give ``widget`` the traces and layout of ``figure``, sending only what changed to the browser."""
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)  # the widget has it already; validating it again costs a fifth of a second
    with widget.batch_update():
        if len(widget.data) == len(figure.data):
            for shown, new in zip(widget.data, figure.data):
                shown.update(new.to_plotly_json())
        else:
            widget.data = ()
            widget.add_traces(figure.data)
        widget.layout.update(layout)
