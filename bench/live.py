"""Milliseconds per training epoch of the book's 784-512-64-10 MLP on FashionMNIST, six ways.

1. the usual textbook loop: a per-sample ``Dataset`` that turns each stored uint8 image into a PIL image, then
   into a float tensor scaled to [0, 1] and normalised (what torchvision's ``FashionMNIST`` with ``ToTensor``
   and ``Normalize`` does per ``__getitem__``), batched by a shuffling ``DataLoader``;
2. the same loop over images already stored as normalised float tensors (per-sample indexing and collation
   only, no conversion);
3. a ``TensorDataset`` with a ``DataLoader`` (batches gathered from tensors, still through the loader);
4. ``dldna.train.fit``: data on the device, batches by indexing with a permutation;
5. ``dldna.train.fast.fit_fast``: the same step, replayed from a CUDA graph on CUDA (eager elsewhere);
6. ``dldna.train.sweep`` training C configurations at once (also per configuration-epoch).

Every way trains with SGD (momentum 0.9, batch 256) from the same initial weights; the DataLoader loops run
the same step as ``fit`` without its per-step metrics. The ways take turns for ``--rounds`` rounds; a way's
time is its fastest epoch after the first of any round (the first pays for warm-up and graph capture), on a
shared machine the closest to its own cost, and counts training only, not the per-epoch evaluation.
Speed-ups are given over the usual loop (1) and over the conversion-free per-sample loop (2). Off CUDA the
defaults use 10,000 training images and fewer ``--configs`` so the run takes about two minutes; on CUDA all
60,000 images.

    .venv/bin/python bench/live.py [--train-size 10000] [--epochs 3] [--rounds 3] [--configs 1 4 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import dldna
from dldna.config import device as default_device
from dldna.data import Dataset, load_fashion_mnist
from dldna.models import MLP
from dldna.train import History, fit
from dldna.train.fast import fit_fast
from dldna.train.sweep import sweep

BATCH_SIZE = 256
LR = 0.05
MOMENTUM = 0.9


class PerSampleImages(torch.utils.data.Dataset):
    """One ready float image and label per ``__getitem__`` call, collated by the DataLoader."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]


class TextbookImages(torch.utils.data.Dataset):
    """The usual dataset: uint8 images converted one at a time as torchvision's ``ToTensor`` + ``Normalize``
    do (PIL image, float in [0, 1], minus mean, over std)."""

    def __init__(self, pixels: np.ndarray, labels: torch.Tensor, mean: float, std: float) -> None:
        self.pixels, self.labels, self.mean, self.std = pixels, labels, mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = Image.fromarray(self.pixels[index])
        scaled = torch.from_numpy(np.array(image, copy=True)).unsqueeze(0).float().div(255)
        return (scaled - self.mean) / self.std, self.labels[index]


def loader_epochs(model: nn.Module, loader: DataLoader, epochs: int, device: torch.device) -> list[float]:
    """Seconds per epoch of plain SGD training over ``loader`` (host batches copied to ``device``)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for inputs, targets in loader:
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(inputs), targets).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def steady_ms(epoch_seconds: list[float]) -> float:
    """Milliseconds of the fastest epoch after the first (the first when there is one): on a shared machine
    other processes only ever add time, so the fastest epoch is the closest to the method's own cost."""
    kept = epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds
    return 1000 * min(kept)


def ways(data: Dataset, epochs: int, configs: list[int], device: torch.device) -> list[tuple[str, int, Callable[[], list[float]]]]:
    """``(name, configurations, run)`` for every way of training; ``run()`` trains ``epochs`` epochs from the
    same initial weights and returns the seconds of each epoch."""
    dldna.set_seed(0)
    initial = MLP()
    fresh: Callable[[], nn.Module] = lambda: copy.deepcopy(initial).to(device)
    host_x, host_y = data.x_train.cpu(), data.y_train.cpu()
    pin = device.type == "cuda"
    pixels = (data.unnormalize(host_x) * 255).round().clamp(0, 255).to(torch.uint8).squeeze(1).numpy()
    loaders = {
        "usual loop: per-image PIL -> tensor -> normalise": TextbookImages(pixels, host_y, data.mean[0], data.std[0]),
        "per-sample Dataset of ready tensors": PerSampleImages(host_x, host_y),
        "TensorDataset + DataLoader": TensorDataset(host_x, host_y),
    }

    def loader_run(dataset: torch.utils.data.Dataset) -> Callable[[], list[float]]:
        return lambda: loader_epochs(fresh(), DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, pin_memory=pin), epochs, device)

    def fit_run(train: Callable[..., History]) -> Callable[[], list[float]]:
        def run() -> list[float]:
            model = fresh()
            optimizer = dldna.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
            history = train(model, optimizer, data, epochs=epochs, batch_size=BATCH_SIZE, progress=False)
            if device.type == "cuda" and history.config.get("cuda_graph") is False:
                raise SystemExit("fit_fast ran the eager step on CUDA (see its warning), so no CUDA-graph time to report")
            return history.epochs["time_s"]

        return run

    def sweep_run(count: int) -> Callable[[], list[float]]:
        lrs = torch.logspace(-2.5, -0.5, count).tolist() if count > 1 else [LR]
        configurations = [{"lr": lr, "momentum": MOMENTUM} for lr in lrs]
        return lambda: sweep(initial, data, "sgd", configurations, epochs=epochs, batch_size=BATCH_SIZE)[0].epochs["time_s"]

    fast_name = "fast path (CUDA graph)" if device.type == "cuda" else "fast path (eager step, no CUDA graph)"
    return [
        *[(name, 1, loader_run(dataset)) for name, dataset in loaders.items()],
        ("dldna fit (eager)", 1, fit_run(fit)),
        (fast_name, 1, fit_run(fit_fast)),
        *[(f"sweep, {count} configurations", count, sweep_run(count)) for count in configs],
    ]


def run_all(data: Dataset, epochs: int, rounds: int, configs: list[int], device: torch.device) -> list[tuple[str, float, int]]:
    """``(name, ms per epoch, configurations)`` for every way: the ways take turns for ``rounds`` rounds, so a
    slow spell of a shared machine hits all of them, and each keeps its fastest steady epoch."""
    candidates = ways(data, epochs, configs, device)
    best = {name: float("inf") for name, _, _ in candidates}
    for round_number in range(rounds):
        for name, _, run in candidates:
            best[name] = min(best[name], steady_ms(run()))
        print(f"  round {round_number + 1}/{rounds}: " + ", ".join(f"{ms:.0f}" for ms in best.values()) + " ms/epoch", flush=True)
    return [(name, best[name], count) for name, count, _ in candidates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: dldna.config.device())")
    parser.add_argument("--train-size", type=int, default=None, help="training images (default: 60000 on CUDA, 10000 elsewhere)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per way and round (the first is not timed)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which every way trains once, in turn")
    parser.add_argument("--configs", type=int, nargs="+", default=None, help="sweep sizes (default: 1 16 64 256 on CUDA, 1 4 16 elsewhere)")
    args = parser.parse_args()
    device = default_device(args.device)
    on_cuda = device.type == "cuda"
    train_size = args.train_size or (60000 if on_cuda else 10000)
    configs = args.configs or ([1, 16, 64, 256] if on_cuda else [1, 4, 16])
    if args.epochs < 1 or args.rounds < 1 or train_size < BATCH_SIZE or min(configs) < 1:
        parser.error("--epochs, --rounds, --train-size (>= one batch) and --configs must be positive")
    # Evaluation is not timed; a smaller test split off CUDA only shortens the run.
    data = load_fashion_mnist(train_size=None if train_size >= 60000 else train_size, test_size=None if on_cuda else 2000, device=device)
    name = torch.cuda.get_device_name(device) if on_cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"MLP 784-512-64-10, batch {BATCH_SIZE}, {len(data.y_train)} FashionMNIST training images, {args.epochs} epochs "
          f"per way in each of {args.rounds} rounds, on {name}")
    rows = run_all(data, args.epochs, args.rounds, configs, device)
    usual, lean = rows[0][1], rows[1][1]
    print(f"\n{'way':<52}{'ms/epoch':>10}{'ms/config-epoch':>17}{'vs (1)':>9}{'vs (2)':>9}")
    for way, ms, count in rows:
        per_config = ms / count
        print(f"{way:<52}{ms:>10.0f}{per_config:>17.1f}{usual / per_config:>8.1f}x{lean / per_config:>8.1f}x")
    print("vs (1), vs (2): ms/epoch of the usual loop (1) or of the ready-tensor per-sample loop (2) divided by the")
    print("way's ms per configuration-epoch")


if __name__ == "__main__":
    main()
