"""Download of a dataset's official files into a SHA-256 verified cache (arXiv:1511.00363, §6).

Which files, from where, with which checksums: the dataset registry (`bctrain.data.registry`,
published values shared with TensorFlow Datasets, Keras and torchvision; data/SOURCES.md).
The cache lives outside the repository: `$BCNN_CACHE/<dataset>/`, default
`~/.cache/bcnn/<dataset>/`. A file is used only after its SHA-256 matches the published value:
cached files are checked before every use, downloads go to a temporary name that is renamed only
once verified. A cached file with another checksum may be the user's own (`BCNN_CACHE` pointed at
a directory of other files): it is reported (`CacheConflict`) and never deleted or overwritten.
`fetch_url` is the one function that touches the network; tests replace it (or use `file://`
URLs). Pure stdlib.
"""

import http.client
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bccommon.digests import sha256_file  # noqa: F401 (the one definition)
from bctrain.data.splits import DataError

TIMEOUT_S = 30  # per socket operation; without a network the failure is immediate anyway

Fetch = Callable[[str, Path], None]


class CacheConflict(DataError):
    """A file in the cache under a dataset file's name that is not the official file; it is left alone."""


def cache_dir() -> Path:
    """Root of the download cache: $BCNN_CACHE, else ~/.cache/bcnn."""
    env = os.environ.get("BCNN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bcnn"


def dataset_cache_dir(dataset: str) -> Path:
    return cache_dir() / dataset


def fetch_url(url: str, dest: Path) -> None:
    """Write the body at `url` (http(s) or file://) to `dest`."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def verified_cached(name: str, directory: Path, sha256: str) -> Path | None:
    """The cached file if its checksum matches, None if there is none; anything else under that
    name is not ours to delete or replace: CacheConflict names it."""
    path = Path(directory) / name
    if not os.path.lexists(path):
        return None
    advice = "left untouched: move it away, or set BCNN_CACHE to another directory"
    try:
        got = sha256_file(path)
    except OSError as exc:
        raise CacheConflict(f"{path}: unreadable ({exc.strerror or exc}); {advice}") from None
    if got != sha256:
        raise CacheConflict(f"{path}: not the official file (SHA-256 {got[:16]}..., expected "
                            f"{sha256[:16]}...); {advice}")
    return path


def download_verified(name: str, directory: Path, sha256: str, fetch: Fetch | None = None,
                      urls: tuple = ()) -> Path:
    """Download `name` from the first of `urls` that serves the right bytes, into `directory/name`."""
    # Looked up at call time so tests can monkeypatch the module-level fetch_url.
    fetch = fetch or fetch_url
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{directory}: cannot create the download cache ({e.strerror or e})") from e
    failures = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            fetch(url, tmp)
            got = sha256_file(tmp)
            if got != sha256:
                failures.append(f"{url}: SHA-256 mismatch (got {got}, expected {sha256})")
                continue
            final = directory / name
            verified_cached(name, directory, sha256)  # never replace a file that appeared meanwhile
            os.replace(tmp, final)
            return final
        except CacheConflict:
            raise
        # URLError, timeouts, refused connections, cut-off bodies, malformed URLs, disk errors.
        except (OSError, http.client.HTTPException, ValueError) as e:
            failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError(f"{name}: download failed: " + ("; ".join(failures) or "no URL"))


def ensure_files(dataset: str, files, allow_download: bool = True, fetch: Fetch | None = None) -> Path:
    """Cache directory of `dataset` holding every verified file of `files` (objects with `name`,
    `sha256` and `urls`: `bctrain.data.registry.RemoteFile`), downloading missing ones if allowed."""
    directory = dataset_cache_dir(dataset)
    # Every cached file is looked at before any download: a foreign file under a later name is
    # reported (CacheConflict) even when an earlier file is missing and cannot be downloaded,
    # instead of a download failure that the caller may answer with a fallback.
    cached = [f for f in files if verified_cached(f.name, directory, f.sha256)]
    for f in files:
        if f in cached:
            continue
        if not allow_download:
            raise DataError(f"{directory / f.name}: not in the verified cache and downloads are disabled")
        download_verified(f.name, directory, f.sha256, fetch, urls=f.urls)
    return directory
