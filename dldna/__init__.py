"""dldna: the companion package of the interactive book *How Deep Networks Are Optimized*.

Organised by concept: ``data`` (datasets as device tensors), ``models``, ``train`` (the one training loop),
``optim`` (optimizers written from their equations), ``init``, ``norm``, ``landscape``, ``dynamics``,
``viz``, ``widgets`` and ``exercises``. Import submodules explicitly, e.g. ``from dldna.optim import Adam``.
"""

from dldna.config import budget, device, set_seed

__version__ = "0.1.0"

__all__ = ["__version__", "budget", "device", "set_seed"]
