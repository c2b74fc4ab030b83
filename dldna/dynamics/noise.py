"""The gradient noise scale of McCandlish et al. (2018), "An Empirical Model of Large-Batch Training".

A minibatch gradient ``G_B`` of ``B`` independent samples has mean ``G`` (the full gradient) and covariance
``Sigma / B``, where ``Sigma`` is the covariance of per-sample gradients. Hence ``E|G_B|^2 = |G|^2 + tr(Sigma)/B``:
the noise term matches the signal at ``B_simple = tr(Sigma) / |G|^2``, the *simple noise scale*. Below it,
doubling the batch almost halves the gradient noise (nearly perfect scaling of steps with batch size); far above
it, a bigger batch barely improves the step (diminishing returns). McCandlish et al. show the critical batch
size, where the trade-off between steps and samples turns, is close to ``B_simple`` when the Hessian is
well-conditioned (``B_noise``, the Hessian-weighted version, is the sharper predictor; it needs the Hessian).

Two unbiased estimators are given; both need only gradients:

- :func:`two_batch_noise_scale`: the paper's Appendix A estimator from squared gradient norms measured at two
  batch sizes, ``B_small`` and ``B_big`` (in data-parallel training, per-device and all-reduced gradients).
- :func:`estimate_noise_scale` and the :class:`GradientNoiseScale` callback: from ``m`` gradients of independent
  batches of size ``b`` (the spread of the per-batch gradients around their mean). Their sample variance
  estimates ``tr(Sigma) / b``, and their mean is a gradient over ``m * b`` samples, whose squared norm minus the
  noise it still carries estimates ``|G|^2``. This is the same idea with ``m`` small batches instead of two
  sizes, and it gives a less noisy ``tr(Sigma)`` from the same samples.

Both ``tr(Sigma)`` and ``|G|^2`` estimates are noisy, and ``|G|^2`` can even come out negative; the paper
averages each over many steps before taking the ratio, which the callback does with an exponential average.

:func:`minibatch_gradient_error` checks the noise model itself on a training set of ``N`` samples: it compares
random minibatch gradients with the exact full gradient (:func:`full_gradient`) and with the prediction
``E|G_B - G|^2 = tr(Sigma)/B * (1 - B/N)``. The factor ``1 - B/N`` is the finite-population correction of a
batch drawn *without* replacement, as ``fit`` draws it (a batch of all ``N`` samples has no noise); the
``1/B`` law alone assumes independent draws and overstates the noise of large batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dldna.callbacks import Callback, TrainState
from dldna.train.run import LossFn, training_mode


@dataclass(frozen=True)
class NoiseScale:
    """``trace`` estimates ``tr(Sigma)`` (per-sample gradient variance summed over parameters), ``grad_sq`` the
    squared norm of the full gradient, ``b_simple`` their ratio (``nan`` when ``grad_sq <= 0``)."""

    trace: float
    grad_sq: float
    batch_size: int
    num_batches: int

    @property
    def b_simple(self) -> float:
        return self.trace / self.grad_sq if self.grad_sq > 0 else float("nan")


def two_batch_noise_scale(small_sq: float, big_sq: float, b_small: int, b_big: int) -> tuple[float, float, float]:
    """``(tr(Sigma), |G|^2, B_simple)`` from ``|G_small|^2`` and ``|G_big|^2``, squared norms of gradients over
    ``b_small`` and ``b_big`` samples (McCandlish et al., 2018, Appendix A.1). Average many measurements of each
    squared norm before calling it: a single pair is very noisy."""
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got b_small={b_small}, b_big={b_big}")
    grad_sq = (b_big * big_sq - b_small * small_sq) / (b_big - b_small)
    trace = (small_sq - big_sq) / (1 / b_small - 1 / b_big)
    return trace, grad_sq, trace / grad_sq if grad_sq > 0 else float("nan")


def noise_from_batch_gradients(gradients: torch.Tensor, batch_size: int) -> NoiseScale:
    """The estimator from ``m`` flattened gradients (rows of ``gradients``), each the mean over ``batch_size``
    independent samples: ``tr(Sigma) = b * sum_i |g_i - g_mean|^2 / (m - 1)`` and
    ``|G|^2 = |g_mean|^2 - tr(Sigma) / (m * b)``."""
    m = gradients.shape[0]
    if m < 2:
        raise ValueError(f"need at least two batch gradients, got {m}")
    g = gradients.double()
    mean = g.mean(dim=0)
    trace = batch_size * (g - mean).pow(2).sum().item() / (m - 1)
    grad_sq = mean.pow(2).sum().item() - trace / (m * batch_size)
    return NoiseScale(trace, grad_sq, batch_size, m)


def _flat_gradient(model: nn.Module, params: list[nn.Parameter], x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
    grads = torch.autograd.grad(loss_fn(model(x), y), params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def flat_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy) -> torch.Tensor:
    """The gradient of the mean loss over ``(x, y)`` with respect to every trainable parameter of ``model``, as one
    flat vector (parameters in ``model.parameters()`` order). ``.grad`` is left untouched."""
    return _flat_gradient(model, [p for p in model.parameters() if p.requires_grad], x, y, loss_fn)


def full_gradient(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn = F.cross_entropy, chunk: int = 8192
) -> torch.Tensor:
    """:func:`flat_gradient` over all of ``(x, y)``, summed over chunks of ``chunk`` samples so that a whole
    training set fits in memory; ``loss_fn`` must average over the samples (as cross-entropy does)."""
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of samples, got {chunk}")
    total = None
    for start in range(0, len(y), chunk):
        part = flat_gradient(model, x[start : start + chunk], y[start : start + chunk], loss_fn) * len(y[start : start + chunk])
        total = part if total is None else total + part
    if total is None:
        raise ValueError("x and y hold no samples")
    return total / len(y)


def _batch_gradients(model: nn.Module, chunks: list[tuple[torch.Tensor, torch.Tensor]], loss_fn: LossFn) -> torch.Tensor:
    """Flattened gradients of each ``(x, y)`` chunk, computed without touching ``.grad``, the model's buffers
    (batch-norm running statistics), its train/eval mode or the global random state."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    device = chunks[0][0].device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        rows = [_flat_gradient(model, params, x, y, loss_fn) for x, y in chunks]
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    return torch.stack(rows)


def estimate_noise_scale(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int = 16,
    loss_fn: LossFn = F.cross_entropy,
    seed: int = 0,
) -> NoiseScale:
    """``B_simple`` of ``model`` at its current weights, from ``num_batches`` disjoint random batches of
    ``batch_size`` samples of ``(x, y)`` (see :func:`noise_from_batch_gradients`). The model is left as it was.

    Gradients are taken in training mode, as in training. More batches give a less noisy estimate; the batch size
    only sets how the samples are grouped, not what is estimated.
    """
    if batch_size * num_batches > len(y):
        raise ValueError(f"batch_size * num_batches = {batch_size * num_batches} exceeds the {len(y)} samples given")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    order = torch.randperm(len(y), generator=generator)[: batch_size * num_batches].to(y.device)
    chunks = [(x[index], y[index]) for index in order.split(batch_size)]
    with training_mode(model):
        return noise_from_batch_gradients(_batch_gradients(model, chunks, loss_fn), batch_size)


class GradientNoiseScale(Callback):
    """Estimates ``B_simple`` during :func:`~dldna.train.fit` every ``every`` steps from the current batch.

    The batch is cut into ``chunks`` equal parts (a remainder is dropped) and each part's gradient is computed by
    an extra backward pass, so a measurement costs about one more forward and backward pass of the batch. Each
    record under ``"noise_scale"`` holds that batch's ``trace`` and ``grad_sq`` estimates and ``b_simple``, the
    ratio of their exponential moving averages (weight ``1 - smoothing`` on the newest estimate, bias-corrected),
    which is the number to read.
    """

    def __init__(self, every: int = 20, chunks: int = 4, smoothing: float = 0.9, loss_fn: LossFn = F.cross_entropy) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if chunks < 2:
            raise ValueError(f"chunks must be >= 2, got {chunks}")
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.every, self.chunks, self.smoothing, self.loss_fn = every, chunks, smoothing, loss_fn
        self._averages = [0.0, 0.0]
        self._count = 0

    def on_train_begin(self, state: TrainState) -> None:
        self._averages, self._count = [0.0, 0.0], 0

    def after_backward(self, state: TrainState) -> None:
        if state.step % self.every or state.inputs is None:
            return
        size = len(state.targets) // self.chunks
        if size < 1:
            raise ValueError(f"a batch of {len(state.targets)} samples cannot be cut into {self.chunks} chunks")
        chunks = [(state.inputs[i * size : (i + 1) * size], state.targets[i * size : (i + 1) * size]) for i in range(self.chunks)]
        estimate = noise_from_batch_gradients(_batch_gradients(state.model, chunks, self.loss_fn), size)
        self._count += 1
        for i, value in enumerate((estimate.trace, estimate.grad_sq)):
            self._averages[i] = self.smoothing * self._averages[i] + (1 - self.smoothing) * value
        correction = 1 - self.smoothing**self._count
        trace, grad_sq = (value / correction for value in self._averages)
        state.record(
            "noise_scale",
            {"step": state.step, "trace": estimate.trace, "grad_sq": estimate.grad_sq, "b_simple": trace / grad_sq if grad_sq > 0 else float("nan")},
        )


@dataclass(frozen=True)
class MinibatchError:
    """What :func:`minibatch_gradient_error` measured, one entry per batch size.

    ``relative_error`` is the root mean square of ``|g_B - g| / |g|`` over the draws, ``cosine`` the mean cosine
    between ``g_B`` and the full gradient ``g``; ``predicted`` is ``sqrt(trace / B * (1 - B / N)) / |g|`` for a
    batch drawn without replacement and ``predicted_independent`` the same without the factor ``1 - B/N``.
    ``trace`` estimates ``tr(Sigma)`` (:func:`estimate_noise_scale`), ``grad_sq`` is the exact ``|g|^2``.
    """

    batch_sizes: tuple[int, ...]
    relative_error: tuple[float, ...]
    cosine: tuple[float, ...]
    predicted: tuple[float, ...]
    predicted_independent: tuple[float, ...]
    trace: float
    grad_sq: float
    population: int

    @property
    def b_simple(self) -> float:
        """The simple noise scale ``tr(Sigma) / |g|^2`` with the exact full gradient."""
        return self.trace / self.grad_sq


def minibatch_gradient_error(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_sizes: Sequence[int],
    *,
    draws: int = 16,
    noise_batch: int = 64,
    noise_batches: int = 64,
    loss_fn: LossFn = F.cross_entropy,
    seed: int = 0,
) -> MinibatchError:
    """How far minibatch gradients of ``model`` at its current weights stray from the full gradient over the
    ``N = len(y)`` samples, measured and predicted.

    For each batch size, ``draws`` batches are drawn uniformly without replacement (as an epoch of ``fit`` draws
    them) and compared with the exact full gradient. The prediction uses ``tr(Sigma)`` from
    :func:`estimate_noise_scale` over ``noise_batches`` disjoint batches of ``noise_batch`` samples, and the
    finite-population factor ``1 - B/N``. Gradients are taken in training mode; the model is left as it was.
    """
    population = len(y)
    sizes = tuple(int(b) for b in batch_sizes)
    if not sizes or any(not 1 <= b <= population for b in sizes):
        raise ValueError(f"batch_sizes must be between 1 and the {population} samples given, got {list(batch_sizes)}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    noise = estimate_noise_scale(model, x, y, batch_size=noise_batch, num_batches=noise_batches, loss_fn=loss_fn, seed=seed)
    generator = torch.Generator(device="cpu").manual_seed(seed + 1)
    with training_mode(model):
        full = full_gradient(model, x, y, loss_fn)
        full_norm = full.norm()
        errors, cosines = [], []
        for b in sizes:
            squared, cosine = [], []
            for _ in range(draws):
                index = torch.randperm(population, generator=generator)[:b].to(y.device)
                g = flat_gradient(model, x[index], y[index], loss_fn)
                squared.append(((g - full).norm() / full_norm).item() ** 2)
                cosine.append(F.cosine_similarity(g, full, dim=0).item())
            errors.append(math.sqrt(sum(squared) / draws))
            cosines.append(sum(cosine) / draws)
    grad_sq = full_norm.item() ** 2
    independent = tuple(math.sqrt(noise.trace / b / grad_sq) for b in sizes)
    predicted = tuple(value * math.sqrt(1 - b / population) for value, b in zip(independent, sizes))
    return MinibatchError(sizes, tuple(errors), tuple(cosines), predicted, independent, noise.trace, grad_sq, population)
