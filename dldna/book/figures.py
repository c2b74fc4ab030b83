"""Figures a reader can read: every figure has a title and every plotted axis a label.

In the book build (:func:`dldna.book.strict`) each cell ends with a check of the matplotlib figures it leaves
open (the ones the notebook is about to show) and of the plotly figures it displayed; a figure that breaks the
rules stops the build with one sentence naming what is missing. Outside the build nothing is checked.
"""

from __future__ import annotations

import ast
from typing import Any

from dldna.book import strict

_unreadable_plotly: list[str] = []


class UnreadableFigure(ValueError):
    """A figure of the book without a title or with an unlabelled axis."""


def _has_data(ax: Any) -> bool:
    return bool(ax.lines or ax.collections or ax.images or ax.patches or ax.containers)


def _neighbours(ax: Any, which: str) -> list[Any]:
    """The plots in the same grid column (for ``"x"``) or row (for ``"y"``) as ``ax``: one label at the edge of
    a row or column of panels is the usual way to label them all."""
    spec = ax.get_subplotspec()
    if spec is None:
        return []
    span = (lambda s: s.colspan) if which == "x" else (lambda s: s.rowspan)
    return [other for other in ax.figure.axes
            if (o := other.get_subplotspec()) is not None and o.get_gridspec() is spec.get_gridspec() and span(o) == span(spec)]


def _labelled(ax: Any, which: str) -> bool:
    """Does ``ax``, an axes sharing that axis with it, or a panel in its row (y) or column (x) carry the label?"""
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    candidates = [*shared.get_siblings(ax), *_neighbours(ax, which)]
    return any((a.get_xlabel() if which == "x" else a.get_ylabel()).strip() for a in candidates)


def matplotlib_problems(figure: Any) -> list[str]:
    """What a reader would miss in a matplotlib ``figure``: a title (the figure's own, or one on every plot)
    and the labels of the x and y axes of every plot that shows data (colour bars and hidden axes excepted)."""
    plots = [ax for ax in figure.axes if ax.axison and ax.get_label() != "<colorbar>" and _has_data(ax)]
    problems = []
    suptitle = figure._suptitle.get_text().strip() if figure._suptitle is not None else ""
    if plots and not suptitle and not all(ax.get_title().strip() for ax in plots):
        problems.append("a title (fig.suptitle(...) or a title on every plot)")
    for index, ax in enumerate(plots):
        name = f"plot {index + 1}" + (f" ({ax.get_title()!r})" if ax.get_title() else "")
        problems += [f"the {which} label of {name}" for which in ("x", "y") if ax.name != "3d" and not _labelled(ax, which)]
    return problems


_PLOTTED_TYPES = ("scatter", "scattergl", "bar", "histogram", "box", "violin", "heatmap", "contour")


def plotly_problems(figure: dict[str, Any]) -> list[str]:
    """What a reader would miss in a plotly figure (as a dict): a title (the layout's, or subplot titles) and
    the titles of the x and y axes that carry traces."""
    layout = figure.get("layout", {})
    title = (layout.get("title") or {}).get("text")
    subplot_titles = [a for a in layout.get("annotations", []) if a.get("xref") == "paper" and a.get("text")]
    problems = [] if title or subplot_titles else ["a title (layout.title or subplot titles)"]
    used = {(t.get("xaxis", "x"), t.get("yaxis", "y")) for t in figure.get("data", []) if t.get("type", "scatter") in _PLOTTED_TYPES}
    for axis in sorted({name for pair in used for name in pair}):
        key = f"{axis[0]}axis{axis[1:]}"
        if not ((layout.get(key) or {}).get("title") or {}).get("text"):
            problems.append(f"the title of {key}")
    return problems


def note_plotly_figure(figure: dict[str, Any]) -> None:
    """Remember what a displayed plotly figure lacks; the end-of-cell check reports it (errors raised while a
    figure is displayed are swallowed by IPython, so they cannot stop the build from there)."""
    problems = plotly_problems(figure)
    if problems and strict():
        title = ((figure.get("layout", {}).get("title") or {}).get("text")) or "untitled"
        _unreadable_plotly.append(f"plotly figure {title!r} lacks {', '.join(problems)}")


def check_cell_figures() -> None:
    """Raise :class:`UnreadableFigure` for the figures of the cell that just ran which break the book's rules."""
    import matplotlib.pyplot as plt

    found = [f"matplotlib figure {n} lacks {', '.join(p)}" for n in plt.get_fignums() if (p := matplotlib_problems(plt.figure(n)))]
    found += _unreadable_plotly
    _unreadable_plotly.clear()
    if found:
        plt.close("all")
        raise UnreadableFigure("; ".join(found) + ". Add them so that a reader of the page can read the figure.")


class _CheckFiguresAtCellEnd(ast.NodeTransformer):
    """Ends every cell with :func:`check_cell_figures`, keeping the cell's last expression as its displayed value."""

    def visit_Module(self, node: ast.Module) -> ast.Module:
        check = ast.parse("__import__('dldna.book.figures', fromlist=['check']).check_cell_figures()").body
        if node.body and isinstance(node.body[-1], ast.Expr):
            last = node.body.pop()
            keep = ast.Assign(targets=[ast.Name("_dldna_cell_value", ast.Store())], value=last.value)
            node.body += [keep, *check, ast.Expr(ast.Name("_dldna_cell_value", ast.Load()))]
        else:
            node.body += check
        return ast.fix_missing_locations(node)


def check_figures_in_every_cell() -> None:
    """In the book build, make every cell of this kernel end with :func:`check_cell_figures`."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None and strict() and not any(isinstance(t, _CheckFiguresAtCellEnd) for t in shell.ast_transformers):
        shell.ast_transformers.append(_CheckFiguresAtCellEnd())
