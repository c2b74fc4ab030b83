"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009): 60,000 32x32 colour images, read from the official python-pickle
archives without torchvision.

The archive is looked for in ``$DLDNA_DATA``, then the user cache, and otherwise downloaded into the cache
with its published MD5 checked before it is renamed into place (see :mod:`dldna.data.files`). Batches are read
straight out of the ``.tar.gz``; nothing is extracted to disk.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dldna.config import device as default_device
from dldna.data.dataset import Dataset, split_indices
from dldna.data.files import DataError, RemoteFile, cache_dir, locate

URL_BASE = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class CifarArchive:
    """Where one CIFAR variant lives and how its archive is laid out."""

    name: str
    archive: str
    md5: str
    train_members: tuple[str, ...]
    test_member: str
    meta_member: str
    label_key: bytes
    names_key: bytes


CIFAR10 = CifarArchive(
    name="cifar-10",
    archive="cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    train_members=tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
    test_member="cifar-10-batches-py/test_batch",
    meta_member="cifar-10-batches-py/batches.meta",
    label_key=b"labels",
    names_key=b"label_names",
)
CIFAR100 = CifarArchive(
    name="cifar-100",
    archive="cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    train_members=("cifar-100-python/train",),
    test_member="cifar-100-python/test",
    meta_member="cifar-100-python/meta",
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
)
ARCHIVES = {"cifar10": CIFAR10, "cifar100": CIFAR100}


def md5_file(path: Path) -> str:
    """MD5 of a file's bytes: the checksum the CIFAR authors publish for their archives."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fix_message(spec: CifarArchive) -> str:
    return (
        f"To fix it, do one of: (1) put {spec.archive} from {URL_BASE} into {cache_dir(spec.name)} or into a "
        "folder named by $DLDNA_DATA; (2) run with internet access (e.g. Colab) so dldna downloads and verifies "
        "it itself. A corrupt file must be deleted first."
    )


def _unpickle(archive: tarfile.TarFile, member: str) -> dict[bytes, object]:
    handle = archive.extractfile(member)
    if handle is None:
        raise DataError(f"{member} is missing from the archive")
    return pickle.load(handle, encoding="bytes")


@functools.lru_cache(maxsize=2)
def _raw_arrays(
    variant: str, allow_download: bool, archive_path: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Train/test uint8 images ``(N, 3, 32, 32)``, int64 labels and class names, read once per process from
    ``archive_path`` or else from the located (and verified) official archive."""
    spec = ARCHIVES[variant]
    if archive_path is None:
        remote = RemoteFile(spec.archive, (URL_BASE + spec.archive,), spec.md5, md5_file)
        path = locate(spec.name, remote, (), _fix_message(spec), allow_download)
    elif archive_path.is_file():
        path = archive_path
    else:
        raise DataError(f"archive {archive_path} does not exist")
    try:
        with tarfile.open(path, "r:gz") as archive:
            train = [_unpickle(archive, member) for member in spec.train_members]
            test = _unpickle(archive, spec.test_member)
            meta = _unpickle(archive, spec.meta_member)
    except (tarfile.TarError, pickle.UnpicklingError, KeyError, EOFError) as error:
        raise DataError(f"{path} could not be read as a CIFAR archive ({error}). {_fix_message(spec)}") from error

    def images(batches: list[dict[bytes, object]]) -> np.ndarray:
        return np.concatenate([np.asarray(b[b"data"], dtype=np.uint8) for b in batches]).reshape(-1, 3, 32, 32)

    def labels(batches: list[dict[bytes, object]]) -> np.ndarray:
        return np.concatenate([np.asarray(b[spec.label_key], dtype=np.int64) for b in batches])

    names = tuple(name.decode() for name in meta[spec.names_key])
    return images(train), labels(train), images([test]), labels([test]), names


def load_cifar(
    variant: str = "cifar10",
    *,
    device: torch.device | str | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    val_size: int = 0,
    seed: int = 0,
    download: bool = True,
    archive: str | Path | None = None,
) -> Dataset:
    """CIFAR-10 (``"cifar10"``) or CIFAR-100 (``"cifar100"``, fine labels) as normalised device tensors.

    Subsets and the validation split work as in :func:`~dldna.data.load_fashion_mnist`; the per-channel mean
    and standard deviation come from the full training set. Only bytes cross to the device; the conversion to
    float happens there. ``archive`` reads that file (in the official format, e.g. one made by
    :func:`write_cifar_archive`) instead of the official archive, and skips the checksum.
    """
    if variant not in ARCHIVES:
        raise ValueError(f"variant must be one of {sorted(ARCHIVES)}, got {variant!r}")
    archive_path = None if archive is None else Path(archive).resolve()
    x_all, y_all, x_test, y_test, classes = _raw_arrays(variant, download, archive_path)
    target = default_device(device)
    train_idx, val_idx, test_idx = split_indices(
        y_all, y_test, train_size=train_size, test_size=test_size, val_size=val_size, seed=seed
    )
    pixels = x_all.reshape(len(x_all), 3, -1) / 255.0
    mean = tuple(float(m) for m in pixels.mean(axis=(0, 2)))
    std = tuple(float(s) for s in pixels.std(axis=(0, 2)))
    shift = torch.tensor(mean, device=target).view(1, 3, 1, 1)
    scale = torch.tensor(std, device=target).view(1, 3, 1, 1)

    def to_images(values: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(np.ascontiguousarray(values)).to(target).float().div_(255.0) - shift) / scale

    def to_labels(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values).to(target)

    return Dataset(
        name="CIFAR-10" if variant == "cifar10" else "CIFAR-100",
        x_train=to_images(x_all[train_idx]),
        y_train=to_labels(y_all[train_idx]),
        x_test=to_images(x_test[test_idx]),
        y_test=to_labels(y_test[test_idx]),
        classes=classes,
        mean=mean,
        std=std,
        x_val=None if val_idx is None else to_images(x_all[val_idx]),
        y_val=None if val_idx is None else to_labels(y_all[val_idx]),
    )


def write_cifar_archive(
    path: str | Path, variant: str = "cifar10", *, train_size: int = 50000, test_size: int = 10000, seed: int = 0
) -> np.ndarray:
    """Write random uint8 images in the official archive format of ``variant`` to ``path`` and return the
    training images ``(train_size, 3, 32, 32)``.

    Labels cycle through the classes. The defaults give the real sizes, so loaders, augmentation and training
    can be timed at full scale where the real data cannot be downloaded (tests, benchmarks); nothing in the
    images is learnable.
    """
    if variant not in ARCHIVES:
        raise ValueError(f"variant must be one of {sorted(ARCHIVES)}, got {variant!r}")
    spec = ARCHIVES[variant]
    members = len(spec.train_members)
    if train_size < members or train_size % members:
        raise ValueError(f"train_size must be a positive multiple of {members} for {variant}, got {train_size}")
    if test_size < 1:
        raise ValueError(f"test_size must be >= 1, got {test_size}")
    classes = 10 if variant == "cifar10" else 100
    rng = np.random.default_rng(seed)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)

    def add(archive: tarfile.TarFile, member: str, payload: dict[bytes, object]) -> None:
        raw = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        info = tarfile.TarInfo(member)
        info.size = len(raw)
        archive.addfile(info, io.BytesIO(raw))

    def batch(count: int) -> dict[bytes, object]:
        return {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), spec.label_key: [i % classes for i in range(count)]}

    train_batches = [batch(train_size // members) for _ in spec.train_members]
    with tarfile.open(target, "w:gz", compresslevel=1) as archive:
        for member, payload in zip(spec.train_members, train_batches):
            add(archive, member, payload)
        add(archive, spec.test_member, batch(test_size))
        add(archive, spec.meta_member, {spec.names_key: [f"class{i}".encode() for i in range(classes)]})
    return np.concatenate([b[b"data"] for b in train_batches]).reshape(-1, 3, 32, 32)
