"""Optimizers compared at scale: a small ResNet-style CNN and a small vision transformer, each trained with SGD
(Nesterov), AdamW and Lion, on CIFAR-100 on a GPU and on FashionMNIST anywhere.

One run trains a fresh model with :func:`dldna.train.fit` (data on the device, batched crop-and-flip
augmentation, linear warm-up then cosine decay) and records what tells optimizers apart at this size: test
accuracy and loss, the gradient norm, the optimizer's state in bytes, peak GPU memory and time per epoch.
:data:`SCALE_MODELS` are the networks at GPU size; :data:`CPU_SCALE_MODELS` are the same architectures made
narrower and shallower so that a CPU trains them in seconds. :func:`compare_at_scale` runs
every network with every optimizer for several seeds; :func:`checkpoint_cost` and
:func:`forward_backward_seconds` measure what a step keeps and what it takes; :func:`estimate_epoch_seconds`
times a few steps to say what a whole epoch would cost on this machine.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.config import set_seed
from dldna.data import Dataset, random_crop_flip
from dldna.history import History
from dldna.models import ResidualCNN, VisionTransformer, set_gradient_checkpointing
from dldna.optim import SGD, AdamW, Lion, state_bytes
from dldna.train.loop import fit
from dldna.train.memory import activation_bytes
from dldna.train.run import LossFn
from dldna.train.schedules import make_scheduler
from dldna.train.seeds import spread

ModelFactory = Callable[..., nn.Module]
"""``factory(num_classes, in_channels=3, image_size=32)`` builds a network for images of that shape."""
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

SCALE_MODELS: dict[str, ModelFactory] = {
    "ResNet-style CNN": lambda classes, channels=3, size=32: ResidualCNN(in_channels=channels, num_classes=classes, width=64, blocks=4),
    "Vision transformer": lambda classes, channels=3, size=32: VisionTransformer(
        image_size=size, in_channels=channels, num_classes=classes, dim=192, depth=6, heads=3
    ),
}
"""The two architectures of the comparison at GPU size: 4 residual blocks of width 64; 6 transformer blocks of
width 192 with 3 heads on 4x4 patches."""

CPU_SCALE_MODELS: dict[str, ModelFactory] = {
    "ResNet-style CNN": lambda classes, channels=3, size=32: ResidualCNN(in_channels=channels, num_classes=classes, width=16, blocks=2),
    "Vision transformer": lambda classes, channels=3, size=32: VisionTransformer(
        image_size=size, in_channels=channels, num_classes=classes, dim=64, depth=2, heads=2
    ),
}
"""The same two architectures sized for a CPU: the CNN has 2 blocks of width 16 (a thirty-second of the
convolutions' work), the transformer 2 blocks of width 64 with 2 heads on the same 4x4 patches."""

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
    augment: bool = True,
    models: Mapping[str, ModelFactory] = SCALE_MODELS,
    optimizers: Mapping[str, OptimizerFactory] = SCALE_OPTIMIZERS,
) -> ScaleRun:
    """Train ``models[model]``, built for the shape of ``data``'s images, with ``optimizers[optimizer]`` and a
    warm-up + cosine schedule; ``augment`` crops and flips every batch, ``amp`` trains under bfloat16 autocast,
    ``compile`` through ``torch.compile``. ``max_steps`` stops early (the schedule still spans ``epochs``):
    enough to time a step at full size. ``checkpoint_blocks`` recomputes each residual block in the backward
    pass instead of storing its activations (:func:`dldna.models.set_gradient_checkpointing`)."""
    if model not in models:
        raise ValueError(f"model must be one of {sorted(models)}, got {model!r}")
    if optimizer not in optimizers:
        raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {optimizer!r}")
    set_seed(seed)
    channels, size = data.x_train.shape[1], data.x_train.shape[-1]
    network = models[model](data.num_classes, channels, size).to(data.device)
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
        compile=compile, augment=functools.partial(random_crop_flip, generator=generator) if augment else None,
        progress=False, max_steps=max_steps,
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


def compare_at_scale(
    data: Dataset,
    *,
    epochs: int,
    seeds: int | Sequence[int] = 3,
    models: Mapping[str, ModelFactory] = SCALE_MODELS,
    optimizers: Mapping[str, OptimizerFactory] = SCALE_OPTIMIZERS,
    **options,
) -> dict[tuple[str, str], list[ScaleRun]]:
    """Every network of ``models`` trained with every optimizer of ``optimizers`` once per seed (a count means
    ``0 .. seeds - 1``) by :func:`run_at_scale` (``options`` passed on), keyed by ``(model, optimizer)``.
    Runs with the same seed start a network from the same weights and see the same batches."""
    chosen = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not chosen:
        raise ValueError("seeds must name at least one seed")
    return {
        (model, optimizer): [
            run_at_scale(data, model, optimizer, epochs=epochs, seed=seed, models=models, optimizers=optimizers, **options)
            for seed in chosen
        ]
        for model in models
        for optimizer in optimizers
    }


SPREAD_HEADERS = ["model", "optimizer", "test accuracy (mean ± std)", "lowest – highest seed", "test loss (mean)", "state (MiB)", "s / epoch"]


def spread_row(runs: Sequence[ScaleRun]) -> list[object]:
    """Several seeds of one model and optimizer as a row of a table headed :data:`SPREAD_HEADERS`."""
    if not runs:
        raise ValueError("runs must hold at least one ScaleRun")
    accuracy = spread([run.history for run in runs])
    losses = [run.history.epochs["test_loss"][-1] for run in runs if not run.history.diverged]
    diverged = sum(run.history.diverged for run in runs)
    return [
        runs[0].model,
        runs[0].optimizer,
        f"{accuracy:.1%}" + (f" ({diverged} diverged)" if diverged else ""),
        f"{accuracy.low:.1%} – {accuracy.high:.1%}",
        f"{sum(losses) / len(losses):.3f}" if losses else "n/a",
        f"{runs[0].state_bytes / 2**20:,.2f}",
        f"{sum(run.seconds_per_epoch for run in runs) / len(runs):.1f}",
    ]


def forward_backward_seconds(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, repeats: int = 3, loss_fn: LossFn = F.cross_entropy
) -> float:
    """The fastest of ``repeats`` forward-and-backward passes of ``model`` on one batch, in seconds (CUDA work is
    waited for). The fastest pass is the one least disturbed by other work on the machine; gradients accumulate
    into ``.grad``."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        loss_fn(model(inputs), targets).backward()
        if inputs.device.type == "cuda":
            torch.cuda.synchronize(inputs.device)
        best = min(best, time.perf_counter() - start)
    return best


@dataclass(frozen=True)
class CheckpointCost:
    """What one training step of a network keeps and takes, without and with gradient checkpointing of its
    blocks: bytes of parameters, of saved activations for the batch and for half of it, of saved activations
    when checkpointed, and the checkpointed step's time over the plain one's."""

    parameter_bytes: int
    activation_bytes: int
    half_batch_activation_bytes: int
    checkpointed_bytes: int
    slowdown: float

    @property
    def saving(self) -> float:
        """How many times less activation memory checkpointing keeps."""
        return self.activation_bytes / self.checkpointed_bytes


def checkpoint_cost(build: Callable[[], nn.Module], inputs: torch.Tensor, targets: torch.Tensor, repeats: int = 3) -> CheckpointCost:
    """Measure :class:`CheckpointCost` for a fresh ``build()`` on the batch ``(inputs, targets)``: the saved
    activations with :func:`~dldna.train.activation_bytes`, the time with :func:`forward_backward_seconds`."""
    if len(targets) < 2:
        raise ValueError("the batch must hold at least two samples, so that half of it is not empty")
    model = build().to(inputs.device)
    half = len(targets) // 2
    plain = activation_bytes(model, inputs, targets)
    half_batch = activation_bytes(model, inputs[:half], targets[:half])
    plain_seconds = forward_backward_seconds(model, inputs, targets, repeats)
    set_gradient_checkpointing(model)
    checkpointed = activation_bytes(model, inputs, targets)
    checkpointed_seconds = forward_backward_seconds(model, inputs, targets, repeats)
    return CheckpointCost(
        parameter_bytes=sum(p.numel() * p.element_size() for p in model.parameters()),
        activation_bytes=plain,
        half_batch_activation_bytes=half_batch,
        checkpointed_bytes=checkpointed,
        slowdown=checkpointed_seconds / plain_seconds,
    )


def estimate_epoch_seconds(
    model: str,
    optimizer: str,
    *,
    image_shape: tuple[int, int, int] = (3, 32, 32),
    classes: int = 100,
    train_size: int = 50_000,
    batch_size: int = 256,
    steps: int = 2,
    device: torch.device | str = "cpu",
    amp: bool = False,
    models: Mapping[str, ModelFactory] = SCALE_MODELS,
    optimizers: Mapping[str, OptimizerFactory] = SCALE_OPTIMIZERS,
) -> float:
    """Seconds one epoch of ``train_size`` images would take: ``steps`` training steps of :func:`run_at_scale`
    on random images of ``image_shape`` (the pixel values do not change the time), scaled to the epoch's
    steps. The first steps include warm-up, so the estimate errs on the long side."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(steps * batch_size, *image_shape, generator=generator)
    labels = torch.randint(0, classes, (steps * batch_size,), generator=generator)
    shape = (0.0,) * image_shape[0], (1.0,) * image_shape[0]
    random_images = Dataset(
        "random images", images, labels, images[:batch_size], labels[:batch_size], tuple(map(str, range(classes))), *shape
    ).to(device)
    run = run_at_scale(random_images, model, optimizer, epochs=1, batch_size=batch_size, amp=amp, max_steps=steps,
                       models=models, optimizers=optimizers)
    return run.history.epochs["time_s"][0] / run.history.num_steps * math.ceil(train_size / batch_size)
