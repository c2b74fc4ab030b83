"""Live widgets (they need a running kernel): a training panel and a toy-surface playground.

Both are thin: they read ipywidgets controls, train through :func:`dldna.train.fit` (or ``fit_fast``) or
:func:`dldna.toy.run_optimizer`, and redraw a figure whose content is written once and drawn as
plotly, or as a PNG image in Colab (:mod:`dldna.widgets.live_figure`). For pages without a kernel,
:mod:`dldna.viz.sweep` draws the same kind of figure over precomputed runs.
"""

from dldna.widgets.playground import Playground
from dldna.widgets.trainer import PanelSize, RunSettings, TrainerPanel, panel_size

__all__ = ["PanelSize", "Playground", "RunSettings", "TrainerPanel", "panel_size"]
