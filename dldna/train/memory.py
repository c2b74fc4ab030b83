"""What a training step keeps in memory besides the weights: the optimizer's state and the activations autograd
saves for the backward pass.

:func:`state_memory` counts the bytes of each optimizer's state (:func:`dldna.optim.state_bytes`) after one step.
Every tensor the forward pass saves for the backward pass goes through autograd's saved-tensor hooks, so
:func:`activation_bytes`, counting the bytes of their storages (each storage once, parameters and buffers left
out), measures the activation memory of a step exactly, on any device: the number that batch size, depth and
gradient checkpointing change.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from dldna.optim import state_bytes
from dldna.train.run import LossFn, training_mode


def state_memory(
    model_fn: Callable[[], nn.Module],
    optimizers: Mapping[str, Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]],
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn = F.cross_entropy,
) -> dict[str, int]:
    """Bytes of optimizer state each optimizer holds for ``model_fn()`` after one step on ``(x, y)``.

    State is created lazily at the first step, so one step is taken; the count comes from
    :func:`dldna.optim.state_bytes` and excludes the parameters and gradients themselves.
    """
    table = {}
    for name, make in optimizers.items():
        model = model_fn().to(x.device)
        optimizer = make(model.parameters())
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step(lambda: loss_fn(model(x), y))
        table[name] = int(state_bytes(optimizer))
    return table


def activation_bytes(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn = F.cross_entropy) -> int:
    """Bytes that autograd keeps from one training-mode forward pass of ``model`` on ``inputs`` until the
    backward pass, parameters and buffers excluded. The backward pass is run, so gradients are accumulated
    into ``.grad`` (zero them afterwards if it matters); the model's modes are restored."""
    own = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with training_mode(model):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = loss_fn(model(inputs), targets)
        loss.backward()
    return sum(saved.values())
