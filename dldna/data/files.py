"""Finding, verifying and downloading dataset files: the part every dataset shares.

A file is looked for in ``$DLDNA_DATA``, then the user cache directory, then the dataset's system folders
(for FashionMNIST, Debian's ``dataset-fashion-mnist`` package). Only if none has it is it downloaded, into the
cache, through a temporary file that is renamed into place after its checksum matches, so an interrupted or
corrupted download never leaves a half file behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

DATA_ENV = "DLDNA_DATA"
DOWNLOAD_TIMEOUT_S = 60


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or cannot be fetched; the message says how to fix it."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of a dataset: its name, the URLs to try in order, and the SHA-256 its content must have.

    ``content_sha256`` is the hash of what :attr:`digest` computes: for gzip files the *decompressed*
    bytes, so that the same data re-compressed by a mirror or a distribution still verifies.
    """

    name: str
    urls: tuple[str, ...]
    content_sha256: str
    digest: Callable[[Path], str]


def cache_dir(dataset: str) -> Path:
    """The per-user cache folder of ``dataset`` (``$XDG_CACHE_HOME/dldna/<dataset>``, else ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dldna" / dataset


def search_dirs(dataset: str, system_dirs: Sequence[Path] = ()) -> list[Path]:
    """Folders searched for ``dataset``'s files, in order: ``$DLDNA_DATA`` (and its ``<dataset>`` subfolder),
    the user cache, then ``system_dirs``. A ``$DLDNA_DATA`` that names no existing folder is a
    :class:`DataError`: a typo there would otherwise send the files' search, or a download, elsewhere unnoticed."""
    dirs: list[Path] = []
    if os.environ.get(DATA_ENV):
        root = Path(os.environ[DATA_ENV]).expanduser()
        if not root.is_dir():
            raise DataError(
                f"${DATA_ENV} names {root}, which is not an existing folder: create it and put the {dataset} files "
                f"there, or unset {DATA_ENV} to use the cache ({cache_dir(dataset)}) and the system folders"
            )
        dirs += [root / dataset, root]
    dirs.append(cache_dir(dataset))
    dirs += list(system_dirs)
    return dirs


def sha256_file(path: Path, opener: Callable = open) -> str:
    """SHA-256 of a file's bytes as read through ``opener`` (``gzip.open`` hashes the decompressed content)."""
    digest = hashlib.sha256()
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, remote: RemoteFile) -> None:
    """Raise :class:`DataError` naming ``path`` and what is wrong with it unless its content has the expected
    hash."""
    try:
        actual = remote.digest(path)
    except (OSError, EOFError, ValueError) as error:
        raise DataError(f"{path} is corrupt or truncated ({error})") from error
    if actual != remote.content_sha256:
        raise DataError(
            f"{path} does not have the expected content (SHA-256 {actual[:12]}..., expected "
            f"{remote.content_sha256[:12]}...)"
        )


def download(remote: RemoteFile, target_dir: Path, fix: str) -> Path:
    """Fetch ``remote`` into ``target_dir`` from the first URL that answers; verify it; rename it into place.

    Raises :class:`DataError` with ``fix`` when no URL can be reached or every download fails verification.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / remote.name
    failures: list[str] = []
    for url in remote.urls:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=target_dir)
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                shutil.copyfileobj(response, out)
            verify(tmp_path, remote)
            os.replace(tmp_path, target)
            return target
        except (urllib.error.URLError, OSError, DataError) as error:
            failures.append(f"{url}: {error}")
        finally:
            tmp_path.unlink(missing_ok=True)
    raise DataError(f"Could not download {remote.name}. Tried:\n  " + "\n  ".join(failures) + f"\n{fix}")


def locate(
    dataset: str,
    remote: RemoteFile,
    system_dirs: Sequence[Path],
    fix: str,
    allow_download: bool = True,
) -> Path:
    """Path of a verified copy of ``remote``: found in :func:`search_dirs`, else downloaded into the cache.

    A corrupt copy found first is an error even when a later folder holds a valid one (the first copy is the one
    asked for): the message names the corrupt file, says to fix or remove it, and says where the valid copy is,
    if there is one, or else how to get the file (``fix``).
    """
    corrupt: DataError | None = None
    for folder in search_dirs(dataset, system_dirs):
        candidate = folder / remote.name
        if not candidate.is_file():
            continue
        try:
            verify(candidate, remote)
        except DataError as error:
            corrupt = corrupt or error
            continue
        if corrupt is None:
            return candidate
        raise DataError(f"{corrupt}: fix or remove that file (a valid copy was found at {candidate}, which is used once that file is gone)")
    if corrupt is not None:
        raise DataError(f"{corrupt}: fix or remove that file; no valid copy was found elsewhere. {fix}")
    if not allow_download:
        raise DataError(f"{remote.name} was not found in any of: {', '.join(map(str, search_dirs(dataset, system_dirs)))}. {fix}")
    return download(remote, cache_dir(dataset), fix)
