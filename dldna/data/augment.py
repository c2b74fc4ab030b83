"""Batched data augmentation on the device: the standard CIFAR recipe (random crop after zero padding, random
horizontal flip) applied to a whole batch with tensor operations, so training needs no DataLoader workers."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(
    images: torch.Tensor, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each image of ``(N, C, H, W)`` zero-padded by ``padding``, cropped back to ``H x W`` at a random offset,
    and mirrored left-right with probability 1/2. Offsets are drawn per image; one gather does all the crops."""
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    n, _, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n, 1, 1), device=device, generator=generator)
    left = torch.randint(0, 2 * padding + 1, (n, 1, 1), device=device, generator=generator)
    rows = (top + torch.arange(height, device=device).view(1, height, 1)).expand(n, height, width)
    cols = (left + torch.arange(width, device=device).view(1, 1, width)).expand(n, height, width)
    if flip:
        mirrored = torch.rand(n, 1, 1, device=device, generator=generator) < 0.5
        cols = torch.where(mirrored, left + (width - 1) - torch.arange(width, device=device).view(1, 1, width), cols)
    flat_index = (rows * padded.shape[-1] + cols).view(n, 1, height * width).expand(-1, images.shape[1], -1)
    return padded.flatten(2).gather(2, flat_index).view_as(images)
