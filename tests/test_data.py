"""dldna.data: the IDX reader, file verification, atomic downloads, clear errors, and the real FashionMNIST."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from dldna.data import DataError, load_fashion_mnist
from dldna.data import fashion_mnist as fm
from dldna.data.dataset import stratified_indices
from dldna.data.files import RemoteFile, download, locate, search_dirs, sha256_file
from dldna.data.idx import IDXFormatError, parse_idx, read_idx, write_idx

DEBIAN_FILES = all((fm.DEBIAN_DIR / name).is_file() for name in fm.CONTENT_SHA256)
needs_debian_data = pytest.mark.skipif(not DEBIAN_FILES, reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the cache at an empty folder and clear $DLDNA_DATA so tests never see the user's files."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DLDNA_DATA", raising=False)


# --- IDX format -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: type, suffix: str) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, array)
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.shape == (2, 3, 4)
    np.testing.assert_array_equal(loaded, array)


def test_idx_header_is_the_documented_layout() -> None:
    raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    np.testing.assert_array_equal(parse_idx(raw), np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06", "declares shape"),
    ],
)
def test_malformed_idx_is_rejected(raw: bytes, message: str) -> None:
    with pytest.raises(IDXFormatError, match=message):
        parse_idx(raw)


# --- verification, search order and downloads ---------------------------------------------------------------


def _remote_for(path: Path, urls: tuple[str, ...] = ()) -> RemoteFile:
    """A RemoteFile whose expected hash is that of ``path``'s decompressed content."""
    return RemoteFile(path.name, urls, sha256_file(path, opener=gzip.open), lambda p: sha256_file(p, opener=gzip.open))


def _make_gz(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(payload)
    return path


def test_content_hash_ignores_compression(tmp_path: Path) -> None:
    first = _make_gz(tmp_path / "a" / "x.gz", b"same bytes" * 100)
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"same bytes" * 100, compresslevel=1, mtime=12345))
    assert first.read_bytes() != (tmp_path / "b.gz").read_bytes()
    assert sha256_file(first, gzip.open) == sha256_file(tmp_path / "b.gz", gzip.open) == hashlib.sha256(b"same bytes" * 100).hexdigest()


def test_search_order_env_then_cache_then_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "system"
    monkeypatch.setenv("DLDNA_DATA", str(tmp_path / "env"))
    dirs = search_dirs("toy", [system])
    assert dirs == [tmp_path / "env" / "toy", tmp_path / "env", tmp_path / "cache" / "dldna" / "toy", system]
    good = _make_gz(system / "x.gz", b"payload")
    remote = _remote_for(good)
    assert locate("toy", remote, [system], "fix") == good
    in_env = _make_gz(tmp_path / "env" / "x.gz", b"payload")
    assert locate("toy", remote, [system], "fix") == in_env


def test_corrupt_file_names_the_file_and_the_fix(tmp_path: Path) -> None:
    good = _make_gz(tmp_path / "ref" / "x.gz", b"payload" * 50)
    remote = _remote_for(good)
    truncated = tmp_path / "sys" / "x.gz"
    truncated.parent.mkdir()
    truncated.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"sys/x\.gz is corrupt or truncated.*delete it"):
        locate("toy", remote, [tmp_path / "sys"], "Please delete it.", allow_download=False)
    _make_gz(truncated, b"other payload")
    with pytest.raises(DataError, match=r"does not have the expected content.*delete it"):
        locate("toy", remote, [tmp_path / "sys"], "Please delete it.", allow_download=False)


def test_download_verifies_and_moves_into_place(tmp_path: Path) -> None:
    source = _make_gz(tmp_path / "mirror" / "x.gz", b"payload" * 50)
    remote = _remote_for(source, urls=("file:///nonexistent/x.gz", source.as_uri()))
    target_dir = tmp_path / "cache-target"
    path = download(remote, target_dir, "fix")
    assert path == target_dir / "x.gz" and path.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target_dir.iterdir()) == ["x.gz"]


def test_failed_download_leaves_no_partial_file(tmp_path: Path) -> None:
    good = _make_gz(tmp_path / "ref" / "x.gz", b"payload" * 50)
    wrong = _make_gz(tmp_path / "mirror" / "x.gz", b"tampered payload")
    remote = RemoteFile("x.gz", (wrong.as_uri(),), _remote_for(good).content_sha256, _remote_for(good).digest)
    target_dir = tmp_path / "cache-target"
    with pytest.raises(DataError, match="(?s)Could not download x.gz.*expected content"):
        download(remote, target_dir, "fix")
    assert list(target_dir.iterdir()) == []


def test_missing_data_without_network_names_three_fixes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fm, "MIRRORS", ((tmp_path / "offline").as_uri() + "/",))
    fm._raw_arrays.cache_clear()
    try:
        with pytest.raises(DataError) as error:
            load_fashion_mnist()
    finally:
        fm._raw_arrays.cache_clear()
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "DLDNA_DATA" in message and str(tmp_path / "cache" / "dldna" / "fashion-mnist") in message
    assert "internet" in message


def test_loader_reads_small_files_from_dldna_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The full loading path on tiny IDX files written by the test: subsets, split and normalisation."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.repeat(np.arange(10, dtype=np.uint8), 6),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.repeat(np.arange(10, dtype=np.uint8), 2),
    }
    folder.mkdir()
    for name, array in arrays.items():
        write_idx(folder / name, array)
    hashes = {name: sha256_file(folder / name, gzip.open) for name in arrays}
    monkeypatch.setattr(fm, "CONTENT_SHA256", hashes)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("DLDNA_DATA", str(folder))
    fm._raw_arrays.cache_clear()
    try:
        data = load_fashion_mnist(train_size=30, val_size=20, test_size=10, device="cpu")
    finally:
        fm._raw_arrays.cache_clear()
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_val.shape == (20, 1, 28, 28)
    assert data.x_test.shape == (10, 1, 28, 28)
    assert torch.bincount(data.y_train, minlength=10).tolist() == [3] * 10
    assert torch.bincount(data.y_val, minlength=10).tolist() == [2] * 10
    pixels = arrays["train-images-idx3-ubyte.gz"] / 255.0
    assert data.mean[0] == pytest.approx(pixels.mean()) and data.std[0] == pytest.approx(pixels.std())
    restored = data.unnormalize(data.x_train)
    assert restored.min() >= -1e-6 and restored.max() <= 1 + 1e-6


def test_stratified_indices_balance_and_errors() -> None:
    labels = np.repeat(np.arange(4), 5)
    chosen = stratified_indices(labels, 10, np.random.default_rng(1))
    assert len(set(chosen)) == 10 and sorted(np.bincount(labels[chosen]).tolist()) == [2, 2, 3, 3]
    with pytest.raises(ValueError, match="subset size"):
        stratified_indices(labels, 0, np.random.default_rng(1))
    with pytest.raises(ValueError, match="between 1 and 20"):
        stratified_indices(labels, 21, np.random.default_rng(1))


# --- the real dataset ---------------------------------------------------------------------------------------


@needs_debian_data
def test_real_fashion_mnist_shapes_counts_and_statistics() -> None:
    data = load_fashion_mnist(device="cpu")
    assert data.x_train.shape == (60_000, 1, 28, 28) and data.x_test.shape == (10_000, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert torch.bincount(data.y_train).tolist() == [6000] * 10
    assert torch.bincount(data.y_test).tolist() == [1000] * 10
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot" and data.num_classes == 10
    # Published FashionMNIST training-pixel statistics: mean 0.2860, standard deviation 0.3530.
    assert data.mean[0] == pytest.approx(0.2860, abs=1e-4) and data.std[0] == pytest.approx(0.3530, abs=1e-4)
    assert data.x_train.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert data.x_train.std().item() == pytest.approx(1.0, abs=1e-3)
    assert data.x_test.mean().item() == pytest.approx(0.0, abs=0.02)


@needs_debian_data
def test_real_subsets_are_deterministic_balanced_and_disjoint() -> None:
    first = load_fashion_mnist(train_size=1000, val_size=500, test_size=200, seed=3, device="cpu")
    again = load_fashion_mnist(train_size=1000, val_size=500, test_size=200, seed=3, device="cpu")
    other = load_fashion_mnist(train_size=1000, val_size=500, test_size=200, seed=4, device="cpu")
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_val, again.y_val)
    assert not torch.equal(first.x_train, other.x_train)
    assert torch.bincount(first.y_train).tolist() == [100] * 10
    assert torch.bincount(first.y_val).tolist() == [50] * 10
    train_rows = {row.numpy().tobytes() for row in first.x_train.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in first.x_val.flatten(1))
    assert first.split("val")[0] is first.x_val
    with pytest.raises(ValueError, match="no validation split"):
        load_fashion_mnist(train_size=100, device="cpu").split("val")
