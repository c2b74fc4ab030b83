"""Checks for the exercises of the *Getting started* chapter (ids ``start.*``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dldna.exercises import register
from dldna.exercises._grading import all_close, close, delegates_to, letter_choice, one_of, same_tensors


@register("start.parameter-count", hint="Each Linear(n_in, n_out) layer has n_in * n_out weights plus n_out biases.")
def parameter_count(answer: int) -> tuple[bool, str]:
    widths = (784, 256, 32, 10)
    expected = sum(n_in * n_out + n_out for n_in, n_out in zip(widths[:-1], widths[1:]))
    if answer == expected:
        return True, "that is the number of trainable scalars."
    return False, f"{answer} is not the parameter count."


@register("start.guessing", hint="A uniform prediction gives every class probability 1/10; cross-entropy is -ln p(true class).")
def guessing(answer: tuple[float, float]) -> tuple[bool, str]:
    loss, accuracy = answer
    ok_loss, loss_message = close(loss, math.log(10))
    ok_acc, acc_message = close(accuracy, 0.1)
    if ok_loss and ok_acc:
        return True, "a model that knows nothing scores exactly this."
    return False, f"loss: {loss_message} accuracy: {acc_message}"


@register("start.steps-per-epoch", hint="The last batch of an epoch may be smaller than the others, but it is still a step.")
def steps_per_epoch(answer: list[int]) -> tuple[bool, str]:
    expected = [math.ceil(60_000 / batch) for batch in (32, 128, 1000, 1024)]
    return all_close(answer, expected, rel=0, abs_tol=0)


@register("start.accuracy", hint="Take the arg-max of the logits along the class dimension and compare with the labels.")
def accuracy(function) -> tuple[bool, str]:
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(257, 10, generator=generator)
    labels = torch.randint(0, 10, (257,), generator=generator)
    expected = (logits.argmax(dim=1) == labels).double().mean().item()
    ok, message = close(function(logits, labels), expected, rel=1e-9)
    return ok, "correct on random logits." if ok else f"On random logits your accuracy is off: {message}"


@register(
    "start.train-step",
    hint="Zero the gradients, compute the loss, call backward(), step the optimizer, return the loss as a float.",
)
def train_step(function) -> tuple[bool, str]:
    from dldna.train import fit, fit_fast

    used = delegates_to(function, [fit, fit_fast])
    if used:
        return False, f"train_step calls {used}, the book's whole training loop: write the four lines of one step yourself."
    def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = nn.Linear(5, 3)
        return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 5, generator=generator), torch.randint(0, 3, (8,), generator=generator)) for _ in range(3)]
    student_model, student_opt = fresh()
    reference_model, reference_opt = fresh()
    for x, y in batches:
        returned = function(student_model, student_opt, x, y)
        reference_opt.zero_grad()
        loss = F.cross_entropy(reference_model(x), y)
        loss.backward()
        reference_opt.step()
        if not isinstance(returned, float):
            return False, f"train_step should return the loss as a Python float, got {type(returned).__name__}."
        ok, message = close(returned, loss.item(), rel=1e-6)
        if not ok:
            return False, f"The returned loss is not the batch's loss before the update: {message}"
    ok, message = same_tensors(list(student_model.parameters()), list(reference_model.parameters()))
    return ok, "three steps match a reference loop." if ok else f"After three steps the parameters differ: {message}"


DIVERGENCE_LRS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def smallest_diverging_lr() -> float | None:
    """Run the experiment of exercise ``start.divergence``: the smallest learning rate whose SGD run diverges."""
    import dldna
    from dldna.data import load_fashion_mnist
    from dldna.models import MLP
    from dldna.optim import SGD
    from dldna.train import fit

    data = load_fashion_mnist(train_size=2000, test_size=500)
    for lr in DIVERGENCE_LRS:
        dldna.set_seed(0)
        model = MLP()
        if fit(model, SGD(model.parameters(), lr=lr), data, epochs=1, batch_size=128, progress=False).diverged:
            return lr
    return None


@register("start.divergence", hint="Run the six trainings exactly as described and look at `history.diverged`.")
def divergence(answer: float) -> tuple[bool, str]:
    return one_of(
        answer, DIVERGENCE_LRS, smallest_diverging_lr, right="below it every run stays finite for one epoch.",
        below="That is not the smallest learning rate whose run diverges: look at history.diverged for every run.",
    )


WHY_DIVERGENCE_CHOICES = ("a", "b", "c", "d")


@register(
    "start.why-divergence",
    hint="Ask what a gradient step does to the distance from the minimum of a bowl, and what in each statement "
    "depends on the learning rate at all.",
)
def why_divergence(answer: str) -> tuple[bool, str]:
    return letter_choice(
        answer, WHY_DIVERGENCE_CHOICES, "b",
        right="each step overshoots by more than it started with, so the distance grows geometrically.",
        wrong="That statement does not explain it: check whether what it names depends on the learning rate.",
    )
