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
from dldna.data.dataset import split_indices, stratified_indices
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
    (tmp_path / "env").mkdir()
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


def test_a_corrupt_file_in_dldna_data_says_to_fix_or_remove_it_and_where_a_valid_copy_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the corrupt copy blocked a valid system copy and the message said to install the system package."""
    system = tmp_path / "system"
    good = _make_gz(system / "x.gz", b"payload" * 50)
    remote = _remote_for(good)
    env = tmp_path / "env"
    env.mkdir()
    (env / "x.gz").write_bytes(good.read_bytes()[:-10])
    monkeypatch.setenv("DLDNA_DATA", str(env))
    with pytest.raises(DataError) as error:
        locate("toy", remote, [system], "Install the system package.", allow_download=False)
    message = str(error.value)
    assert message.startswith(f"{env / 'x.gz'} is corrupt or truncated (")
    assert message.endswith(f": fix or remove that file (a valid copy was found at {good}, which is used once that file is gone)")
    assert "system package" not in message
    (env / "x.gz").unlink()
    assert locate("toy", remote, [system], "fix", allow_download=False) == good


def test_a_corrupt_file_with_no_valid_copy_says_to_fix_or_remove_it_and_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _make_gz(tmp_path / "ref" / "x.gz", b"payload" * 50)
    env = tmp_path / "env"
    _make_gz(env / "x.gz", b"other payload")
    monkeypatch.setenv("DLDNA_DATA", str(env))
    with pytest.raises(DataError, match=r"env/x\.gz does not have the expected content .*: fix or remove that file; no valid copy was found elsewhere\. Get it here\."):
        locate("toy", _remote_for(good), [], "Get it here.", allow_download=False)


def test_a_dldna_data_folder_that_does_not_exist_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLDNA_DATA", str(tmp_path / "typo"))
    with pytest.raises(DataError) as error:
        search_dirs("fashion-mnist")
    assert str(error.value) == (
        f"$DLDNA_DATA names {tmp_path / 'typo'}, which is not an existing folder: create it and put the fashion-mnist files "
        f"there, or unset DLDNA_DATA to use the cache ({tmp_path / 'cache' / 'dldna' / 'fashion-mnist'}) and the system folders"
    )


@pytest.mark.parametrize(("sizes", "error", "message"), [
    (dict(val_size=60), ValueError, "val_size=60 would leave no training images (there are 60): pass a val_size below 60, such as val_size=6"),
    (dict(train_size=2.5), TypeError, "train_size must be a whole number >= 1, got 2.5: pass an int such as train_size=2"),
    (dict(val_size=20, train_size=50), ValueError,
     "train_size=50 is more than the 40 training images left after holding out val_size=20: pass train_size=40 or less (or None for all)"),
    (dict(test_size=30), ValueError, "test_size=30 is more than the 20 test images: pass test_size=20 or less (or None for all)"),
    (dict(test_size=0), ValueError, "test_size must be a whole number >= 1, got 0: pass test_size=1 or more"),
    (dict(val_size=-1), ValueError, "val_size must be a whole number >= 0, got -1: pass val_size=0 or more"),
    (dict(val_size="5"), TypeError, "val_size must be a whole number >= 0, got '5': pass an int"),
])
def test_sizes_that_would_empty_a_split_or_are_not_whole_numbers_are_refused(sizes: dict, error: type, message: str) -> None:
    """``val_size=60000`` used to empty the training set silently, and ``train_size=2.5`` gave a raw TypeError."""
    train_labels, test_labels = np.repeat(np.arange(10), 6), np.repeat(np.arange(10), 2)
    arguments = {"train_size": None, "test_size": None, "val_size": 0, "seed": 0, **sizes}
    with pytest.raises(error) as raised:
        split_indices(train_labels, test_labels, **arguments)
    assert str(raised.value) == message


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
