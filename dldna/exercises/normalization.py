"""Checks for the exercises of the *Normalization and activations* chapter (ids ``norm.*``)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dldna import activations, norm
from dldna.exercises import register
from dldna.exercises._grading import all_close, close, delegates_to, one_of, same_tensors

BATCH = (1.0, 2.0, 3.0, 6.0)


@register("norm.batchnorm-by-hand", hint="Use the biased variance (divide by 4), then y = gamma * (x - mean) / std + beta.")
def batchnorm_by_hand(answer: list[float]) -> tuple[bool, str]:
    layer = norm.BatchNorm1d(1, eps=0.0, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.fill_(2.0)
        layer.bias.fill_(1.0)
        expected = layer(torch.tensor(BATCH, dtype=torch.float64).view(-1, 1)).flatten().tolist()
    return all_close(answer, expected)


@register(
    "norm.running-stats",
    hint="running = (1 - momentum) * running + momentum * batch statistic, starting from mean 0 and variance 1; the variance used is the unbiased one (divide by m - 1).",
)
def running_stats(answer: tuple[float, float]) -> tuple[bool, str]:
    layer = norm.BatchNorm1d(1, dtype=torch.float64)
    for batch in (BATCH, (0.0, 4.0)):
        layer(torch.tensor(batch, dtype=torch.float64).view(-1, 1))
    return all_close(answer, [layer.running_mean.item(), layer.running_var.item()])


@register("norm.sigmoid-bound", hint="Find the largest value of sigmoid'(x) = sigmoid(x) (1 - sigmoid(x)), then apply it once per layer.")
def sigmoid_bound(answer: float) -> tuple[bool, str]:
    largest_slope = activations.derivative("sigmoid", torch.linspace(-10, 10, 20001)).max().item()
    ok, message = close(answer, largest_slope**10, rel=1e-3, abs_tol=0.0)
    return ok, "the activations alone shrink the gradient at least this much." if ok else message


@register("norm.layer-norm", hint="Mean and biased variance over the last dimension with keepdim=True, then (x - mean) / sqrt(var + eps).")
def layer_norm(function: Callable[[torch.Tensor, float], torch.Tensor]) -> tuple[bool, str]:
    used = delegates_to(function, [F.layer_norm, torch.layer_norm, nn.LayerNorm, norm.LayerNorm, F.group_norm, nn.GroupNorm, norm.GroupNorm])
    if used:
        return False, f"layer_norm calls {used}, which normalises for you: compute the mean and variance yourself."
    generator = torch.Generator().manual_seed(0)
    for shape in [(5, 7), (2, 3, 8)]:
        x = torch.randn(shape, generator=generator, dtype=torch.float64) * 4 + 2
        for eps in (1e-5, 0.5):
            expected = F.layer_norm(x, shape[-1:], eps=eps)
            ok, message = same_tensors([function(x, eps)], [expected], atol=1e-9)
            if not ok:
                return False, f"Input of shape {shape}, eps={eps}: {message}"
    return True, "matches torch.nn.functional.layer_norm."


@register(
    "norm.fold",
    hint="s = gamma / sqrt(running_var + eps); the new weight is s[:, None] * W and the new bias s * (b - running_mean) + beta.",
)
def fold(function: Callable[[nn.Linear, nn.Module], nn.Linear]) -> tuple[bool, str]:
    used = delegates_to(function, [norm.fold_batchnorm, torch.nn.utils.fuse_linear_bn_eval, torch.nn.utils.fuse_linear_bn_weights])
    if used:
        return False, f"fold calls {used}, which folds the layers for you: compute the new weight and bias yourself."
    torch.manual_seed(0)
    linear, batchnorm = nn.Linear(6, 4).double(), norm.BatchNorm1d(4, dtype=torch.float64)
    with torch.no_grad():
        batchnorm.weight.uniform_(0.5, 2.0)
        batchnorm.bias.uniform_(-1.0, 1.0)
        for _ in range(5):
            batchnorm(linear(torch.randn(16, 6, dtype=torch.float64) * 3 + 1))
    batchnorm.eval()
    weight_before = linear.weight.detach().clone()
    folded = function(linear, batchnorm)
    if not torch.equal(linear.weight, weight_before):
        return False, "Return a new layer; the original Linear must not change."
    x = torch.randn(32, 6, dtype=torch.float64)
    with torch.no_grad():
        ok, message = same_tensors([folded(x)], [batchnorm(linear(x))], atol=1e-9)
    return ok, "the folded layer equals Linear + BatchNorm in eval mode." if ok else message


SMALL_BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128)


def small_batch_features() -> torch.Tensor:
    """The features of exercise ``norm.small-batch``: 2048 samples of 16 features with different means and scales."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(2048, 16, generator=generator) * torch.linspace(0.5, 5.0, 16) + torch.linspace(-3.0, 3.0, 16)


def smallest_reliable_batch(threshold: float = 0.2) -> int | None:
    """The experiment of ``norm.small-batch``: the smallest batch size whose normalisation error is below ``threshold``."""
    noise = norm.batch_statistics_noise(
        small_batch_features(), SMALL_BATCH_SIZES, trials=256, generator=torch.Generator().manual_seed(0)
    )
    below = [size for size, error in zip(SMALL_BATCH_SIZES, noise.normalization_error) if error < threshold]
    return below[0] if below else None


@register(
    "norm.small-batch",
    hint="Call norm.batch_statistics_noise(features, batch_sizes, trials=256, generator=torch.Generator().manual_seed(0)) and read normalization_error.",
)
def small_batch(answer: int) -> tuple[bool, str]:
    return one_of(
        answer, SMALL_BATCH_SIZES, smallest_reliable_batch,
        right="below this size the batch statistics are too noisy for the threshold.",
        below="That is not the smallest batch size whose normalization_error is below 0.2: read the error of every size in order.",
    )


PREDICTION_BATCH = 32


@register(
    "norm.small-batch-predict",
    hint="A normalised value x_hat moves by the error of the batch mean (variance 1/m, in units of the std) plus "
    "x_hat times the relative error of the batch std (variance about 1/(2m)); average over x_hat of variance 1.",
)
def small_batch_predict(answer: float) -> tuple[bool, str]:
    ok, message = close(answer, (1.5 / PREDICTION_BATCH) ** 0.5, rel=0.01)
    return ok, "the 1/sqrt(m) argument with both errors counted; compare it with the measured error at 32." if ok else message
