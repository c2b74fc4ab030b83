"""dldna: the companion package of the interactive book *How Deep Networks Are Optimized*.

Organised by concept: ``data`` (datasets as device tensors), ``models``, ``train`` (the training loops),
``optim`` (optimizers written from their equations), ``init``, ``norm``, ``linalg`` (matrix-free eigensolvers
and trace estimators), ``landscape`` (network loss landscapes), ``toy`` (2-D surfaces for the optimizer
chapters), ``dynamics``, ``viz``, ``widgets``, ``browser`` (the website's in-browser trainer), ``exercises`` and
``book`` (glued numbers, checked claims, the Colab edition). Import submodules explicitly, e.g.
``from dldna.optim import Adam``.
"""

from dldna.config import Budget, budget, device, set_seed

__version__ = "0.1.0"

__all__ = ["Budget", "__version__", "budget", "device", "set_seed", "setup_notebook"]


def setup_notebook(seed: int = 0) -> Budget:
    """The first cell of every chapter: figures that render live and on the website (and, in the book build,
    are checked for a title and axis labels), NumPy numbers that ``glue`` can format, a fixed seed, and the
    compute budget for this machine, printed so the page says what ran."""
    import torch

    from dldna import viz
    from dldna.book.figures import check_figures_in_every_cell

    viz.use_book_renderer()
    check_figures_in_every_cell()
    viz.use_sharp_matplotlib()
    viz.use_plain_numbers()
    set_seed(seed)
    active = budget()
    print(f"dldna {__version__}, torch {torch.__version__}, device: {active.device}. {active.describe()}")
    return active
