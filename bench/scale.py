"""Time the CIFAR-100 optimizer comparison of "Optimizers at scale" end to end at the real data size.

Writes random images in the official CIFAR-100 archive format with the real sizes (50,000 training and 10,000
test images) unless ``--archive`` names a real archive, loads them with ``dldna.data.load_cifar``, and trains
each network of ``dldna.train.scale.SCALE_MODELS`` with each optimizer of ``SCALE_OPTIMIZERS`` through
``run_at_scale`` (on-device crop-and-flip, warm-up + cosine, bfloat16 autocast on CUDA). Prints seconds per
epoch (training only), peak GPU memory and optimizer-state bytes per run, then, for the CNN with AdamW,
float32 vs bfloat16 vs bfloat16 + ``torch.compile`` vs bfloat16 + gradient checkpointing. Random images carry
nothing to learn, so the accuracies are chance; the times and memory are those of the real data.

On a CPU the full epoch takes hours: the default there is ``--max-steps 3`` per run (the time per epoch is
then the last epoch's steps scaled up) and a 1,000-image test split.

    .venv/bin/python bench/scale.py [--epochs 2] [--max-steps N] [--archive cifar-100-python.tar.gz] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from dldna.config import device as default_device
from dldna.data import load_cifar, write_cifar_archive
from dldna.train.scale import SCALE_MODELS, SCALE_OPTIMIZERS, TABLE_HEADERS, run_at_scale
from dldna.viz.compare import markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: dldna.config.device())")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run (the last one is timed)")
    parser.add_argument("--max-steps", type=int, default=None, help="steps per run (default: all on CUDA, 3 elsewhere)")
    parser.add_argument("--test-size", type=int, default=None, help="test images (default: 10000 on CUDA, 1000 elsewhere)")
    parser.add_argument("--archive", type=Path, default=None, help="a CIFAR-100 archive to use instead of random images")
    args = parser.parse_args()
    device = default_device(args.device)
    on_cuda = device.type == "cuda"
    max_steps = args.max_steps if args.max_steps is not None else (None if on_cuda else 3)
    test_size = args.test_size or (10000 if on_cuda else 1000)
    if args.epochs < 1 or (max_steps is not None and max_steps < 1) or test_size < 1:
        parser.error("--epochs, --max-steps and --test-size must be positive")

    with tempfile.TemporaryDirectory() as folder:
        archive = args.archive
        if archive is None:
            archive = Path(folder) / "cifar-100-python.tar.gz"
            start = time.perf_counter()
            write_cifar_archive(archive, "cifar100")
            print(f"wrote random CIFAR-100-format images (50,000 + 10,000) in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        data = load_cifar("cifar100", device=device, test_size=test_size, archive=archive)
        print(f"loaded {data} in {time.perf_counter() - start:.1f} s")

    name = torch.cuda.get_device_name(device) if on_cuda else f"CPU, {torch.get_num_threads()} threads"
    limit = "every step" if max_steps is None else f"{max_steps} steps per run, epoch time scaled up"
    print(f"{args.epochs} epochs per run, batch 256, on {name} ({limit})\n")
    runs = []
    for model in SCALE_MODELS:
        for optimizer in SCALE_OPTIMIZERS:
            run = run_at_scale(data, model, optimizer, epochs=args.epochs, amp=on_cuda, max_steps=max_steps)
            print(f"  {model}, {optimizer}: {run.seconds_per_epoch:.1f} s/epoch", flush=True)
            runs.append(run)
    print(markdown_table(TABLE_HEADERS, [run.row() for run in runs]))

    if on_cuda:
        print("\nResNet-style CNN with AdamW: precision, compilation and gradient checkpointing")
        rows = []
        variants = {
            "float32": dict(amp=False),
            "bfloat16": dict(amp=True),
            "bfloat16 + compile": dict(amp=True, compile=True),
            "bfloat16 + gradient checkpointing": dict(amp=True, checkpoint_blocks=True),
        }
        for label, options in variants.items():
            run = run_at_scale(data, "ResNet-style CNN", "AdamW", epochs=args.epochs, max_steps=max_steps, **options)
            rows.append([label, f"{run.seconds_per_epoch:.2f}", f"{run.peak_memory_bytes / 2**20:,.0f}"])
        print(markdown_table(["precision", "s / epoch", "peak GPU memory (MiB)"], rows))


if __name__ == "__main__":
    main()
