"""Tests for bctrain.data.download: the verified cache, with simulated downloads only."""

import hashlib
import os
import shutil
import urllib.error
from pathlib import Path

import pytest

from bctrain.data import DataError
from bctrain.data import download

NAME = "t10k-labels-idx1-ubyte.gz"
GOOD = b"the right bytes"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


def serve(content: bytes, calls: list | None = None):
    """A fetch that 'downloads' `content` and records the URLs asked for."""

    def fetch(url: str, dest: Path) -> None:
        if calls is not None:
            calls.append(url)
        Path(dest).write_bytes(content)

    return fetch


def refuse(url: str, dest: Path) -> None:
    raise urllib.error.URLError("Name or service not known")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "mnist"


def test_cache_dir_env_override_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path))
    assert download.mnist_cache_dir() == tmp_path / "mnist"
    monkeypatch.delenv("BCNN_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_dir() == tmp_path / "home" / ".cache" / "bcnn"


def test_published_checksums_are_the_documented_ones():
    assert set(download.MNIST_SHA256) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    assert download.MNIST_SHA256["train-images-idx3-ubyte.gz"].startswith("440fcabf73cc546f")
    assert download.MIRRORS[0] == "https://storage.googleapis.com/cvdf-datasets/mnist/"


def test_verified_download_lands_in_cache(cache):
    calls = []
    path = download.download_verified(NAME, cache, GOOD_SHA, fetch=serve(GOOD, calls))
    assert path == cache / NAME and path.read_bytes() == GOOD
    assert calls == [download.MIRRORS[0] + NAME]
    assert sorted(p.name for p in cache.iterdir()) == [NAME]


def test_checksum_mismatch_raises_and_leaves_no_file(cache):
    with pytest.raises(DataError) as info:
        download.download_verified(NAME, cache, GOOD_SHA, fetch=serve(b"tampered"))
    message = str(info.value)
    assert "\n" not in message and NAME in message and "SHA-256 mismatch" in message
    assert list(cache.iterdir()) == []


def test_next_mirror_is_tried_after_a_bad_file(tmp_path, cache, monkeypatch):
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    (bad / NAME).write_bytes(b"tampered")
    (good / NAME).write_bytes(GOOD)
    # Real fetch_url over file:// mirrors: exercises the urllib path without a network.
    monkeypatch.setattr(download, "MIRRORS", (bad.as_uri() + "/", good.as_uri() + "/"))
    path = download.download_verified(NAME, cache, GOOD_SHA)
    assert path.read_bytes() == GOOD
    assert sorted(p.name for p in cache.iterdir()) == [NAME]


def test_unreachable_mirrors_give_one_line_error(cache):
    with pytest.raises(DataError) as info:
        download.download_verified(NAME, cache, GOOD_SHA, fetch=refuse)
    message = str(info.value)
    assert "\n" not in message and "download failed" in message and "Name or service not known" in message
    assert list(cache.iterdir()) == []


def test_a_foreign_cached_file_is_reported_and_left_alone(cache):
    cache.mkdir(parents=True)
    (cache / NAME).write_bytes(b"someone else's labels")
    with pytest.raises(download.CacheConflict) as info:
        download.verified_cached(NAME, cache, GOOD_SHA)
    message = str(info.value)
    assert "\n" not in message and str(cache / NAME) in message and "left untouched" in message
    assert (cache / NAME).read_bytes() == b"someone else's labels"


@pytest.mark.parametrize("make", ["directory", "symlink loop"])
def test_something_else_under_the_name_is_reported(cache, make):
    cache.mkdir(parents=True)
    if make == "directory":
        (cache / NAME).mkdir()
    else:
        (cache / NAME).symlink_to(cache / NAME)
    with pytest.raises(download.CacheConflict, match="unreadable"):
        download.verified_cached(NAME, cache, GOOD_SHA)
    assert os.path.lexists(cache / NAME)


def test_a_file_that_appears_during_the_download_is_not_replaced(cache):
    def fetch_while_the_user_copies(url, dest):
        (cache / NAME).write_bytes(b"the user's copy")
        Path(dest).write_bytes(GOOD)

    with pytest.raises(download.CacheConflict):
        download.download_verified(NAME, cache, GOOD_SHA, fetch=fetch_while_the_user_copies)
    assert sorted(p.name for p in cache.iterdir()) == [NAME]
    assert (cache / NAME).read_bytes() == b"the user's copy"


def fake_mnist(tmp_path: Path, monkeypatch) -> dict[str, bytes]:
    """Four small stand-in files, and the checksum table pointing at them."""
    files = {name: f"contents of {name}".encode() for name in download.MNIST_SHA256}
    monkeypatch.setattr(download, "MNIST_SHA256", {n: hashlib.sha256(b).hexdigest() for n, b in files.items()})
    return files


def test_ensure_mnist_downloads_then_reuses_cache(tmp_path, cache, monkeypatch):
    files = fake_mnist(tmp_path, monkeypatch)
    served = tmp_path / "mirror"
    served.mkdir()
    for name, content in files.items():
        (served / name).write_bytes(content)
    monkeypatch.setattr(download, "MIRRORS", (served.as_uri() + "/",))
    assert download.ensure_mnist() == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)

    # Second call: everything verified from the cache, the network is never touched.
    shutil.rmtree(served)
    monkeypatch.setattr(download, "fetch_url", refuse)
    assert download.ensure_mnist(allow_download=False) == cache


def test_ensure_mnist_never_deletes_or_replaces_a_mismatching_file(tmp_path, cache, monkeypatch):
    files = fake_mnist(tmp_path, monkeypatch)
    cache.mkdir(parents=True)
    for name, content in files.items():
        (cache / name).write_bytes(content)
    (cache / NAME).write_bytes(b"fashion-mnist labels")
    calls = []
    with pytest.raises(download.CacheConflict, match=NAME):
        download.ensure_mnist(fetch=serve(files[NAME], calls))
    assert calls == []
    assert (cache / NAME).read_bytes() == b"fashion-mnist labels"
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)


def test_ensure_mnist_without_downloads_reports_missing_file(cache, monkeypatch):
    monkeypatch.setattr(download, "fetch_url", refuse)
    with pytest.raises(DataError, match="downloads are disabled"):
        download.ensure_mnist(allow_download=False)
