"""Tests for bctrain.data.download: the verified cache, with simulated downloads only."""

import hashlib
import os
import shutil
import urllib.error
from pathlib import Path

import pytest

from bctrain.data import DataError
from bctrain.data import download, registry

NAME = "t10k-labels-idx1-ubyte.gz"
GOOD = b"the right bytes"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
URLS = tuple(m + NAME for m in registry.MNIST_MIRRORS)


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
    assert download.dataset_cache_dir("mnist") == tmp_path / "mnist"
    monkeypatch.delenv("BCNN_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert download.cache_dir() == tmp_path / "home" / ".cache" / "bcnn"


def test_published_checksums_are_the_documented_ones():
    """Every official file of the registry, with its SHA-256 and size, is the one in data/SOURCES.md."""
    files = {f.name: f for f in registry.DATASETS["mnist"].files}
    assert set(files) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    assert files["train-images-idx3-ubyte.gz"].sha256.startswith("440fcabf73cc546f")
    assert files[NAME].urls == URLS
    assert URLS[0] == "https://storage.googleapis.com/cvdf-datasets/mnist/" + NAME
    sources = (Path(__file__).resolve().parents[1] / "data" / "SOURCES.md").read_text()
    for entry in registry.DATASETS.values():
        for f in entry.files:
            assert f.sha256 in sources and f"{f.size:,}" in sources, f.name
            assert all(u.endswith(f.name) for u in f.urls)


def test_verified_download_lands_in_cache(cache):
    calls = []
    path = download.download_verified(NAME, cache, GOOD_SHA, fetch=serve(GOOD, calls), urls=URLS)
    assert path == cache / NAME and path.read_bytes() == GOOD
    assert calls == [URLS[0]]
    assert sorted(p.name for p in cache.iterdir()) == [NAME]


def test_checksum_mismatch_raises_and_leaves_no_file(cache):
    with pytest.raises(DataError) as info:
        download.download_verified(NAME, cache, GOOD_SHA, fetch=serve(b"tampered"), urls=URLS)
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
    urls = ((bad / NAME).as_uri(), (good / NAME).as_uri())
    path = download.download_verified(NAME, cache, GOOD_SHA, urls=urls)
    assert path.read_bytes() == GOOD
    assert sorted(p.name for p in cache.iterdir()) == [NAME]


def test_unreachable_mirrors_give_one_line_error(cache):
    with pytest.raises(DataError) as info:
        download.download_verified(NAME, cache, GOOD_SHA, fetch=refuse, urls=URLS)
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
        download.download_verified(NAME, cache, GOOD_SHA, fetch=fetch_while_the_user_copies, urls=URLS)
    assert sorted(p.name for p in cache.iterdir()) == [NAME]
    assert (cache / NAME).read_bytes() == b"the user's copy"


def fake_files(served: Path | None = None) -> tuple[dict[str, bytes], tuple]:
    """Four small stand-in files and their RemoteFile table (URLs under `served`, else the mirrors)."""
    contents = {f.name: f"contents of {f.name}".encode() for f in registry.DATASETS["mnist"].files}
    table = tuple(registry.RemoteFile(n, hashlib.sha256(b).hexdigest(),
                                      ((served / n).as_uri(),) if served else tuple(m + n for m in registry.MNIST_MIRRORS),
                                      len(b))
                  for n, b in contents.items())
    return contents, table


def test_ensure_files_downloads_then_reuses_cache(tmp_path, cache, monkeypatch):
    served = tmp_path / "mirror"
    served.mkdir()
    files, table = fake_files(served)
    for name, content in files.items():
        (served / name).write_bytes(content)
    assert download.ensure_files("mnist", table) == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)

    # Second call: everything verified from the cache, the network is never touched.
    shutil.rmtree(served)
    monkeypatch.setattr(download, "fetch_url", refuse)
    assert download.ensure_files("mnist", table, allow_download=False) == cache


def test_ensure_files_never_deletes_or_replaces_a_mismatching_file(tmp_path, cache, monkeypatch):
    files, table = fake_files()
    cache.mkdir(parents=True)
    for name, content in files.items():
        (cache / name).write_bytes(content)
    (cache / NAME).write_bytes(b"fashion-mnist labels")
    calls = []
    with pytest.raises(download.CacheConflict, match=NAME):
        download.ensure_files("mnist", table, fetch=serve(files[NAME], calls))
    assert calls == []
    assert (cache / NAME).read_bytes() == b"fashion-mnist labels"
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)


def test_ensure_files_without_downloads_reports_missing_file(cache, monkeypatch):
    monkeypatch.setattr(download, "fetch_url", refuse)
    with pytest.raises(DataError, match="downloads are disabled"):
        download.ensure_files("mnist", registry.DATASETS["mnist"].files, allow_download=False)


@pytest.mark.parametrize("allow_download", [True, False])
def test_a_foreign_file_under_a_later_name_wins_over_a_missing_earlier_one(cache, monkeypatch, allow_download):
    """D13: with an earlier file missing and no network, the failed download used to be reported first,
    so training fell back to the sample instead of naming the foreign file."""
    files, table = fake_files()
    cache.mkdir(parents=True)
    later = table[-1].name
    (cache / later).write_bytes(b"another dataset's file")
    monkeypatch.setattr(download, "fetch_url", refuse)
    with pytest.raises(download.CacheConflict, match=f"{cache / later}: not the official file"):
        download.ensure_files("mnist", table, allow_download=allow_download)
    assert sorted(p.name for p in cache.iterdir()) == [later]
    assert (cache / later).read_bytes() == b"another dataset's file"
