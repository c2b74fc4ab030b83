"""What a training step keeps in memory besides the weights: the activations autograd saves for backward.

Every tensor the forward pass saves for the backward pass goes through autograd's saved-tensor hooks, so
counting the bytes of their storages (each storage once, parameters and buffers left out) measures the
activation memory of a step exactly, on any device: the number that batch size, depth and gradient
checkpointing change, beside the optimizer's state (:func:`dldna.optim.state_bytes`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dldna.train.loop import LossFn


def activation_bytes(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn = F.cross_entropy) -> int:
    """Bytes that autograd keeps from one training-mode forward pass of ``model`` on ``inputs`` until the
    backward pass, parameters and buffers excluded. The backward pass is run, so gradients are accumulated
    into ``.grad`` (zero them afterwards if it matters); the model's train/eval mode is restored."""
    own = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = loss_fn(model(inputs), targets)
        loss.backward()
    finally:
        model.train(was_training)
    return sum(saved.values())
