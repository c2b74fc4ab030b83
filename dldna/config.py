"""Where code runs and how much it runs: device choice, seeding, and the compute budget of a chapter.

Every chapter asks :func:`budget` how much data, how many epochs and how many seeds an experiment uses, so the
same notebook runs in a few minutes on a 2-core CPU and at full size on a GPU, and says on the page which of
the two it did. The sizes of the experiments whose outcome a chapter states are written once, in
:data:`EXPERIMENTS`, for both budgets.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_DEVICE_ENV = "DLDNA_DEVICE"
_BUDGET_ENV = "DLDNA_BUDGET"


def device(preferred: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``preferred`` if given, else ``$DLDNA_DEVICE``, else cuda, then mps, then cpu."""
    choice = preferred if preferred is not None else os.environ.get(_DEVICE_ENV)
    if choice is not None:
        fix = f"pass device='cpu', or leave device (and ${_DEVICE_ENV}) unset to use the best device there is"
        try:
            chosen = torch.device(choice)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device={str(choice)!r} is not a device torch knows: {fix}") from error
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={str(choice)!r} was asked for, but torch sees no CUDA device: {fix}")
        if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(choice)!r} was asked for, but torch sees {torch.cuda.device_count()} CUDA device(s): {fix}")
        mps = getattr(torch.backends, "mps", None)
        if chosen.type == "mps" and not (mps is not None and mps.is_available()):
            raise ValueError(f"device={str(choice)!r} was asked for, but torch sees no Apple MPS device: {fix}")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that model initialisation and runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Size:
    """How much one experiment runs: training and test images (``None``: the whole split), epochs and seeds."""

    train: int | None
    test: int | None
    epochs: int
    seeds: int = 1

    def describe(self) -> str:
        """``"all 60,000 training and all 10,000 test images, 10 epochs, 3 seeds"``: what ran, for the page."""
        train = "all 60,000" if self.train is None else f"{self.train:,}"
        test = "all 10,000" if self.test is None else f"{self.test:,}"
        seeds = f"{self.seeds} seeds" if self.seeds > 1 else "one seed"
        return f"{train} training and {test} test images, {self.epochs} epoch{'s' * (self.epochs != 1)}, {seeds}"


EXPERIMENTS: dict[str, dict[str, Size]] = {
    # "<chapter>.<experiment>": {"cpu": Size(...), "full": Size(...)}, in the chapters' reading order
    "getting_started.first-run": {"cpu": Size(None, None, 8), "full": Size(None, None, 15)},
    "optimizers.classic": {"cpu": Size(None, None, 4, 3), "full": Size(None, None, 10, 3)},
    "optimizers.sweep": {"cpu": Size(None, None, 3), "full": Size(None, None, 6)},
    "modern_optimizers.weight-decay": {"cpu": Size(None, None, 2, 3), "full": Size(None, None, 10, 3)},
    "modern_optimizers.tuned": {"cpu": Size(50_000, None, 4, 3), "full": Size(50_000, None, 16, 3)},
    "modern_optimizers.averaging": {"cpu": Size(50_000, None, 4, 3), "full": Size(50_000, None, 20, 3)},
    "optimizers_at_scale.fashion": {"cpu": Size(2_000, 1_000, 3, 3), "full": Size(None, None, 10, 3)},
    "optimizers_at_scale.cifar": {"cpu": Size(None, None, 15), "full": Size(None, None, 15)},
    "dynamics.phases": {"cpu": Size(None, None, 2), "full": Size(None, None, 5)},
    "dynamics.depth": {"cpu": Size(None, None, 1, 3), "full": Size(None, None, 1, 3)},
    "dynamics.schedules": {"cpu": Size(None, None, 2, 3), "full": Size(None, None, 5, 3)},
    "dynamics.remedies": {"cpu": Size(None, None, 2, 3), "full": Size(None, None, 5, 3)},
    "initialization.schemes": {"cpu": Size(20_000, None, 2, 3), "full": Size(None, None, 10, 3)},
    "normalization.sigmoid": {"cpu": Size(None, None, 2, 3), "full": Size(None, None, 10, 3)},
    "normalization.learning-rates": {"cpu": Size(10_000, None, 2, 3), "full": Size(None, None, 5, 3)},
    "normalization.small-batch": {"cpu": Size(2_000, None, 2, 3), "full": Size(20_000, None, 2, 3)},
    "landscape.trained": {"cpu": Size(None, None, 4), "full": Size(None, None, 20)},
    "landscape.small-batch": {"cpu": Size(None, None, 8, 3), "full": Size(None, None, 10, 3)},
    "landscape.large-batch": {"cpu": Size(None, None, 16, 3), "full": Size(None, None, 60, 3)},
    "landscape.skip": {"cpu": Size(None, None, 2, 3), "full": Size(None, None, 10, 3)},
    "landscape.trajectories": {"cpu": Size(None, None, 3), "full": Size(None, None, 10)},
}
"""The sizes of the book's experiments whose outcome a chapter states, by name, under the ``cpu`` and ``full``
budgets: the one place that says how much each conclusion rests on. :meth:`Budget.size` reads it."""


@dataclass(frozen=True)
class Budget:
    """How much compute a chapter may spend: ``full`` on a GPU, ``cpu`` on a laptop or CI machine.

    ``pick(cpu=..., full=...)`` returns the value for the active budget, so a notebook states both sizes once.
    """

    name: str
    device: torch.device

    @property
    def full(self) -> bool:
        return self.name == "full"

    def pick(self, *, cpu: T, full: T) -> T:
        return full if self.full else cpu

    def size(self, name: str) -> Size:
        """The size of the declared experiment ``name`` under this budget (see :data:`EXPERIMENTS`)."""
        if name not in EXPERIMENTS:
            known = ", ".join(sorted(EXPERIMENTS)) or "none yet"
            raise KeyError(f"no experiment {name!r} is declared in dldna.config.EXPERIMENTS (declared: {known})")
        return EXPERIMENTS[name][self.name]

    def describe(self) -> str:
        """One sentence for the page saying what ran."""
        if self.full:
            return f"This page ran at full size on {self.device.type.upper()}."
        return (
            f"This page ran on {self.device.type.upper()} with the reduced CPU budget "
            "(fewer samples and epochs); on a GPU the same cells run at full size."
        )


def budget(name: str | None = None) -> Budget:
    """The active budget: ``name``, else ``$DLDNA_BUDGET``, else ``full`` on CUDA and ``cpu`` elsewhere."""
    dev = device()
    chosen = name or os.environ.get(_BUDGET_ENV) or ("full" if dev.type == "cuda" else "cpu")
    if chosen not in ("cpu", "full"):
        raise ValueError(f"budget name must be 'cpu' or 'full', got {chosen!r}")
    return Budget(chosen, dev)
