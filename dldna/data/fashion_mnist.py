"""FashionMNIST (Xiao, Rasul & Vollgraf 2017): 70,000 28x28 grayscale images of clothing in 10 classes."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np
import torch

from dldna.config import device as default_device
from dldna.data.dataset import Dataset, split_indices
from dldna.data.files import RemoteFile, cache_dir, locate, sha256_file
from dldna.data.idx import read_idx

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MIRRORS = (
    "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
# SHA-256 of the decompressed IDX content (a re-compressed copy, such as Debian's, verifies too).
CONTENT_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def _fix_message() -> str:
    return (
        "To fix it, do one of: (1) on Debian/Ubuntu, `sudo apt-get install dataset-fashion-mnist` "
        f"(files in {DEBIAN_DIR}); (2) put the four files {', '.join(CONTENT_SHA256)} from "
        f"{MIRRORS[0]} into {cache_dir('fashion-mnist')} or into a folder named by $DLDNA_DATA; "
        "(3) run with internet access (e.g. Colab) so dldna downloads and verifies them itself. "
        "A corrupt file must be deleted first."
    )


def _remote(name: str) -> RemoteFile:
    return RemoteFile(
        name=name,
        urls=tuple(mirror + name for mirror in MIRRORS),
        content_sha256=CONTENT_SHA256[name],
        digest=lambda path: sha256_file(path, opener=gzip.open),
    )


@functools.lru_cache(maxsize=1)
def _raw_arrays(allow_download: bool) -> tuple[dict[str, np.ndarray], float, float]:
    """The four verified uint8 arrays and the training pixels' mean and std in [0, 1], read once per process."""
    arrays = {}
    for name in CONTENT_SHA256:
        path = locate("fashion-mnist", _remote(name), [DEBIAN_DIR], _fix_message(), allow_download)
        arrays[name.split("-idx")[0]] = read_idx(path)
    pixels = arrays["train-images"]
    return arrays, float(pixels.mean() / 255.0), float(pixels.std() / 255.0)


def _to_images(pixels: np.ndarray, device: torch.device, mean: float, std: float) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` to normalised float ``(N, 1, 28, 28)`` on ``device`` (bytes move, not floats)."""
    images = torch.from_numpy(np.ascontiguousarray(pixels)).to(device)
    return images.unsqueeze(1).float().div_(255.0).sub_(mean).div_(std)


def load_fashion_mnist(
    *,
    device: torch.device | str | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    val_size: int = 0,
    seed: int = 0,
    download: bool = True,
) -> Dataset:
    """FashionMNIST as normalised device tensors, optionally a class-balanced subset and a validation split.

    ``val_size`` images are held out of the 60,000 training images first; ``train_size`` and ``test_size``
    then take class-balanced subsets. The same ``seed`` always gives the same split and subsets.
    Normalisation uses the mean and standard deviation of the full training set.
    """
    raw, mean, std = _raw_arrays(download)
    target = default_device(device)
    x_all, y_all = raw["train-images"], raw["train-labels"].astype(np.int64)
    x_test, y_test = raw["t10k-images"], raw["t10k-labels"].astype(np.int64)
    train_idx, val_idx, test_idx = split_indices(
        y_all, y_test, train_size=train_size, test_size=test_size, val_size=val_size, seed=seed
    )

    def labels(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(values).to(target)

    return Dataset(
        name="FashionMNIST",
        x_train=_to_images(x_all[train_idx], target, mean, std),
        y_train=labels(y_all[train_idx]),
        x_test=_to_images(x_test[test_idx], target, mean, std),
        y_test=labels(y_test[test_idx]),
        classes=CLASSES,
        mean=(mean,),
        std=(std,),
        x_val=None if val_idx is None else _to_images(x_all[val_idx], target, mean, std),
        y_val=None if val_idx is None else labels(y_all[val_idx]),
    )
