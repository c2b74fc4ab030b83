"""Device and budget choice: explicit arguments, environment variables, defaults and clear errors."""

from __future__ import annotations

import pytest
import torch

import dldna
from dldna.config import budget, device


def test_device_follows_argument_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLDNA_DEVICE", "cpu")
    assert device() == torch.device("cpu")
    assert device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            device("cuda")
        monkeypatch.setenv("DLDNA_DEVICE", "cuda:0")
        with pytest.raises(ValueError, match="cuda:0"):
            device()


def test_budget_follows_name_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLDNA_DEVICE", "cpu")
    monkeypatch.delenv("DLDNA_BUDGET", raising=False)
    default = budget()
    assert default.name == "cpu" and not default.full and default.pick(cpu=1, full=2) == 1
    assert "reduced CPU budget" in default.describe()
    monkeypatch.setenv("DLDNA_BUDGET", "full")
    full = budget()
    assert full.full and full.pick(cpu=1, full=2) == 2 and full.describe() == "This page ran at full size on CPU."
    assert budget("cpu").name == "cpu"
    with pytest.raises(ValueError, match="'cpu' or 'full'"):
        budget("huge")


def test_set_seed_repeats_initialisation() -> None:
    dldna.set_seed(3)
    first = torch.randn(4)
    dldna.set_seed(3)
    assert torch.equal(first, torch.randn(4))
