"""Checks for the exercises of the *Optimizers at scale* chapter (ids ``scale.*``).

Expected answers are recomputed with the book's own code: the optimizers' state from ``dldna.train.state_memory``,
saved activations from ``dldna.train.activation_bytes``, the schedule from ``dldna.train.lr_curve`` and the
comparison's hyperparameters from ``dldna.train.scale.SCALE_OPTIMIZERS``.
"""

from __future__ import annotations

import functools

import torch

from dldna.exercises import register
from dldna.exercises._grading import all_close, close, delegates_to

BILLION = 10**9
STATE_OPTIMIZERS = ("SGD + momentum", "AdamW", "Lion")


@functools.cache
def state_floats_per_parameter() -> tuple[float, ...]:
    """Floats of optimizer state per parameter that each of :data:`STATE_OPTIMIZERS` keeps, measured on a small
    network with the comparison's own optimizer settings."""
    from torch import nn

    from dldna.train import state_memory
    from dldna.train.scale import SCALE_OPTIMIZERS

    def build() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 64, generator=generator), torch.randint(0, 10, (8,), generator=generator)
    table = state_memory(build, {name: SCALE_OPTIMIZERS[name] for name in STATE_OPTIMIZERS}, x, y)
    parameters = sum(p.numel() for p in build().parameters())
    return tuple(table[name] / (4 * parameters) for name in STATE_OPTIMIZERS)


@register(
    "scale.state-gigabytes",
    hint="Count the buffers each optimizer keeps per parameter (a momentum; a first and a second moment) and "
    "multiply by 4 bytes per float32 number.",
)
def state_gigabytes(answer: list[float]) -> tuple[bool, str]:
    expected = [4 * floats * BILLION / 1e9 for floats in state_floats_per_parameter()]
    ok, message = all_close(answer, expected, rel=1e-3)
    return ok, "one buffer for SGD with momentum and for Lion, two for AdamW." if ok else message


@register(
    "scale.activation-bytes",
    hint="Per image, count the numbers a layer needs again in the backward pass: a linear layer keeps its input, "
    "a ReLU its output. A tensor kept by two layers is stored once, and weights are parameters, not activations.",
)
def activation_bytes_by_hand(answer: int) -> tuple[bool, str]:
    from torch import nn

    from dldna.train import activation_bytes

    batch = 32
    network = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    expected = activation_bytes(network, torch.zeros(batch, 784), torch.zeros(batch), lambda outputs, targets: outputs.sum())
    ok, message = close(answer, expected, rel=0.0, abs_tol=0.5)
    return ok, "exactly what autograd keeps." if ok else message


SCHEDULE_CASES = ((100, 10, 0.1), (37, 5, 3e-4), (1000, 250, 1.0), (12, 1, 2.0))


@register(
    "scale.warmup-cosine",
    hint="During warm-up the rate rises linearly from 0.01·lr (step 0) towards lr (step `warmup`); from then on "
    "it follows lr·(1 + cos(π·k/K))/2 with k counted from the end of the warm-up and K = total - warmup.",
)
def warmup_cosine_check(function) -> tuple[bool, str]:
    from dldna.train import lr_curve, make_scheduler, warmup_then

    used = delegates_to(function, [make_scheduler, lr_curve, warmup_then])
    if used:
        return False, f"warmup_cosine calls {used}, the package's schedule: write the formula yourself."
    for total, warmup, lr in SCHEDULE_CASES:
        expected = lr_curve("warmup_cosine", total, lr=lr, warmup=warmup)
        for step in range(total):
            ok, message = close(function(step, total, warmup, lr), float(expected[step]), rel=1e-6, abs_tol=1e-12)
            if not ok:
                return False, f"With total={total}, warmup={warmup}, lr={lr:g}, step {step}: {message}"
    return True, f"every step of {len(SCHEDULE_CASES)} schedules matches the one run_at_scale trains with."


def smallest_visible_exponents() -> tuple[int, int]:
    """The largest ``k`` for which ``1 + 2**-k`` differs from 1 in bfloat16 and in float32."""
    largest = []
    for dtype in (torch.bfloat16, torch.float32):
        one = torch.ones((), dtype=dtype)
        largest.append(max(k for k in range(1, 40) if bool(one + torch.tensor(2.0**-k, dtype=dtype) != one)))
    return largest[0], largest[1]


@register(
    "scale.bfloat16-update",
    hint="Add 2**-k to a tensor holding 1.0 in each dtype and compare with 1.0; a float's spacing just above 1 is "
    "2 to the minus number of its mantissa bits, and a sum exactly halfway rounds to the even neighbour.",
)
def bfloat16_update(answer: tuple[int, int]) -> tuple[bool, str]:
    try:
        bf16, fp32 = (int(value) for value in answer)
    except (TypeError, ValueError):
        return False, "Give a pair of integers (k for bfloat16, k for float32)."
    expected = smallest_visible_exponents()
    if (bf16, fp32) == expected:
        return True, "bfloat16 keeps 7 mantissa bits, float32 23: a step of 1e-3 on a weight of size 1 is lost in bfloat16."
    wrong = "bfloat16" if bf16 != expected[0] else "float32"
    return False, f"The {wrong} exponent is not the last one that still changes 1.0."


def checkpoint_ratio() -> float:
    """Saved activations of the CPU-sized vision transformer on 16 FashionMNIST-shaped images, without
    checkpointing over with it (byte counts depend on shapes only, not on the weights)."""
    from dldna.models import set_gradient_checkpointing
    from dldna.train import activation_bytes
    from dldna.train.scale import CPU_SCALE_MODELS

    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 1, 28, 28, generator=generator), torch.randint(0, 10, (16,), generator=generator)
    model = CPU_SCALE_MODELS["Vision transformer"](10, 1, 28)
    plain = activation_bytes(model, images, labels)
    set_gradient_checkpointing(model)
    return plain / activation_bytes(model, images, labels)


@register(
    "scale.checkpoint-ratio",
    hint="Build CPU_SCALE_MODELS['Vision transformer'](10, 1, 28), measure activation_bytes on 16 images of shape "
    "(1, 28, 28), switch set_gradient_checkpointing on, measure again, and divide.",
)
def checkpoint_ratio_check(answer: float) -> tuple[bool, str]:
    ok, message = close(answer, checkpoint_ratio(), rel=0.01)
    return ok, "that is what checkpointing every block saves on this network." if ok else message


@register(
    "scale.decay-per-step",
    hint="Decoupled weight decay multiplies every weight by (1 - lr·λ) at each step; read lr and weight_decay of "
    "each optimizer from SCALE_OPTIMIZERS[name].keywords.",
)
def decay_per_step(answer: list[float]) -> tuple[bool, str]:
    from dldna.train.scale import SCALE_OPTIMIZERS

    expected = [1 - SCALE_OPTIMIZERS[name].keywords["lr"] * SCALE_OPTIMIZERS[name].keywords["weight_decay"] for name in ("AdamW", "Lion")]
    ok, message = all_close(answer, expected, rel=1e-9, abs_tol=1e-12)
    return ok, "the same shrinkage per step: Lion's 10x smaller learning rate is paid back by a 10x larger λ." if ok else message
