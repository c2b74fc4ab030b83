"""Normalisation layers written from their equations: batch, layer, group and instance normalisation.

Every layer computes ``y = gamma * (x - mean) / sqrt(var + eps) + beta``; they differ only in the elements the
mean and variance are taken over (:func:`reduction_axes`, :func:`shared_statistics`, drawn by
:func:`dldna.viz.norm.plot_shared_statistics`). The forward passes use
plain tensor operations and autograd supplies the backward pass. Constructor arguments, parameter and buffer
names follow ``torch.nn``, so a state dict moves between these layers and torch's.

Batch normalisation (Ioffe & Szegedy, 2015) is the one layer that behaves differently in training and
evaluation: training normalises with the statistics of the current batch and updates exponential running
averages; evaluation normalises with those running averages, which is what lets :func:`fold_batchnorm` merge
the layer into the preceding Linear or Conv for inference.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn

NORM_KINDS = ("batch", "layer", "instance", "group")


def _check_common(num_features: int, eps: float, name: str = "num_features") -> None:
    if num_features < 1:
        raise ValueError(f"Invalid number of features: {name}={num_features} (must be >= 1)")
    if eps < 0:
        raise ValueError(f"Invalid epsilon: eps={eps} (must be >= 0)")


def _check_momentum(momentum: float | None) -> None:
    if momentum is not None and not 0.0 <= momentum <= 1.0:
        raise ValueError(f"Invalid momentum: momentum={momentum} (must be in [0, 1] or None)")


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``(N, C, *)``."""
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


def _standardize(x: Tensor, dims: Sequence[int], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(x - mean) / sqrt(var + eps)`` over ``dims`` with the biased variance, plus the mean and variance."""
    var, mean = torch.var_mean(x, dim=tuple(dims), correction=0, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps), mean, var


class _RunningStatsNorm(nn.Module):
    """Shared state of batch and instance normalisation: per-channel affine parameters and running statistics."""

    def __init__(
        self,
        num_features: int,
        eps: float,
        momentum: float | None,
        affine: bool,
        track_running_stats: bool,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        bias: bool,
    ) -> None:
        super().__init__()
        _check_common(num_features, eps)
        _check_momentum(momentum)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.ones(num_features, **factory)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features, **factory)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def _affine(self, normalized: Tensor) -> Tensor:
        shape = _channel_shape(normalized)
        if self.weight is not None:
            normalized = normalized * self.weight.view(shape)
        if self.bias is not None:
            normalized = normalized + self.bias.view(shape)
        return normalized

    def _update_running(self, mean: Tensor, unbiased_var: Tensor, factor: float) -> None:
        with torch.no_grad():
            self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
            self.running_var.mul_(1 - factor).add_(unbiased_var, alpha=factor)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_RunningStatsNorm):
    """Batch normalisation over every axis except the channel axis 1: ``(N,)``, ``(N, L)`` or ``(N, H, W)``."""

    input_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)
        if track_running_stats:
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() not in self.input_dims:
            raise ValueError(f"{type(self).__name__} expects a {' or '.join(map(str, self.input_dims))}-d input, got {x.dim()}-d")
        if x.shape[1] != self.num_features:
            raise ValueError(f"Expected {self.num_features} channels at dimension 1, got {x.shape[1]}")
        dims = [0, *range(2, x.dim())]
        if self.training or not self.track_running_stats:
            count = x.numel() // x.shape[1]
            if self.training and count < 2:
                raise ValueError(
                    f"Batch norm needs more than 1 value per channel when training, got input shape {tuple(x.shape)}: "
                    "use a batch of at least 2, call model.eval(), or use LayerNorm/GroupNorm, which do not average over the batch"
                )
            normalized, mean, var = _standardize(x, dims, self.eps)
            if self.training and self.track_running_stats:
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self._update_running(mean.flatten(), var.flatten() * count / (count - 1), factor)
        else:
            shape = _channel_shape(x)
            normalized = (x - self.running_mean.view(shape)) / torch.sqrt(self.running_var.view(shape) + self.eps)
        return self._affine(normalized)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs, statistics per channel over ``N`` (and ``L``).

    Training normalises with the batch's mean and biased variance and moves the running mean and the running
    *unbiased* variance towards them by ``momentum`` (``None``: a cumulative average over all batches seen), as
    torch does; evaluation normalises with the running statistics.
    """

    input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs, statistics per channel over ``(N, H, W)``: every position
    of a feature map shares the channel's statistics, just as it shares the convolution's weights."""

    input_dims = (4,)


class InstanceNorm2d(_RunningStatsNorm):
    """Instance normalisation (Ulyanov et al., 2016) of ``(N, C, H, W)`` inputs: statistics per sample and
    channel over ``(H, W)``. Defaults follow torch (no affine parameters, no running statistics); with
    ``track_running_stats=True`` training averages the per-instance statistics over the batch into running
    estimates that evaluation then uses."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        if momentum is None:
            raise ValueError("Invalid momentum: momentum=None (instance norm needs a number in [0, 1])")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"InstanceNorm2d expects a 4-d input (N, C, H, W), got {x.dim()}-d")
        if x.shape[1] != self.num_features:
            raise ValueError(f"Expected {self.num_features} channels at dimension 1, got {x.shape[1]}")
        if self.training or not self.track_running_stats:
            count = x.shape[2] * x.shape[3]
            if self.training and count < 2:
                raise ValueError(f"Instance norm needs more than 1 spatial element when training, got shape {tuple(x.shape)}")
            normalized, mean, var = _standardize(x, (2, 3), self.eps)
            if self.training and self.track_running_stats:
                unbiased = var * count / (count - 1)
                self._update_running(mean.mean(dim=0).flatten(), unbiased.mean(dim=0).flatten(), self.momentum)
        else:
            shape = _channel_shape(x)
            normalized = (x - self.running_mean.view(shape)) / torch.sqrt(self.running_var.view(shape) + self.eps)
        return self._affine(normalized)


class LayerNorm(nn.Module):
    """Layer normalisation (Ba et al., 2016): statistics per sample over the trailing ``normalized_shape`` axes,
    identical in training and evaluation and independent of the batch size. The affine parameters have shape
    ``normalized_shape`` (one gain and shift per normalised element)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"Invalid shape: normalized_shape={normalized_shape} (must be non-empty and positive)")
        _check_common(math.prod(shape), eps, "normalized_shape")
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.ones(shape, **factory)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape, **factory)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ValueError(f"Expected trailing shape {self.normalized_shape}, got input shape {tuple(x.shape)}")
        normalized, _, _ = _standardize(x, range(-k, 0), self.eps)
        if self.weight is not None:
            normalized = normalized * self.weight
        if self.bias is not None:
            normalized = normalized + self.bias
        return normalized

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(nn.Module):
    """Group normalisation (Wu & He, 2018) of ``(N, C, *)`` inputs: the channels are split into ``num_groups``
    groups and each sample is normalised per group over the group's channels and all positions. One group is
    layer normalisation over ``(C, H, W)``; ``num_groups = C`` is instance normalisation (plus affine)."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        _check_common(num_channels, eps, "num_channels")
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"Invalid group count: num_groups={num_groups} (must be >= 1 and divide num_channels={num_channels})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.ones(num_channels, **factory)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_channels, **factory)) if affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"Expected input (N, {self.num_channels}, *), got shape {tuple(x.shape)}")
        grouped = x.reshape(x.shape[0], self.num_groups, -1)
        normalized = _standardize(grouped, (2,), self.eps)[0].reshape(x.shape)
        shape = _channel_shape(x)
        if self.weight is not None:
            normalized = normalized * self.weight.view(shape)
        if self.bias is not None:
            normalized = normalized + self.bias.view(shape)
        return normalized

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


NORM_LAYERS: tuple[type[nn.Module], ...] = (
    BatchNorm1d, BatchNorm2d, InstanceNorm2d, LayerNorm, GroupNorm,
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.LayerNorm, nn.GroupNorm,
)
"""Normalisation layer types, these and torch's: initialisers reset their gain to 1 and shift to 0."""


def fold_batchnorm(layer: nn.Linear | nn.Conv1d | nn.Conv2d, batchnorm: nn.Module) -> nn.Linear | nn.Conv1d | nn.Conv2d:
    """A new layer equal to ``batchnorm(layer(x))`` in evaluation mode, for inference without the norm layer.

    With ``s = gamma / sqrt(running_var + eps)`` per output channel, ``W' = s * W`` and
    ``b' = s * (b - running_mean) + beta``. Works with this module's batch norms and torch's; neither input is
    modified. Training-mode batch norm cannot be folded: it depends on the batch.
    """
    if getattr(batchnorm, "running_mean", None) is None:
        raise ValueError("Cannot fold a batch norm without running statistics: build it with track_running_stats=True")
    out_features = layer.weight.shape[0]
    if batchnorm.num_features != out_features:
        raise ValueError(f"Batch norm has {batchnorm.num_features} features but the layer has {out_features} outputs")
    with torch.no_grad():
        scale = torch.rsqrt(batchnorm.running_var + batchnorm.eps)
        if batchnorm.weight is not None:
            scale = scale * batchnorm.weight
        shift = -batchnorm.running_mean * scale
        if batchnorm.bias is not None:
            shift = shift + batchnorm.bias
        folded = copy.deepcopy(layer)
        folded.weight.mul_(scale.view(-1, *[1] * (layer.weight.dim() - 1)))
        old_bias = layer.bias if layer.bias is not None else torch.zeros_like(shift)
        folded.bias = nn.Parameter(old_bias * scale + shift)
    return folded


def reduction_axes(kind: str, ndim: int = 4) -> tuple[int, ...]:
    """The axes of an ``(N, C, *spatial)`` tensor that ``kind`` ("batch", "layer", "instance", "group") averages
    over. Group norm averages over axes ``(1, 2, ...)`` but only within a group of channels, so its channel axis
    is shared partially; :func:`shared_statistics` draws exactly which elements share statistics."""
    if ndim < 2:
        raise ValueError(f"Invalid layout: ndim={ndim} (need at least (N, C))")
    spatial = tuple(range(2, ndim))
    axes = {"batch": (0, *spatial), "layer": (1, *spatial), "instance": spatial, "group": (1, *spatial)}
    if kind not in axes:
        raise ValueError(f"Unknown norm: kind={kind!r} (must be one of {NORM_KINDS})")
    if kind == "instance" and not spatial:
        raise ValueError("Instance norm needs spatial axes: ndim must be >= 3")
    return axes[kind]


def shared_statistics(
    kind: str, batch_size: int, channels: int, num_groups: int = 2, sample: int = 0, channel: int = 0
) -> np.ndarray:
    """Boolean ``(batch_size, channels)`` mask of the (sample, channel) feature maps whose values enter the same
    mean and variance as feature map ``(sample, channel)``; spatial positions are always shared by all four norms.
    This is the picture of Wu & He (2018), Figure 2, as data."""
    reduction_axes(kind)
    if not (0 <= sample < batch_size and 0 <= channel < channels):
        raise ValueError(f"Invalid cell: (sample, channel)=({sample}, {channel}) outside ({batch_size}, {channels})")
    if kind == "group" and (num_groups < 1 or channels % num_groups):
        raise ValueError(f"Invalid group count: num_groups={num_groups} (must divide channels={channels})")
    samples = np.arange(batch_size)[:, None]
    chans = np.arange(channels)[None, :]
    same_sample, same_channel = samples == sample, chans == channel
    group_size = channels // num_groups if kind == "group" else channels
    masks = {
        "batch": same_channel & np.ones_like(same_sample),
        "layer": same_sample & np.ones_like(same_channel),
        "instance": same_sample & same_channel,
        "group": same_sample & (chans // group_size == channel // group_size),
    }
    return masks[kind]


@dataclass
class BatchStatisticsNoise:
    """How far batch statistics fall from the population's, per batch size (root mean square over features and
    trials). ``normalization_error`` compares each sample normalised with its batch's statistics against the same
    sample normalised with the population's: the gap between training-mode and evaluation-mode batch norm."""

    batch_sizes: np.ndarray
    mean_error: np.ndarray
    std_error: np.ndarray
    normalization_error: np.ndarray


def batch_statistics_noise(
    features: Tensor,
    batch_sizes: Sequence[int],
    trials: int = 256,
    eps: float = 1e-5,
    generator: torch.Generator | None = None,
) -> BatchStatisticsNoise:
    """Draw ``trials`` random batches (without replacement) of each size from ``features`` ``(M, C)`` and measure
    the error of the batch mean, batch standard deviation and batch-normalised values.

    Tiny batches are where batch norm breaks: at batch size 1 every normalised value is 0 (torch refuses to
    train), at batch size 2 every normalised value is about +1 or -1, whatever the input was.
    """
    if features.dim() != 2:
        raise ValueError(f"features must have shape (M, C), got {tuple(features.shape)}")
    if trials < 1:
        raise ValueError(f"Invalid number of trials: trials={trials} (must be >= 1)")
    population = features.shape[0]
    if not batch_sizes or min(batch_sizes) < 1 or max(batch_sizes) > population:
        raise ValueError(f"Invalid batch sizes: batch_sizes={list(batch_sizes)} (each in [1, {population}])")
    mu = features.mean(dim=0)
    sigma = features.std(dim=0, correction=0)
    reference = (features - mu) / torch.sqrt(sigma**2 + eps)
    order = torch.rand(trials, population, generator=generator, device=features.device).argsort(dim=1)
    mean_error, std_error, norm_error = [], [], []
    for size in batch_sizes:
        index = order[:, :size]
        batch = features[index]
        var, mean = torch.var_mean(batch, dim=1, correction=0, keepdim=True)
        normalized = (batch - mean) / torch.sqrt(var + eps)
        mean_error.append(torch.sqrt(((mean.squeeze(1) - mu) ** 2).mean()).item())
        std_error.append(torch.sqrt(((var.squeeze(1).sqrt() - sigma) ** 2).mean()).item())
        norm_error.append(torch.sqrt(((normalized - reference[index]) ** 2).mean()).item())
    return BatchStatisticsNoise(np.asarray(batch_sizes), np.asarray(mean_error), np.asarray(std_error), np.asarray(norm_error))

