"""Reading the IDX format of MNIST-style datasets with NumPy alone.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one big-endian
uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IDXFormatError(ValueError):
    """The bytes are not a well-formed IDX array."""


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode the bytes of an IDX file into an array of its declared type and shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IDXFormatError("not an IDX file: the magic number must start with two zero bytes")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise IDXFormatError(f"unknown IDX type code 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise IDXFormatError("truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise IDXFormatError(
            f"IDX body has {len(raw) - header_end} bytes but the header declares shape {shape} ({expected} bytes)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed when its name ends in ``.gz``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        return parse_idx(handle.read())


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed for a ``.gz`` name); the inverse of :func:`read_idx`."""
    codes = {dtype: code for code, dtype in _IDX_DTYPES.items()}
    big_endian = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big_endian not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, codes[big_endian], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=big_endian).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)
