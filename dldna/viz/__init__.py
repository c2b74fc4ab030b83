"""Figures for the book: functions that take results (Histories, arrays) and return matplotlib or plotly
figures. Nothing here trains or measures; every plot of the package lives here, one module per subject, named
after the module whose results it draws: :mod:`~dldna.viz.training` and :mod:`~dldna.viz.sweep` (runs),
:mod:`~dldna.viz.compare` (optimizers side by side), :mod:`~dldna.viz.landscape`, :mod:`~dldna.viz.toy`,
:mod:`~dldna.viz.init` and :mod:`~dldna.viz.norm`."""

from dldna.viz.render import display_live, use_book_renderer, use_plain_numbers, use_sharp_matplotlib
from dldna.viz.sweep import html_size, sweep_slider
from dldna.viz.training import plot_runs, plot_spread, plotly_runs, show_images, smooth

__all__ = ["display_live", "html_size", "sweep_slider", "plot_runs", "plot_spread", "plotly_runs", "show_images", "smooth", "use_book_renderer", "use_plain_numbers", "use_sharp_matplotlib"]
