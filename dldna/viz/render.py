"""How figures reach the reader: live in Jupyter or Colab, and kernel-free on the static website.

The website's builder cannot show plotly's own output type, and plotly's usual HTML either inlines 4.6 MB of
plotly.js per figure or loads it from a CDN (which fails offline). :func:`use_book_renderer` makes every figure
carry both plotly's interactive output (used by JupyterLab, VS Code, Colab) and a small HTML snippet that draws
the figure with the ``plotly.min.js`` the website serves from its own static files.
"""

from __future__ import annotations

import sys
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

from dldna.book.figures import note_plotly_figure

BOOK_RENDERER = "dldna_html"
FIGURE_CONFIG = {"responsive": True, "displaylogo": False}


class _SiteHTMLRenderer(MimetypeRenderer):
    """``text/html`` that expects ``window.Plotly`` to be loaded by the page (the website's static copy)."""

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        note_plotly_figure(fig_dict)
        html = pio.to_html(
            go.Figure(fig_dict), include_plotlyjs=False, include_mathjax=False, full_html=False, config=FIGURE_CONFIG
        )
        return {"text/html": html}


BOOK_TEMPLATE = "dldna"
"""Plotly defaults of the book: axis numbers as powers of ten (10⁻³), never SI prefixes (1m, 100n, 10f)."""
pio.templates[BOOK_TEMPLATE] = go.layout.Template(
    layout=dict(xaxis=dict(exponentformat="power"), yaxis=dict(exponentformat="power"))
)


def use_book_renderer() -> str:
    """Make plotly figures render live and on the static site, with the book's template; returns the renderer
    name now in use."""
    pio.templates.default = f"plotly+{BOOK_TEMPLATE}"
    if "google.colab" in sys.modules:
        pio.renderers.default = "colab"
    else:
        pio.renderers[BOOK_RENDERER] = _SiteHTMLRenderer()
        pio.renderers.default = f"plotly_mimetype+{BOOK_RENDERER}"
    return pio.renderers.default


def use_plain_numbers() -> None:
    """Show NumPy scalars as plain numbers (``1.5``, not ``np.float64(1.5)``) in notebook output.

    myst-nb's ``glue`` formats a number from its plain-text form, which NumPy 2 writes as ``np.float64(...)``;
    with this, a value glued straight from a NumPy computation formats like a Python float.
    """
    import numpy as np
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        formatter = shell.display_formatter.formatters["text/plain"]
        scalar_types = {kind for kind in np.sctypeDict.values() if issubclass(kind, (np.number, np.bool_))}
        for kind in scalar_types:  # each concrete type: they define their own __repr__, which IPython prefers
            formatter.for_type(kind, lambda value, printer, cycle: printer.text(repr(value.item())))


def use_sharp_matplotlib() -> None:
    """Inline matplotlib figures at twice the pixel density, so they stay sharp on high-DPI screens."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("config", "InlineBackend.figure_formats = ['retina']")


STATIC_WIDGET_NOTE = (
    '<div class="admonition note dldna-live-note"><p class="admonition-title">Live controls</p>'
    "<p>{what} These controls run Python each time you move them, so they need a running kernel. "
    "Open this chapter in Colab (the rocket icon at the top of the page) or run it locally with "
    "<code>make lab</code>; the figure with a slider on this page shows precomputed runs of the same settings.</p></div>"
)


def display_live(widget: Any, what: str) -> None:
    """Show an ipywidgets ``widget`` where a kernel runs it, and a short note on the static website instead.

    The output carries both the widget view and an HTML note: Jupyter draws the widget, while the website
    (which cannot run Python) drops the widget view and shows the note, never an error box. In Colab, where
    the reader already has a kernel, the output is the widget alone, so the note can never be shown instead.
    """
    from IPython.display import display

    bundle = dict(widget._repr_mimebundle_())
    if "google.colab" not in sys.modules:
        bundle["text/html"] = STATIC_WIDGET_NOTE.format(what=what)
    display(bundle, raw=True)
