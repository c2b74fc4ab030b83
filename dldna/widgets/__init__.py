"""Live widgets (they need a running kernel): a training panel and a toy-surface playground.

Both are thin: they read ipywidgets controls, train through :func:`dldna.train.fit` or
:func:`dldna.landscape.toy.run_optimizer`, and redraw a plotly figure. For pages without a kernel,
:mod:`dldna.viz.sweep` draws the same kind of figure over precomputed runs.
"""

from dldna.widgets.playground import Playground
from dldna.widgets.trainer import RunSettings, TrainerPanel

__all__ = ["Playground", "RunSettings", "TrainerPanel"]
