"""Where code runs and how much it runs: device choice, seeding, and the compute budget of a chapter.

Every chapter asks :func:`budget` how much data and how many epochs to use, so the same notebook runs in a
few minutes on a 2-core CPU and at full size on a GPU, and says on the page which of the two it did.
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
        chosen = torch.device(choice)
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={str(choice)!r} was asked for, but torch sees no CUDA device")
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
