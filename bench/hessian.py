"""Time dldna.landscape.hessian against PyHessian on the book's 784-512-64-10 MLP and FashionMNIST.

For each sample count, computes the top-1 and top-2 Hessian eigenvalues and the Hutchinson trace with both
libraries on the same model and data, and prints the seconds, the ratio PyHessian / ours, the values, their
relative difference and the number of Hessian-vector products (HVPs) each used.

The eigenvalue rows compare each library at its defaults, which stop differently: ours (Lanczos) when
``||Hv - lambda v|| <= 1e-3 |lambda|``, which bounds the distance to a true eigenvalue by the printed residual;
PyHessian (power iteration) when the estimate changes by less than 0.1% between iterations. The trace rows
compare equal work: both draw ``--trace-samples`` Rademacher vectors. PyHessian's own trace stopping rule is
printed separately; it divides the change of the running mean by the previous mean, so it stops one sample
after that mean turns negative. On the CPU both libraries draw the same Rademacher vectors (torch's generator seeded with 0), so their
trace estimates agree to rounding, which checks the products themselves. Timings are the fastest of ``--repeats``
runs and include the first gradient pass. The model is freshly initialised (seed 0); nothing is trained.

    .venv/bin/python bench/hessian.py [--sizes 256 1024] [--repeats 2] [--trace-samples 20]
                                      [--device cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import math
import time
import warnings
from typing import Callable, TypeVar

import numpy as np
import torch
from torch import nn

from dldna.config import device as default_device
from dldna.data import load_fashion_mnist
from dldna.landscape import hessian as ours
from dldna.models import MLP

T = TypeVar("T")


def timed(run: Callable[[], T], repeats: int, device: torch.device) -> tuple[float, T]:
    """Shortest wall time of ``repeats`` calls of ``run`` (synchronising CUDA), with the last call's result.

    The minimum is the time least disturbed by other processes sharing the machine.
    """
    times, result = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times), result


class PyHessianRunner:
    """PyHessian on a private copy of the model (it leaves the model in eval mode with populated ``.grad``).

    Counts PyHessian's Hessian-vector products by wrapping the helper its module calls for each of them.
    """

    def __init__(self, model: nn.Module) -> None:
        self.module = importlib.import_module("pyhessian.hessian")
        self.model, self.products = model, 0
        original = self.module.hessian_vector_product

        def counted(*args, **kwargs):
            self.products += 1
            return original(*args, **kwargs)

        self.module.hessian_vector_product = counted

    def _fresh(self, x: torch.Tensor, y: torch.Tensor):
        torch.manual_seed(0)
        model, cuda = copy.deepcopy(self.model), x.device.type == "cuda"
        return self.module.hessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=cuda)

    def eigenvalues(self, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[list[float], int]:
        self.products = 0
        values, _ = self._fresh(x, y).eigenvalues(top_n=k)
        return values, self.products

    def trace(self, x: torch.Tensor, y: torch.Tensor, samples: int | None = None) -> np.ndarray:
        """The ``v^T H v`` samples of PyHessian's trace: exactly ``samples`` of them, or as its own rule decides."""
        hessian = self._fresh(x, y)
        return np.array(hessian.trace() if samples is None else hessian.trace(maxIter=samples, tol=-math.inf))


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--trace-samples", type=int, default=20, help="probe vectors per trace estimate (>= 4, Hutch++'s minimum)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: dldna.config.device())")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args()
    if args.trace_samples < 4 or args.repeats < 1 or min(args.sizes) < 1:
        parser.error("--trace-samples must be >= 4, --repeats and --sizes >= 1")
    warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")  # PyHessian, every call
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = default_device(args.device)
    data = load_fashion_mnist(train_size=max(args.sizes), test_size=10, device=device)
    torch.manual_seed(0)
    model = MLP().to(device)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"MLP 784-512-64-10 ({parameters:,} parameters), freshly initialised; device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; fastest of {args.repeats} runs")
    reference = PyHessianRunner(model)
    header = (f"{'n':>5} {'task':<6} {'ours s':>8} {'PyH s':>8} {'PyH/ours':>9} {'ours':>12} {'PyHessian':>12} "
              f"{'rel diff':>9} {'ours resid':>10} {'HVPs ours/PyH':>14}")
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        x, y = data.x_train[:size], data.y_train[:size]
        for k in (1, 2):
            ours_s, mine = timed(lambda: ours.top_eigenvalues(model, x, y, k=k), args.repeats, device)
            theirs_s, (values, products) = timed(lambda: reference.eigenvalues(x, y, k), args.repeats, device)
            for i in range(k):
                task = f"top-{k}" if i == 0 else f"  l{i + 1}"
                times = f"{ours_s:8.3f} {theirs_s:8.3f} {theirs_s / ours_s:9.2f}" if i == 0 else " " * 27
                print(f"{size:>5} {task:<6} {times} {mine.eigenvalues[i]:12.5f} {values[i]:12.5f} "
                      f"{relative(mine.eigenvalues[i], values[i]):9.2e} {mine.residuals[i]:10.1e} "
                      f"{f'{mine.matvecs}/{products}':>14}")
        theirs_s, samples = timed(lambda: reference.trace(x, y, args.trace_samples), args.repeats, device)
        ours_s, mine = timed(lambda: ours.hessian_trace(model, x, y, samples=args.trace_samples), args.repeats, device)
        their_error = samples.std(ddof=1) / math.sqrt(len(samples))
        print(f"{size:>5} {'trace':<6} {ours_s:8.3f} {theirs_s:8.3f} {theirs_s / ours_s:9.2f} {mine.estimate:12.3f} "
              f"{samples.mean():12.3f} {relative(mine.estimate, samples.mean()):9.2e} {'':>10} "
              f"{f'{mine.samples}/{len(samples)}':>14}")
        plus_s, plus = timed(
            lambda: ours.hessian_trace(model, x, y, samples=args.trace_samples, method="hutch++"), 1, device
        )
        default = reference.trace(x, y)
        print(f"{'':>11} standard errors: Hutchinson ours {mine.standard_error:.3f}, PyHessian {their_error:.3f}; "
              f"ours Hutch++ {plus.estimate:.3f} +- {plus.standard_error:.3f} ({plus_s:.2f} s)")
        print(f"{'':>11} PyHessian's own stopping rule took {len(default)} samples: {default.mean():.3f}")


if __name__ == "__main__":
    main()
