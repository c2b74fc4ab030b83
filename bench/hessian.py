"""Time dldna.landscape.hessian against PyHessian on the book's 784-512-64-10 MLP and FashionMNIST, at the same
answer.

For each sample count, four tasks, each library timed in turn for ``--rounds`` rounds (fastest time counts, the
first gradient pass included; the model is freshly initialised, nothing is trained):

- **top-1, top-2**: the largest Hessian eigenvalues to a relative error of at most ``--target`` (1e-3), measured
  against a float64 reference converged to 1e-9. Ours runs at its defaults (Lanczos, ``tol=1e-3`` on the
  estimated eigenvalue error). PyHessian (power iteration, stopping when the estimate changes by less than
  ``tol`` between iterations) runs at ``tol=1e-3`` and, when that answer misses the target, at 1e-4, 1e-5, 1e-6
  (``maxIter=1000``) until it reaches it: the time printed is that of the first tolerance that does.
- **trace**: PyHessian's Hutchinson estimate with ``--trace-samples`` probes against ours (``method="blocks"``,
  ``--block-samples`` probes of the parameter tensors' diagonal blocks), compared by their standard errors;
  both are checked against a reference of 100 block probes.
- **density**: stochastic Lanczos quadrature with ``--density-steps`` steps and one run, PyHessian's defaults
  (its ``density()`` calls ``torch.eig``, removed from torch; a stand-in built on ``torch.linalg.eigh`` is put in
  its place for this run only). Same steps, same quadrature degree; the largest node must match the top eigenvalue.
  PyHessian orthogonalizes each Lanczos vector against all earlier ones; ours does not (the quadrature does not need
  it: ``dldna.linalg.lanczos_recurrence``), and its top-k Lanczos reorthogonalizes only when Simon's estimate asks.

Each row prints the seconds, the ratio PyHessian / ours, the answers, their errors (relative, or the standard
error for the trace), the Hessian-vector products (HVPs) each used, the GFLOP/s of matrix-product arithmetic
each reached, and ours' floor: the seconds its matrix-product arithmetic would take at the machine's float32
matrix-product peak (measured first). A floor above a third of PyHessian's time means no run of the same
arithmetic can be three times faster on this machine: only fewer operations could.

    .venv/bin/python bench/hessian.py [--sizes 256 1024] [--rounds 3] [--trace-samples 20] [--block-samples 4]
                                      [--density-steps 100] [--device cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import math
import warnings
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from dldna.config import device as default_device
from dldna.data import load_fashion_mnist
from dldna.landscape import hessian as ours
from dldna.landscape.costs import count_flops, fastest_in_turn, matmul_peak
from dldna.models import MLP

PYHESSIAN_TOLERANCES = (1e-3, 1e-4, 1e-5, 1e-6)


def legacy_eig(matrix: Tensor, eigenvectors: bool = True) -> tuple[Tensor, Tensor]:
    """``torch.eig`` as PyHessian calls it (eigenvalues as ``(n, 2)`` real and imaginary parts), for a symmetric
    matrix."""
    values, vectors = torch.linalg.eigh(matrix)
    return torch.stack([values, torch.zeros_like(values)], dim=1), vectors


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

    def _fresh(self, x: Tensor, y: Tensor):
        torch.manual_seed(0)
        model, cuda = copy.deepcopy(self.model), x.device.type == "cuda"
        return self.module.hessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=cuda)

    def eigenvalues(self, x: Tensor, y: Tensor, k: int, tol: float) -> tuple[np.ndarray, int]:
        self.products = 0
        values, _ = self._fresh(x, y).eigenvalues(maxIter=1000, tol=tol, top_n=k)
        return np.array(values), self.products

    def trace(self, x: Tensor, y: Tensor, samples: int) -> np.ndarray:
        """The ``v^T H v`` samples of PyHessian's trace: exactly ``samples`` of them."""
        return np.array(self._fresh(x, y).trace(maxIter=samples, tol=-math.inf))

    def density(self, x: Tensor, y: Tensor, steps: int) -> tuple[np.ndarray, np.ndarray]:
        had_eig, previous = hasattr(torch, "eig"), getattr(torch, "eig", None)
        torch.eig = legacy_eig
        try:
            nodes, weights = self._fresh(x, y).density(iter=steps, n_v=1)
        finally:
            if had_eig:
                torch.eig = previous
            else:
                del torch.eig
        return np.array(nodes), np.array(weights)


def relative_error(values: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(values) - reference) / np.abs(reference)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=1e-3, help="relative eigenvalue error both must reach")
    parser.add_argument("--trace-samples", type=int, default=20, help="PyHessian's Hutchinson probes (>= 2)")
    parser.add_argument("--block-samples", type=int, default=4, help="our block-diagonal probes (>= 2)")
    parser.add_argument("--density-steps", type=int, default=100, help="Lanczos steps of one SLQ run")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: dldna.config.device())")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    args = parser.parse_args()
    if min(args.trace_samples, args.block_samples) < 2 or min(args.rounds, args.density_steps, *args.sizes) < 1:
        parser.error("--trace-samples and --block-samples must be >= 2, --rounds, --density-steps and --sizes >= 1")
    warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")  # PyHessian, every call
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    device = default_device(args.device)
    data = load_fashion_mnist(train_size=max(args.sizes), test_size=10, device=device)
    torch.manual_seed(0)
    model = MLP().to(device)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"MLP 784-512-64-10 ({parameters:,} parameters), freshly initialised; device {device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; fastest of {args.rounds} rounds")
    peak = matmul_peak(device)
    print(f"float32 matrix-product peak (2048^3): {peak:.1f} GFLOP/s")
    reference_runner = PyHessianRunner(model)
    header = (f"{'n':>5} {'task':<7} {'ours s':>7} {'PyH s':>7} {'PyH/ours':>8}  {'ours':>16} {'PyHessian':>16} "
              f"{'err ours':>8} {'err PyH':>8} {'HVPs':>9} {'GFLOP/s':>11} {'floor s':>7}")
    print(header)
    print("-" * len(header))

    def row(size: int, task: str, runs: dict[str, Callable[[], object]], answers: tuple[str, str], errors: tuple[str, str],
            products: tuple[int, int], note: str = "") -> None:
        timed = fastest_in_turn(runs, args.rounds, device)
        (ours_s, _), (theirs_s, _) = timed["ours"], timed["PyHessian"]
        flops = [count_flops(run) for run in runs.values()]
        rates = "/".join(f"{count / seconds / 1e9:.0f}" for count, seconds in zip(flops, (ours_s, theirs_s)))
        floor = flops[0] / peak / 1e9
        print(f"{size:>5} {task:<7} {ours_s:7.3f} {theirs_s:7.3f} {theirs_s / ours_s:8.2f}  {answers[0]:>16} {answers[1]:>16} "
              f"{errors[0]:>8} {errors[1]:>8} {f'{products[0]}/{products[1]}':>9} {rates:>11} {floor:7.3f}{note}", flush=True)

    for size in args.sizes:
        x, y = data.x_train[:size], data.y_train[:size]
        exact = ours.top_eigenvalues(copy.deepcopy(model).double(), x.double(), y, k=2, tol=1e-9, max_iter=300).eigenvalues
        for k in (1, 2):
            mine = ours.top_eigenvalues(model, x, y, k=k)
            for tol in PYHESSIAN_TOLERANCES:
                values, products = reference_runner.eigenvalues(x, y, k, tol)
                if relative_error(values, exact[:k]) <= args.target:
                    break
            note = f"  (PyHessian at tol={tol:g})" + ("" if relative_error(values, exact[:k]) <= args.target else ", target missed")
            row(size, f"top-{k}",
                {"ours": lambda: ours.top_eigenvalues(model, x, y, k=k),
                 "PyHessian": lambda: reference_runner.eigenvalues(x, y, k, tol)},
                (" ".join(f"{v:.4f}" for v in mine.eigenvalues), " ".join(f"{v:.4f}" for v in values)),
                (f"{relative_error(mine.eigenvalues, exact[:k]):.1e}", f"{relative_error(values, exact[:k]):.1e}"),
                (mine.matvecs, products), note)

        reference = ours.hessian_trace(model, x, y, samples=100)
        mine = ours.hessian_trace(model, x, y, samples=args.block_samples)
        samples = reference_runner.trace(x, y, args.trace_samples)
        their_error = samples.std(ddof=1) / math.sqrt(len(samples))
        row(size, "trace",
            {"ours": lambda: ours.hessian_trace(model, x, y, samples=args.block_samples),
             "PyHessian": lambda: reference_runner.trace(x, y, args.trace_samples)},
            (f"{mine.estimate:.2f}", f"{samples.mean():.2f}"), (f"{mine.standard_error:.2f}", f"{their_error:.2f}"),
            (mine.samples * len(list(model.parameters())), len(samples)),
            f"  (reference {reference.estimate:.2f} +- {reference.standard_error:.2f}; errors are standard errors)")

        density = ours.spectral_density(model, x, y, lanczos_steps=args.density_steps, runs=1)
        nodes, _ = reference_runner.density(x, y, args.density_steps)
        row(size, "density",
            {"ours": lambda: ours.spectral_density(model, x, y, lanczos_steps=args.density_steps, runs=1),
             "PyHessian": lambda: reference_runner.density(x, y, args.density_steps)},
            (f"top {density.nodes.max():.4f}", f"top {nodes.max():.4f}"),
            (f"{relative_error(density.nodes.max(), exact[0]):.1e}", f"{relative_error(nodes.max(), exact[0]):.1e}"),
            (density.matvecs, args.density_steps), "  (the largest quadrature node against the top eigenvalue)")


if __name__ == "__main__":
    main()
