"""Optimizers compared at GPU scale: CIFAR-100 with a small ResNet-style CNN and a small vision transformer.

One run trains a fresh model with :func:`dldna.train.fit` (data on the device, batched crop-and-flip
augmentation, linear warm-up then cosine decay) and records what tells optimizers apart at this size: test
accuracy and loss, the gradient norm, the optimizer's state in bytes, peak GPU memory and time per epoch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from dldna.config import set_seed
from dldna.data import Dataset, random_crop_flip
from dldna.history import History
from dldna.models import ResidualCNN, VisionTransformer, set_gradient_checkpointing
from dldna.optim import SGD, AdamW, Lion, state_bytes
from dldna.train.loop import fit
from dldna.train.schedules import make_scheduler

ModelFactory = Callable[[int], nn.Module]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

SCALE_MODELS: dict[str, ModelFactory] = {
    "ResNet-style CNN": lambda classes: ResidualCNN(in_channels=3, num_classes=classes, width=64, blocks=4),
    "Vision transformer": lambda classes: VisionTransformer(num_classes=classes, dim=192, depth=6, heads=3),
}
"""The two architectures of the comparison, each built for a number of classes."""

SCALE_OPTIMIZERS: dict[str, OptimizerFactory] = {
    "SGD + momentum": functools.partial(SGD, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True),
    "AdamW": functools.partial(AdamW, lr=1e-3, weight_decay=0.05),
    "Lion": functools.partial(Lion, lr=1e-4, weight_decay=0.5),
}
"""Common starting points from each method's paper: Lion with a 10x smaller lr and 10x larger decay than AdamW."""


@dataclass(frozen=True)
class ScaleRun:
    """One model trained with one optimizer, and what it cost."""

    model: str
    optimizer: str
    history: History
    parameters: int
    state_bytes: int
    peak_memory_bytes: int | None
    seconds_per_epoch: float
    """Training time of the last epoch (evaluation excluded), scaled up to a whole epoch when ``max_steps``
    ended it early; a single epoch includes warm-up and compilation."""

    def row(self) -> list[object]:
        """The run as a row of the chapter's table."""
        peak = "n/a" if self.peak_memory_bytes is None else f"{self.peak_memory_bytes / 2**20:,.0f}"
        grad = self.history.steps["grad_norm"]
        return [
            self.model,
            self.optimizer,
            "diverged" if self.history.diverged else f"{self.history.final_test_acc:.2%}",
            "n/a" if self.history.diverged else f"{self.history.epochs['test_loss'][-1]:.3f}",
            f"{sum(grad[-50:]) / max(1, len(grad[-50:])):.3f}",
            f"{self.state_bytes / 2**20:,.2f}",
            peak,
            f"{self.seconds_per_epoch:.1f}",
        ]


TABLE_HEADERS = ["model", "optimizer", "test acc", "test loss", "grad norm (last 50 steps)", "state (MiB)", "peak GPU memory (MiB)", "s / epoch"]


def run_at_scale(
    data: Dataset,
    model: str,
    optimizer: str,
    *,
    epochs: int,
    batch_size: int = 256,
    warmup_epochs: float = 1.0,
    amp: bool = True,
    compile: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
    checkpoint_blocks: bool = False,
    models: Mapping[str, ModelFactory] = SCALE_MODELS,
    optimizers: Mapping[str, OptimizerFactory] = SCALE_OPTIMIZERS,
) -> ScaleRun:
    """Train ``models[model]`` with ``optimizers[optimizer]`` on ``data`` with augmentation and a warm-up +
    cosine schedule; ``amp`` trains under bfloat16 autocast, ``compile`` through ``torch.compile``.
    ``max_steps`` stops early (the schedule still spans ``epochs``): enough to time a step at full size.
    ``checkpoint_blocks`` recomputes each residual block in the backward pass instead of storing its
    activations (:func:`dldna.models.set_gradient_checkpointing`)."""
    if model not in models:
        raise ValueError(f"model must be one of {sorted(models)}, got {model!r}")
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {optimizer!r}")
    set_seed(seed)
    network = models[model](data.num_classes).to(data.device)
    if checkpoint_blocks:
        set_gradient_checkpointing(network)
    opt = optimizers[optimizer](network.parameters())
    steps = epochs * -(-len(data.y_train) // batch_size)
    warmup = max(1, int(warmup_epochs * steps / epochs))
    scheduler = make_scheduler(opt, "warmup_cosine", steps, warmup=warmup)
    generator = torch.Generator(device=data.device).manual_seed(seed)
    on_gpu = data.device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(data.device)
    history = fit(
        network, opt, data, epochs=epochs, batch_size=batch_size, scheduler=scheduler, seed=seed, amp=amp,
        compile=compile, augment=functools.partial(random_crop_flip, generator=generator), progress=False,
        max_steps=max_steps,
    )
    steps_per_epoch = history.steps_per_epoch
    last_epoch_steps = history.num_steps - steps_per_epoch * (len(history.epochs["time_s"]) - 1)
    last_epoch_seconds = history.epochs["time_s"][-1] if history.epochs["time_s"] else float("nan")
    return ScaleRun(
        model=model,
        optimizer=optimizer,
        history=history,
        parameters=sum(p.numel() for p in network.parameters()),
        state_bytes=state_bytes(opt),
        peak_memory_bytes=torch.cuda.max_memory_allocated(data.device) if on_gpu else None,
        seconds_per_epoch=last_epoch_seconds * steps_per_epoch / max(1, last_epoch_steps),
    )
