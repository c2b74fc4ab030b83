"""The one container every loader returns: train / validation / test tensors already on the device."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class Dataset:
    """Image-classification data as device tensors, ready for index batching (no DataLoader).

    ``x_*`` are float images ``(N, C, H, W)`` normalised with the training set's ``mean`` and ``std``;
    ``y_*`` are int64 labels. ``x_val``/``y_val`` are ``None`` unless a validation split was asked for.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the split called ``"train"``, ``"val"`` or ``"test"``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        x, y = getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
        if x is None:
            raise ValueError("this Dataset has no validation split: load it with val_size > 0")
        return x, y

    def to(self, device: torch.device | str) -> "Dataset":
        """The same data on ``device`` (no copy when it is already there)."""
        moved = {
            field: getattr(self, field).to(device)
            for field in ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")
            if getattr(self, field) is not None
        }
        return replace(self, **moved)

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation, for showing images with their original pixel values in [0, 1]."""
        mean = torch.tensor(self.mean, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(-1, 1, 1)
        return x * std + mean

    def __repr__(self) -> str:
        val = f", val={len(self.y_val)}" if self.y_val is not None else ""
        return (
            f"Dataset({self.name}: train={len(self.y_train)}{val}, test={len(self.y_test)}, "
            f"input={self.input_shape}, classes={self.num_classes}, device={self.device})"
        )


def check_count(name: str, value: object, minimum: int = 1) -> None:
    """Refuse anything but a whole number >= ``minimum`` for the argument ``name`` (sizes, epochs, steps), with a
    sentence that names it and a value to pass instead: ``TypeError`` for a float, a string or ``True``,
    ``ValueError`` for a number below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        example = f" such as {name}={max(minimum, round(value))}" if number else ""
        raise TypeError(f"{name} must be a whole number >= {minimum}, got {value!r}: pass an int{example}")
    if value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value}: pass {name}={minimum} or more")


def stratified_indices(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices into ``labels`` with the classes as equally represented as ``count`` allows.

    Deterministic for a given ``rng`` state; the result is shuffled so classes are interleaved.
    """
    classes = np.unique(labels)
    if not 0 < count <= len(labels):
        raise ValueError(f"subset size must be between 1 and {len(labels)}, got {count}")
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    base, extra = divmod(count, len(classes))
    chosen = [idx[: base + (i < extra)] for i, idx in enumerate(per_class)]
    if any(len(c) < base + (i < extra) for i, c in enumerate(chosen)):
        raise ValueError(f"subset size {count} needs more samples of some class than the data has")
    return rng.permutation(np.concatenate(chosen))


def split_indices(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    *,
    train_size: int | None,
    test_size: int | None,
    val_size: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Indices of the training, validation and test images every loader returns.

    ``val_size`` class-balanced images are held out of the training set first; ``train_size`` and
    ``test_size`` then take class-balanced subsets (``None``: all). The same ``seed`` gives the same indices.
    A size that is not a whole number, or that would leave a split empty or ask for more images than there are,
    is refused with a sentence naming it.
    """
    check_count("val_size", val_size, minimum=0)
    available = len(train_labels)
    if val_size >= available:
        raise ValueError(
            f"val_size={val_size} would leave no training images (there are {available:,}): pass a val_size below "
            f"{available}, such as val_size={available // 10}"
        )
    left = available - val_size
    if train_size is not None:
        check_count("train_size", train_size)
        if train_size > left:
            after = f" after holding out val_size={val_size}" if val_size else ""
            raise ValueError(f"train_size={train_size} is more than the {left:,} training images left{after}: pass train_size={left} or less (or None for all)")
    if test_size is not None:
        check_count("test_size", test_size)
        if test_size > len(test_labels):
            raise ValueError(f"test_size={test_size} is more than the {len(test_labels):,} test images: pass test_size={len(test_labels)} or less (or None for all)")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = np.arange(len(train_labels)), None
    if val_size:
        val_idx = stratified_indices(train_labels, val_size, rng)
        train_idx = np.setdiff1d(train_idx, val_idx)
    if train_size is not None:
        train_idx = train_idx[stratified_indices(train_labels[train_idx], train_size, rng)]
    test_idx = np.arange(len(test_labels)) if test_size is None else stratified_indices(test_labels, test_size, rng)
    return train_idx, val_idx, test_idx
