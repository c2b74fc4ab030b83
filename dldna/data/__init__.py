"""Datasets as tensors already on the training device, read and verified without torchvision.

``load_fashion_mnist()`` returns a :class:`Dataset`; files come from ``$DLDNA_DATA``, the user cache,
Debian's ``dataset-fashion-mnist`` package, or a verified download, in that order.
"""

from dldna.data.dataset import Dataset
from dldna.data.fashion_mnist import load_fashion_mnist
from dldna.data.files import DataError

__all__ = ["DataError", "Dataset", "load_fashion_mnist"]
