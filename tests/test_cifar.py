"""CIFAR loaders on small archives written here in the real format, batched augmentation, and the small ViT.
Nothing downloads: the archives are made by the test and their checksum is registered for it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dldna.data import DataError, load_cifar, random_crop_flip, write_cifar_archive
from dldna.data import cifar
from dldna.models import ResidualCNN, VisionTransformer


def write_archive(folder: Path, variant: str, per_batch: int) -> tuple[Path, np.ndarray]:
    """``variant``'s archive, under its official name in ``folder``, with ``per_batch`` images per batch;
    returns its path and the training images."""
    spec = cifar.ARCHIVES[variant]
    path = folder / spec.name / spec.archive
    return path, write_cifar_archive(path, variant, train_size=per_batch * len(spec.train_members), test_size=per_batch)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("DLDNA_DATA", str(tmp_path / "data"))
    cifar._raw_arrays.cache_clear()
    yield tmp_path / "data"
    cifar._raw_arrays.cache_clear()


def register_checksum(monkeypatch: pytest.MonkeyPatch, variant: str, path: Path) -> None:
    monkeypatch.setitem(cifar.ARCHIVES, variant, replace(cifar.ARCHIVES[variant], md5=cifar.md5_file(path)))


@pytest.mark.parametrize("variant, classes", [("cifar10", 10), ("cifar100", 100)])
def test_loads_the_real_archive_format(data_dir: Path, monkeypatch: pytest.MonkeyPatch, variant: str, classes: int) -> None:
    spec = cifar.ARCHIVES[variant]
    per_batch = 200
    path, train_images = write_archive(data_dir, variant, per_batch)
    register_checksum(monkeypatch, variant, path)
    data = load_cifar(variant, device="cpu")
    assert data.x_train.shape == (per_batch * len(spec.train_members), 3, 32, 32)
    assert data.x_test.shape == (per_batch, 3, 32, 32) and data.num_classes == classes
    assert data.classes[:2] == ("class0", "class1")
    pixels = train_images.reshape(len(train_images), 3, -1) / 255.0
    np.testing.assert_allclose(data.mean, pixels.mean(axis=(0, 2)), rtol=1e-6)
    restored = data.unnormalize(data.x_train[:3]) * 255.0
    np.testing.assert_allclose(restored.numpy(), train_images[:3], atol=1e-3)
    per_channel = data.x_train.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(dim=1), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(dim=1, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)


def test_subsets_are_balanced_and_deterministic(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = write_archive(data_dir, "cifar10", 100)
    register_checksum(monkeypatch, "cifar10", path)
    first = load_cifar(device="cpu", train_size=50, test_size=20, val_size=30, seed=3)
    second = load_cifar(device="cpu", train_size=50, test_size=20, val_size=30, seed=3)
    assert torch.equal(first.x_train, second.x_train) and torch.equal(first.y_val, second.y_val)
    assert torch.bincount(first.y_train, minlength=10).tolist() == [5] * 10
    assert len(first.y_val) == 30 and len(first.y_test) == 20


def test_missing_archive_names_the_fix(data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz.*DLDNA_DATA"):
        load_cifar(device="cpu", download=False)


def test_corrupt_archive_is_rejected(data_dir: Path) -> None:
    folder = data_dir / "cifar-100"
    folder.mkdir(parents=True)
    (folder / cifar.CIFAR100.archive).write_bytes(b"not an archive")
    with pytest.raises(DataError, match="expected content.*deleted first"):
        load_cifar("cifar100", device="cpu", download=False)


def test_unknown_variant_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="variant"):
        load_cifar("cifar1000")
    with pytest.raises(ValueError, match="variant"):
        write_cifar_archive("unused.tar.gz", "cifar1000")


def test_an_archive_given_by_path_is_read_without_its_checksum(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "made here" / "cifar100.tar.gz"
    train_images = write_cifar_archive(path, "cifar100", train_size=300, test_size=40, seed=5)
    data = load_cifar("cifar100", device="cpu", archive=path, download=False)
    assert data.x_train.shape == (300, 3, 32, 32) and len(data.y_test) == 40 and data.num_classes == 100
    assert torch.bincount(data.y_train, minlength=100).tolist() == [3] * 100
    restored = (data.unnormalize(data.x_train) * 255).round().to(torch.uint8)
    stored_order = np.lexsort(train_images.reshape(300, -1).T[::-1])
    loaded_order = np.lexsort(restored.reshape(300, -1).numpy().T[::-1])
    np.testing.assert_array_equal(restored.numpy()[loaded_order], train_images[stored_order])
    with pytest.raises(DataError, match="does not exist"):
        load_cifar("cifar100", device="cpu", archive=tmp_path / "missing.tar.gz")
    with pytest.raises(ValueError, match="train_size"):
        write_cifar_archive(tmp_path / "c10.tar.gz", "cifar10", train_size=12)


def test_crop_and_flip_move_pixels_as_described() -> None:
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float64).view(2, 3, 8, 8)
    unchanged = random_crop_flip(images, padding=0, flip=False)
    assert torch.equal(unchanged, images)
    generator = torch.Generator().manual_seed(0)
    out = random_crop_flip(images, padding=2, flip=True, generator=generator)
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for n in range(2):
        candidates = [
            window
            for top in range(5)
            for left in range(5)
            for window in (padded[n, :, top : top + 8, left : left + 8], padded[n, :, top : top + 8, left : left + 8].flip(-1))
        ]
        assert any(torch.equal(out[n], window) for window in candidates), "each output is a shifted, maybe mirrored, crop"


def test_flip_happens_about_half_the_time() -> None:
    images = torch.randn(4000, 1, 4, 4)
    out = random_crop_flip(images, padding=0, flip=True, generator=torch.Generator().manual_seed(1))
    flipped = (out == images.flip(-1)).flatten(1).all(dim=1) & ~(out == images).flatten(1).all(dim=1)
    assert 0.45 < flipped.float().mean().item() < 0.55


def test_vision_transformer_and_cnn_shapes_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    for model in (VisionTransformer(num_classes=100, dim=48, depth=2, heads=3), ResidualCNN(in_channels=3, num_classes=100)):
        out = model(x)
        assert out.shape == (4, 100)
        out.sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="divisible"):
        VisionTransformer(dim=50, heads=3)
