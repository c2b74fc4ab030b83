"""Loss surfaces on the book's reference MLP: the affine first layer, vmap batching and the per-point loop.

Run: ``python bench/landscape.py [--grid 41] [--samples 2000] [--rounds 3] [--device cpu]``. The three methods
of :func:`dldna.landscape.loss_plane` evaluate the same filter-normalised plane around a freshly initialised
784-512-64-10 MLP on ``--samples`` FashionMNIST test images, taking turns for ``--rounds`` rounds (the fastest
time of each counts). Prints each method's seconds, its speed-up over the loop, the largest difference from the
loop's surface (a fast wrong answer cannot pass unnoticed), the matrix-product arithmetic it did and the GFLOP/s
it reached, next to the machine's float32 matrix-product peak: the loop already runs near that peak on a CPU,
so only doing less arithmetic (the affine first layer) can be much faster there.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import dldna
from dldna.landscape import loss_plane, random_plane
from dldna.landscape.costs import count_flops, fastest_in_turn, matmul_peak
from dldna.models import MLP

METHODS = ("loop", "vmap", "affine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=41, help="points per side of the square grid")
    parser.add_argument("--samples", type=int, default=2000, help="test images each grid point is evaluated on")
    parser.add_argument("--chunk", type=int, default=16, help="grid points scored together (and per vmap forward pass)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds in which every method runs once, in turn")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: dldna.device())")
    args = parser.parse_args()
    if min(args.grid, args.samples, args.chunk, args.rounds) < 1:
        parser.error("--grid, --samples, --chunk and --rounds must be >= 1")

    device = dldna.device(args.device)
    data = dldna.data.load_fashion_mnist(train_size=1000, test_size=args.samples, device=device)
    dldna.set_seed(0)
    model = MLP().to(device)
    directions = random_plane(model, seed=0)
    axis = np.linspace(-1, 1, args.grid)

    def surface(method: str) -> np.ndarray:
        return loss_plane(
            model, data.x_test, data.y_test, directions, axis, axis, method=method, chunk_size=args.chunk,
            batch_size=args.samples,
        ).loss

    # The affine first layer as "auto" runs it: one point at a time through the rest of the network on a CPU,
    # --chunk points per pass on CUDA.
    runs = {"loop": lambda: surface("loop"), "vmap": lambda: surface("vmap"), "affine": lambda: surface("auto")}
    runs["vmap"]()  # warm-up: the first vmap call traces the model
    timed = fastest_in_turn(runs, args.rounds, device)
    work = {name: count_flops(run) for name, run in runs.items()}
    peak = matmul_peak(device)
    loop_seconds, loop_surface = timed["loop"]
    print(f"MLP 784-512-64-10 on {device} ({torch.get_num_threads()} CPU threads), {args.grid}x{args.grid} grid, "
          f"{args.samples} samples, {args.chunk} points per chunk; fastest of {args.rounds} rounds")
    print(f"{'method':<8} {'seconds':>8} {'loop/method':>12} {'max |diff| vs loop':>19} {'TFLOP':>7} {'GFLOP/s':>8}")
    for name in METHODS:
        seconds, values = timed[name]
        difference = float(np.max(np.abs(values - loop_surface)))
        print(f"{name:<8} {seconds:8.2f} {loop_seconds / seconds:11.2f}x {difference:19.2e} {work[name] / 1e12:7.3f} "
              f"{work[name] / seconds / 1e9:8.1f}")
    print(f"float32 matrix-product peak (2048^3): {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
