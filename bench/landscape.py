"""Batched (vmap) loss-surface evaluation against the per-point loop, on the book's reference MLP.

Run: ``python bench/landscape.py [--grid 21] [--samples 2000] [--device cpu]``. Prints both times and their
ratio; the two surfaces are also compared, so a fast wrong answer cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import dldna
from dldna.landscape import loss_plane, random_plane
from dldna.models import MLP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", type=int, default=21, help="points per side of the square grid")
    parser.add_argument("--samples", type=int, default=2000, help="test images each grid point is evaluated on")
    parser.add_argument("--chunk", type=int, default=16, help="grid points per vmap forward pass")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: dldna.device())")
    args = parser.parse_args()

    device = dldna.device(args.device)
    data = dldna.data.load_fashion_mnist(train_size=1000, test_size=args.samples, device=device)
    dldna.set_seed(0)
    model = MLP().to(device)
    directions = random_plane(model, seed=0)
    axis = np.linspace(-1, 1, args.grid)

    def timed(method: str):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        surface = loss_plane(model, data.x_test, data.y_test, directions, axis, axis, method=method, chunk_size=args.chunk, batch_size=args.samples)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return surface, time.perf_counter() - start

    timed("vmap")  # warm-up: first vmap call traces the model
    batched, t_batched = timed("vmap")
    loop, t_loop = timed("loop")
    difference = float(np.max(np.abs(batched.loss - loop.loss)))
    print(f"MLP 784-512-64-10 on {device}, {args.grid}x{args.grid} grid, {args.samples} samples, chunk {args.chunk}")
    print(f"vmap: {t_batched:.2f} s   loop: {t_loop:.2f} s   ratio loop/vmap: {t_loop / t_batched:.2f}x   max |difference|: {difference:.2e}")


if __name__ == "__main__":
    main()
