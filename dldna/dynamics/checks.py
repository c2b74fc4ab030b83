"""The training-debugging checklist as functions that measure, decide and say why.

Each check returns a :class:`CheckResult`: whether it passed, the numbers it measured, and what passing
requires. None of them changes the model it is given (they work on copies).

- :func:`check_initial_loss`: an untrained classifier should be uncertain: its loss near ``ln(num_classes)``.
- :func:`check_overfit`: a model that works can drive the loss on two samples to about zero.
- :func:`check_gradient_flow`: every trainable parameter receives a finite, non-zero gradient.
- :func:`check_random_labels`: trained on shuffled labels, a model must score at chance on the test set, while the
  same model on the real labels must do much better (else the data pipeline leaks or scrambles labels).
- :func:`check_gradients`: autograd agrees with finite differences in float64 (and ``torch.autograd.gradcheck``
  passes on small models), which catches a wrong hand-written ``backward``.

:mod:`dldna.dynamics.bugs` holds deliberately broken models and pipelines, one per check, that each fail it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dldna.callbacks import Callback, TrainState
from dldna.data import Dataset
from dldna.train import evaluate, fit
from dldna.train.run import LossFn
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def _adam(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-3)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict: ``passed``, the ``measured`` numbers, and ``expected`` (what passing requires)."""

    name: str
    passed: bool
    measured: dict[str, float] = field(default_factory=dict)
    expected: str = ""

    def __str__(self) -> str:
        numbers = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in self.measured.items())
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {numbers} (expected {self.expected})"


def check_initial_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, num_classes: int | None = None, tolerance: float = 0.25, loss_fn: LossFn = F.cross_entropy) -> CheckResult:
    """Is the untrained model's mean loss on ``(x, y)`` within ``tolerance`` of ``ln(num_classes)``?

    A freshly initialised classifier should spread its probability evenly, scoring ``-ln(1 / C)`` per example on
    balanced classes. A much larger loss means confidently wrong outputs (logits scaled up, a bad last-layer
    initialisation); it wastes the first steps on undoing that and can destabilise training.
    """
    classes = num_classes if num_classes is not None else int(y.max()) + 1
    loss, _ = evaluate(model, x, y, loss_fn)
    expected = math.log(classes)
    return CheckResult(
        "initial loss", abs(loss - expected) <= tolerance, {"loss": loss, "ln(C)": expected}, f"|loss - ln {classes}| <= {tolerance}"
    )


class _StopBelow(Callback):
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def on_step_end(self, state: TrainState) -> None:
        if state.loss.item() < self.threshold:
            state.stop = True


def two_samples(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first sample and the first later sample of a different class."""
    other = int((y != y[0]).nonzero()[0])
    index = torch.tensor([0, other], device=y.device)
    return x[index], y[index]


def check_overfit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int = 300,
    threshold: float = 0.01,
    make_optimizer: OptimizerFactory = _adam,
    loss_fn: LossFn = F.cross_entropy,
) -> CheckResult:
    """Can a copy of ``model`` drive the loss on two samples of different classes below ``threshold`` within
    ``steps`` full-batch steps (Adam, learning rate 1e-3, unless ``make_optimizer`` says otherwise)?

    Memorising two examples is the easiest task a network can get. Failing it points at the model or the loss
    (outputs that cannot express a confident answer, a layer that ignores its input, a loss given the wrong
    kind of output), not at the data or the hyperparameters.
    """
    x2, y2 = two_samples(x, y)
    tiny = Dataset("two samples", x2, y2, x2, y2, tuple(str(c) for c in range(int(y.max()) + 1)), (0.0,), (1.0,))
    trial = copy.deepcopy(model)
    history = fit(trial, make_optimizer(trial.parameters()), tiny, epochs=steps, batch_size=2, loss_fn=loss_fn,
                  callbacks=[_StopBelow(threshold)], progress=False)
    final = history.steps["loss"][-1]
    return CheckResult(
        "overfit two samples", final < threshold, {"final loss": final, "steps": history.num_steps}, f"loss < {threshold} within {steps} steps"
    )


def check_gradient_flow(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn: LossFn = F.cross_entropy) -> CheckResult:
    """Does every trainable parameter of (a copy of) ``model`` get a finite, non-zero gradient from one batch?

    A parameter without gradient is silently never trained: a ``.detach()``, an ``torch.no_grad()`` block, or a
    layer that is built but not used in ``forward``.
    """
    trial = copy.deepcopy(model)
    trial.train()
    loss_fn(trial(x), y).backward()
    starved = [name for name, p in trial.named_parameters() if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
    broken = [name for name, p in trial.named_parameters() if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
    total = sum(1 for p in trial.parameters() if p.requires_grad)
    measured = {"parameters": total, "without gradient": len(starved), "non-finite": len(broken)}
    if starved:
        measured["first without gradient"] = starved[0]
    return CheckResult("gradient flow", not starved and not broken, measured, "every parameter gets a finite non-zero gradient")


def check_random_labels(
    make_model: Callable[[], nn.Module],
    data: Dataset,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    make_optimizer: OptimizerFactory = _adam,
    pipeline: Callable[[Dataset], Dataset] | None = None,
    margin: float = 0.05,
    min_gap: float = 0.2,
    seed: int = 0,
) -> CheckResult:
    """Train ``make_model()`` on the real and on shuffled training labels; test both on the real test labels.

    The shuffled-label model can only memorise, so on the test set it must score at chance (the frequency of
    the commonest test class, plus ``margin``), and the real one must beat it by ``min_gap``. ``pipeline`` is
    applied to the data after the labels are shuffled, as a preprocessing step would be: one that leaks labels
    into the inputs lets the shuffled model score above chance, one that scrambles inputs against labels makes
    the real model score at chance, and both fail the check.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    permutation = torch.randperm(len(data.y_train), generator=generator).to(data.y_train.device)
    shuffled = replace(data, y_train=data.y_train[permutation])
    if pipeline is not None:
        data, shuffled = pipeline(data), pipeline(shuffled)
    accuracy = {}
    for name, version in (("real", data), ("shuffled", shuffled)):
        torch.manual_seed(seed)
        model = make_model()
        accuracy[name] = fit(model, make_optimizer(model.parameters()), version, epochs=epochs, batch_size=batch_size, seed=seed, progress=False).final_test_acc
    chance = torch.bincount(data.y_test).max().item() / len(data.y_test)
    passed = accuracy["shuffled"] <= chance + margin and accuracy["real"] >= accuracy["shuffled"] + min_gap
    return CheckResult(
        "random-label baseline",
        passed,
        {"real-label test acc": accuracy["real"], "shuffled-label test acc": accuracy["shuffled"], "chance": chance},
        f"shuffled <= chance + {margin} and real >= shuffled + {min_gap}",
    )


def check_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: LossFn = F.cross_entropy,
    eps: float = 1e-6,
    tolerance: float = 1e-4,
    max_entries: int = 300,
    max_gradcheck_parameters: int = 2_000,
    seed: int = 0,
) -> CheckResult:
    """Compare autograd's gradient of the loss with central finite differences, in float64 on a copy of ``model``.

    Up to ``max_entries`` parameter entries (chosen at random) are perturbed by ``+-eps``; the largest relative
    error ``|numeric - autograd| / max(|numeric| + |autograd|, 1e-3 * g_max)`` must stay below ``tolerance``, where
    ``g_max`` is the largest gradient entry (the floor keeps round-off on near-zero entries, about 1e-10 in
    float64, from counting as a large relative error). For models
    with at most ``max_gradcheck_parameters`` parameters, ``torch.autograd.gradcheck`` also checks the whole
    Jacobian of the outputs. Randomness (dropout) is reseeded identically for every evaluation.
    """
    trial = copy.deepcopy(model).double()
    x64 = x.double() if x.is_floating_point() else x
    names = [name for name, p in trial.named_parameters() if p.requires_grad]
    originals = [p.detach().clone() for name, p in trial.named_parameters() if p.requires_grad]

    def outputs(*params: torch.Tensor) -> torch.Tensor:
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return functional_call(trial, dict(zip(names, params)), (x64,))

    def loss_at(params: list[torch.Tensor]) -> torch.Tensor:
        return loss_fn(outputs(*params), y)

    params = [p.clone().requires_grad_(True) for p in originals]
    autograd = torch.autograd.grad(loss_at(params), params)
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.tensor([p.numel() for p in originals])
    total = int(sizes.sum())
    chosen = torch.randperm(total, generator=generator)[:max_entries]
    offsets = torch.cumsum(sizes, 0) - sizes
    floor = 1e-3 * max(g.abs().max().item() for g in autograd)
    worst, worst_abs = 0.0, 0.0
    with torch.no_grad():
        for flat_index in chosen.tolist():
            which = int(torch.searchsorted(offsets, torch.tensor(flat_index), right=True)) - 1
            entry = flat_index - int(offsets[which])
            shifted = [p.clone() for p in originals]
            shifted[which].view(-1)[entry] += eps
            upper = loss_at(shifted).item()
            shifted[which].view(-1)[entry] -= 2 * eps
            lower = loss_at(shifted).item()
            numeric = (upper - lower) / (2 * eps)
            analytic = autograd[which].reshape(-1)[entry].item()
            gap = abs(numeric - analytic)
            worst_abs = max(worst_abs, gap)
            worst = max(worst, gap / max(abs(numeric) + abs(analytic), floor, 1e-300))
    measured: dict[str, float] = {"entries checked": len(chosen), "max relative error": worst, "max abs error": worst_abs}
    passed = worst < tolerance
    if total <= max_gradcheck_parameters:
        inputs = tuple(p.clone().requires_grad_(True) for p in originals)
        gradcheck_ok = torch.autograd.gradcheck(outputs, inputs, eps=eps, atol=1e-5, rtol=1e-4, raise_exception=False)
        measured["gradcheck"] = "passed" if gradcheck_ok else "failed"
        passed = passed and gradcheck_ok
    return CheckResult("gradient check", passed, measured, f"max relative error < {tolerance:g}")
