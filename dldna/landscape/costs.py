"""What the landscape pictures cost: seconds and matrix-product arithmetic of a forward pass, a gradient, a
Hessian-vector product and one point of a surface, measured on the reader's machine.

Two facts make the chapter's tools fast, and :func:`landscape_costs` shows both. A Hessian-vector product
differentiates the gradient once more, so it costs about two gradients (:mod:`dldna.landscape.products`). And the
first layer's output is affine in its weights, so a whole plane of first-layer outputs comes from three matrix
products of the data, after which each grid point runs only the rest of the network
(:mod:`dldna.landscape.first_layer`); split at that layer, a step of Lanczos needs one product with the samples'
Gram matrix instead of two products of the data (:mod:`dldna.landscape.split`).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from dldna.landscape.hessian import HessianOperator
from dldna.landscape.params import trainable_parameters
from dldna.landscape.split import SplitHessian, split_point
from dldna.landscape.surface import loss_plane
from dldna.train.run import LossFn, evaluation_mode

T = TypeVar("T")


class _FlopCount(TorchDispatchMode):
    """Adds up torch's FLOP formulas (``torch.utils.flop_counter``) for every operation dispatched inside it.

    ``FlopCounterMode`` itself also tracks modules with hooks that ``autograd.grad`` on a leaf that is not a
    parameter rejects, which the split Hessian does; this counts the same operations without them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(run: Callable[[], object]) -> int:
    """Floating-point operations of the matrix products and convolutions ``run`` performs (torch's formulas, a
    multiply-add counting two). Counting slows the run, so a counted run is never timed."""
    with _FlopCount() as counter:
        run()
    return counter.total


def fastest_in_turn(runs: dict[str, Callable[[], T]], rounds: int, device: torch.device) -> dict[str, tuple[float, T]]:
    """``name -> (shortest wall time, last result)`` when the runs take turns, once each per round, for ``rounds``
    rounds (waiting for CUDA around each): on a shared machine every run meets the same disturbances, and its
    fastest time is the one they disturbed least."""
    best: dict[str, tuple[float, T]] = {}
    for _ in range(rounds):
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            result = run()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            best[name] = (min(seconds, best[name][0]) if name in best else seconds, result)
    return best


def matmul_peak(device: torch.device, size: int = 2048, rounds: int = 10) -> float:
    """GFLOP/s of the fastest of ``rounds`` float32 ``size x size`` matrix products: the machine's practical peak,
    against which the arithmetic rate of anything else can be read."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    return 2 * size**3 / fastest_in_turn({"matmul": lambda: a @ b}, rounds, device)["matmul"][0] / 1e9


@dataclass(frozen=True)
class Cost:
    """Seconds (the fastest of several rounds) and floating-point operations of matrix products for one operation."""

    seconds: float
    flops: float


def landscape_costs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    directions: tuple[Sequence[Tensor], Sequence[Tensor]],
    loss_fn: LossFn = F.cross_entropy,
    grid: int = 5,
    rounds: int = 3,
) -> dict[str, Cost]:
    """The cost of each operation behind the chapter's pictures, on ``(x, y)`` in evaluation mode.

    Keys: ``"forward"`` (the loss), ``"gradient"``, ``"hvp"`` (a Hessian-vector product from scratch: the
    gradient with its graph, then its derivative), ``"hvp kept"`` (a further product on the kept graph, as
    Lanczos and Hutchinson make them), ``"point loop"`` and ``"point affine"`` (one point of a ``grid x grid``
    plane along ``directions``, the plane's time and arithmetic divided by its points, setup included; the second
    as ``method="auto"`` computes it, with the affine first layer for a model that has one) and, when
    the model can be split at its first layer (:func:`dldna.landscape.split.split_point`), ``"split step"``: one
    Lanczos step on the split Hessian, a product with the Gram matrix and one with ``M``. The model is left as it
    was.
    """
    params = trainable_parameters(model)
    axis = np.linspace(-1, 1, grid)
    vector = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(0)).to(params[0])

    def forward() -> None:
        with torch.no_grad():
            loss_fn(model(x), y)

    def gradient() -> None:
        torch.autograd.grad(loss_fn(model(x), y), params)

    def hvp() -> None:
        HessianOperator(model, loss_fn, x, y).matvec(vector)

    def plane(method: str) -> Callable[[], None]:
        return lambda: loss_plane(model, x, y, directions, axis, axis, loss_fn=loss_fn, batch_size=len(x), method=method)

    with evaluation_mode(model), HessianOperator(model, loss_fn, x, y) as operator, ExitStack() as stack:
        runs = {"forward": forward, "gradient": gradient, "hvp": hvp, "hvp kept": lambda: operator.matvec(vector),
                "point loop": plane("loop"), "point affine": plane("auto")}
        point = split_point(model, x, params)
        if not isinstance(point, str):
            split = stack.enter_context(SplitHessian(model, loss_fn, x, y, params, *point))
            reduced = torch.randn(split.dim, generator=torch.Generator().manual_seed(0)).to(vector)
            runs["split step"] = lambda: split.matvec(split.metric(reduced))
        for run in runs.values():
            run()  # warm-up (and the graph the kept product reuses)
        seconds = {name: best for name, (best, _) in fastest_in_turn(runs, rounds, x.device).items()}
        points = {"point loop": grid**2, "point affine": grid**2}
        return {name: Cost(seconds[name] / points.get(name, 1), count_flops(run) / points.get(name, 1)) for name, run in runs.items()}
