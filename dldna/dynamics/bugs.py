"""Deliberately broken models and data pipelines, each a real bug that one check of the debugging checklist
(:mod:`dldna.dynamics.checks`) exists to catch. The chapter and the tests use them to show every check failing.

=============================  ==========================================================  =======================
bug                            what goes wrong                                              caught by
=============================  ==========================================================  =======================
:func:`scale_last_layer`       last layer initialised far too large: confident nonsense     initial loss
:class:`SoftmaxOutput`         model returns probabilities, loss expects logits              overfit two samples
:func:`detach_after`           a ``.detach()`` cuts the gradient to every earlier layer      gradient flow
:func:`leak_labels`            preprocessing writes the label into the image                 random-label baseline
:class:`Swish` (``buggy=True``)  hand-written backward forgets a product-rule term             gradient check
=============================  ==========================================================  =======================
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import Tensor, nn

from dldna.data import Dataset


def scale_last_layer(model: nn.Module, factor: float) -> nn.Module:
    """A copy of ``model`` whose last ``nn.Linear`` has its weight and bias multiplied by ``factor``.

    With ``factor`` around 10 or more the untrained model already makes confident (and random) predictions, so its
    initial loss is far above ``ln(num_classes)``.
    """
    broken = copy.deepcopy(model)
    last = [m for m in broken.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(factor)
        if last.bias is not None:
            last.bias.mul_(factor)
    return broken


class SoftmaxOutput(nn.Module):
    """Bug: the wrapped model's output goes through softmax, and the result is fed to ``F.cross_entropy``, which
    applies log-softmax itself. Its "logits" are then probabilities in [0, 1], so the best reachable loss on ``C``
    classes is ``ln(1 + (C - 1) / e)`` (1.46 for ten classes): the model can never become confident."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.model(x), dim=1)


class _Detached(nn.Module):
    def __init__(self, front: nn.Module, back: nn.Module) -> None:
        super().__init__()
        self.front, self.back = front, back

    def forward(self, x: Tensor) -> Tensor:
        return self.back(self.front(x).detach())


def detach_after(model: nn.Module, index: int) -> nn.Module:
    """A copy of a model built around an ``nn.Sequential`` (``model.net`` or the model itself) whose forward
    detaches the output of layer ``index``: layers up to ``index`` never receive a gradient."""
    body = copy.deepcopy(getattr(model, "net", model))
    if not isinstance(body, nn.Sequential):
        raise ValueError("detach_after needs an nn.Sequential model or one with an nn.Sequential .net")
    return _Detached(body[: index + 1], body[index + 1 :])


def leak_labels(data: Dataset, strength: float = 3.0) -> Dataset:
    """Bug in a pipeline: a one-hot code of each image's label overwrites its first ``num_classes`` pixels (in
    every split). A model reads the label instead of the image; run after label shuffling, the shuffled labels
    leak the same way, and on the test set the leaked true labels give it away."""

    def stamp(x: Tensor, y: Tensor) -> Tensor:
        flat = x.clone().flatten(1)
        flat[:, : data.num_classes] = strength * torch.nn.functional.one_hot(y, data.num_classes).to(x.dtype)
        return flat.view_as(x)

    changed = {"x_train": stamp(data.x_train, data.y_train), "x_test": stamp(data.x_test, data.y_test)}
    if data.x_val is not None:
        changed["x_val"] = stamp(data.x_val, data.y_val)
    return replace(data, **changed)


class _SwishFunction(torch.autograd.Function):
    """``x * sigmoid(x)`` with a hand-written backward: ``d/dx = s + x s (1 - s)``, or only ``s`` if buggy."""

    @staticmethod
    def forward(ctx, x: Tensor, buggy: bool) -> Tensor:
        ctx.save_for_backward(x)
        ctx.buggy = buggy
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        derivative = s if ctx.buggy else s + x * s * (1 - s)
        return grad * derivative, None


class Swish(nn.Module):
    """The Swish/SiLU activation ``x * sigmoid(x)`` through a custom ``autograd.Function``. With ``buggy=True``
    its backward drops the ``x s (1 - s)`` term of the product rule: the forward pass is still right, training
    still runs, and only a gradient check reveals that the gradients are wrong."""

    def __init__(self, buggy: bool = False) -> None:
        super().__init__()
        self.buggy = buggy

    def forward(self, x: Tensor) -> Tensor:
        return _SwishFunction.apply(x, self.buggy)
