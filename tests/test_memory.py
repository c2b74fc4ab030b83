"""The memory of a training step: optimizer state after one step, activation memory counted from autograd's
saved tensors, and gradient checkpointing: fewer saved bytes, the same training step (gradients, weights and
batch-norm running statistics)."""

from __future__ import annotations

import copy
import functools
from typing import Callable

import pytest
import torch
from torch import nn

from dldna.models import MLP, ResidualCNN, ResidualMLP, VisionTransformer, set_gradient_checkpointing
from dldna.train.memory import activation_bytes, state_memory


def small_stack() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 4))


def test_state_memory_counts_optimizer_state_bytes() -> None:
    x, y = torch.randn(8, 2), torch.randint(0, 4, (8,))
    table = state_memory(
        small_stack,
        {"sgd": functools.partial(torch.optim.SGD, lr=0.1), "momentum": functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9),
         "adam": functools.partial(torch.optim.Adam, lr=0.01)},
        x,
        y,
    )
    param_bytes = sum(p.numel() * p.element_size() for p in small_stack().parameters())
    assert table["sgd"] == 0
    assert table["momentum"] == param_bytes
    assert 2 * param_bytes <= table["adam"] <= 2 * param_bytes + 64


def summed(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A loss whose backward needs nothing saved, so only the network's own saved tensors are counted."""
    return outputs.sum()


def test_saved_bytes_match_a_hand_count() -> None:
    batch, floats = 5, 4
    stack = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    # the first layer's input, and the ReLU output (kept by the ReLU and, as its input, by the second layer)
    assert activation_bytes(stack, torch.randn(batch, 8), torch.zeros(batch), summed) == batch * (8 + 16) * floats
    residual = ResidualMLP(in_features=8, width=16, depth=4)
    stem = batch * (8 + 16) * floats
    per_block = 2 * batch * 16 * floats  # the branch's ReLU output and the block's output
    assert activation_bytes(residual, torch.randn(batch, 8), torch.zeros(batch), summed) == stem + 4 * per_block
    assert set_gradient_checkpointing(residual) == 4
    # checkpointed: each block keeps only its input, and the head keeps the last block's output
    assert activation_bytes(residual, torch.randn(batch, 8), torch.zeros(batch), summed) == stem + 4 * batch * 16 * floats
    assert all(p.grad is not None for p in residual.parameters())


def test_mode_is_restored_and_plain_models_are_refused() -> None:
    model = ResidualMLP(in_features=8, width=8, depth=1).eval()
    activation_bytes(model, torch.randn(3, 8), torch.tensor([0, 1, 2]))
    assert not model.training
    with pytest.raises(ValueError, match="BlockSequence"):
        set_gradient_checkpointing(MLP())


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 4) -> list[torch.Tensor]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for step in range(steps):
        rows = slice(4 * step, 4 * step + 8)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        optimizer.step()
    return [t.detach().clone() for t in (*model.parameters(), *model.buffers())]


MODELS: dict[str, Callable[[], nn.Module]] = {
    "residual MLP with batch norm": lambda: ResidualMLP(in_features=12, width=10, depth=3, norm="batch"),
    "residual CNN with batch norm": lambda: ResidualCNN(in_channels=3, width=4, blocks=2),
    "vision transformer": lambda: VisionTransformer(image_size=8, patch=4, dim=12, depth=2, heads=2),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_checkpointed_training_equals_plain_training(name: str) -> None:
    torch.manual_seed(0)
    plain = MODELS[name]().double()
    checkpointed = copy.deepcopy(plain)
    set_gradient_checkpointing(checkpointed)
    shape = (24, 12) if "MLP" in name else (24, 3, 8, 8)
    x, y = torch.randn(shape, dtype=torch.float64), torch.randint(0, 10, (24,))
    expected, actual = _train(plain, x, y), _train(checkpointed, x, y)
    for want, got in zip(expected, actual):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    counters = [b for n, b in checkpointed.named_buffers() if n.endswith("num_batches_tracked")]
    assert all(int(c) == 4 for c in counters), "a recomputed forward pass must not count the batch again"
    with torch.no_grad():
        torch.testing.assert_close(checkpointed.eval()(x), plain.eval()(x), rtol=1e-12, atol=1e-12)
