"""Datasets as tensors already on the training device, read and verified without torchvision.

``load_fashion_mnist()`` and ``load_cifar()`` return a :class:`Dataset`; files come from ``$DLDNA_DATA``, the
user cache, Debian's ``dataset-fashion-mnist`` package (FashionMNIST), or a verified download, in that order.
``random_crop_flip`` augments a batch on the device; ``write_cifar_archive`` writes random images in CIFAR's
archive format, for timing the pipeline at full size without the real data.
"""

from dldna.data.augment import random_crop_flip
from dldna.data.cifar import load_cifar, write_cifar_archive
from dldna.data.dataset import Dataset
from dldna.data.fashion_mnist import load_fashion_mnist
from dldna.data.files import DataError

__all__ = ["DataError", "Dataset", "load_cifar", "load_fashion_mnist", "random_crop_flip", "write_cifar_archive"]
