"""bctrain.data.cifar10: the official python-version files, parsed safely (tiny files, no network)."""
import dataclasses
import gzip
import hashlib
import os
import pickle
import tarfile

import numpy as np
import pytest

from bctrain.data import DataError, cifar10, download, load_splits, registry
from dataset_files import (cifar_arrays, py2_pickle, write_cifar_archive,
                           write_cifar_folder)


def _expected(arrays):
    x = np.concatenate([arrays[n][0] for n in cifar10.TRAIN_BATCHES])
    y = np.concatenate([arrays[n][1] for n in cifar10.TRAIN_BATCHES])
    return x, y


@pytest.mark.parametrize("layout", ["archive", "folder", "batch files"])
def test_reads_archive_folder_or_batch_files_into_nhwc_splits(tmp_path, layout):
    arrays = cifar_arrays(n_per_batch=6, n_test=8)
    if layout == "archive":
        write_cifar_archive(tmp_path / cifar10.ARCHIVE, arrays)
        data_dir = tmp_path
    elif layout == "folder":
        write_cifar_folder(tmp_path, arrays)
        data_dir = tmp_path
    else:
        data_dir = write_cifar_folder(tmp_path, arrays)
    s = load_splits("cifar10", data_dir=data_dir)
    x, y = _expected(arrays)
    assert s.name == "cifar10" and s.counts() == (27, 3, 8)  # 30 training images: the last 3 validate
    assert s.x_train.dtype == np.uint8 and s.x_train.shape[1:] == (32, 32, 3) and s.image_shape == (32, 32, 3)
    np.testing.assert_array_equal(s.x_train, x[:27])
    np.testing.assert_array_equal(s.x_val, x[27:])
    np.testing.assert_array_equal(s.y_val, y[27:])
    np.testing.assert_array_equal(s.x_test, arrays[cifar10.TEST_BATCH][0])
    assert s.y_train.dtype == np.int64


def test_channel_major_rows_become_nhwc():
    # One image whose red plane is 1, green 2, blue 3, written in the official row layout.
    row = np.repeat(np.array([1, 2, 3], np.uint8), 1024)[None]
    data = py2_pickle({"data": row, "labels": [4]})
    x, y = cifar10.parse_batch(data, "batch")
    assert x.shape == (1, 32, 32, 3) and list(x[0, 5, 7]) == [1, 2, 3] and list(y) == [4]
    # Pixel (r, c) of channel k is element k*1024 + r*32 + c of the row.
    row = np.arange(3072).astype(np.uint16) % 251
    x, _ = cifar10.parse_batch(py2_pickle({"data": row.astype(np.uint8)[None], "labels": [0]}), "b")
    assert x[0, 3, 5, 2] == (2 * 1024 + 3 * 32 + 5) % 251


def test_official_split_sizes():
    assert cifar10.n_validation(50_000) == 5_000 and cifar10.n_validation(30) == 3


def test_unpickler_refuses_arbitrary_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    data = pickle.dumps({"data": Evil(), "labels": []}, protocol=2)
    with pytest.raises(DataError, match="refusing to load the global .*system"):
        cifar10.parse_batch(data, "evil")


@pytest.mark.parametrize("member, payload, message", [
    ("data_batch_2", b"\x80\x02garbage", "not a readable CIFAR-10 batch"),
    ("data_batch_3", py2_pickle(["a", "list"]), "expected a dict with 'data' and 'labels'"),
    ("data_batch_4", py2_pickle({"data": np.zeros((2, 1024), np.uint8), "labels": [1, 2]}),
     r"data is uint8\[2, 1024\], expected uint8 \[N, 3072\]"),
    ("data_batch_5", py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}), "1 labels for 2 images"),
    ("test_batch", py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 10]}),
     r"label 10 at index 1 outside 0..9"),
    # D5: a label beyond int64 crashed with OverflowError
    ("data_batch_1", py2_pickle({"data": np.zeros((3, 3072), np.uint8), "labels": [1, 2 ** 70, -2 ** 70]}),
     r"label 1180591620717411303424 at index 1 outside 0..9 \(2 such labels\)"),
])
def test_malformed_batches_are_one_line_errors(tmp_path, member, payload, message):
    write_cifar_archive(tmp_path / cifar10.ARCHIVE, cifar_arrays(), override={member: payload})
    with pytest.raises(DataError, match=message) as info:
        load_splits("cifar10", data_dir=tmp_path)
    assert "\n" not in str(info.value) and member in str(info.value)


def test_truncated_and_incomplete_archives(tmp_path):
    path = write_cifar_archive(tmp_path / cifar10.ARCHIVE, cifar_arrays())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        load_splits("cifar10", data_dir=tmp_path)
    arrays = cifar_arrays()
    del arrays["data_batch_3"]
    write_cifar_archive(path, arrays)
    with pytest.raises(DataError, match="no cifar-10-batches-py/data_batch_3 in the archive"):
        load_splits("cifar10", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no cifar-10-python.tar.gz"):
        load_splits("cifar10", data_dir=tmp_path / "empty")


def test_missing_batch_file_in_folder(tmp_path):
    folder = write_cifar_folder(tmp_path, cifar_arrays())
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch: cannot read"):
        load_splits("cifar10", data_dir=tmp_path)


def test_verified_cache_then_checksum_mismatch(tmp_path, monkeypatch):
    """The archive in the cache is used only while its SHA-256 is the published one."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BCNN_CACHE", str(cache))
    (cache / "cifar10").mkdir(parents=True)
    archive = write_cifar_archive(cache / "cifar10" / cifar10.ARCHIVE, cifar_arrays())
    entry = registry.DATASETS["cifar10"]
    good = registry.RemoteFile(cifar10.ARCHIVE, hashlib.sha256(archive.read_bytes()).hexdigest(), (), 0)
    monkeypatch.setitem(registry.DATASETS, "cifar10", dataclasses.replace(entry, files=(good,)))
    assert load_splits("cifar10").counts() == (27, 3, 8)
    bad = registry.RemoteFile(cifar10.ARCHIVE, "0" * 64, ("file:///nonexistent/" + cifar10.ARCHIVE,), 0)
    monkeypatch.setitem(registry.DATASETS, "cifar10", dataclasses.replace(entry, files=(bad,)))
    with pytest.raises(download.CacheConflict, match="not the official file"):  # never deleted: may be the user's
        load_splits("cifar10")
    assert [p.name for p in (cache / "cifar10").iterdir()] == [cifar10.ARCHIVE]


def test_download_goes_to_the_cache_and_is_checked(tmp_path, monkeypatch):
    served = tmp_path / "mirror"
    served.mkdir()
    archive = write_cifar_archive(served / cifar10.ARCHIVE, cifar_arrays())
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path / "cache"))
    entry = registry.DATASETS["cifar10"]
    remote = registry.RemoteFile(cifar10.ARCHIVE, sha, (archive.as_uri(),), 0)
    monkeypatch.setitem(registry.DATASETS, "cifar10", dataclasses.replace(entry, files=(remote,)))
    s = load_splits("cifar10")
    assert s.counts() == (27, 3, 8) and "verified CIFAR-10 cache" in s.source
    assert (download.dataset_cache_dir("cifar10") / cifar10.ARCHIVE).read_bytes() == archive.read_bytes()


def test_official_url_and_checksum():
    (f,) = registry.DATASETS["cifar10"].files
    assert f.urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    assert f.sha256 == "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
    assert f.size == 170_498_071


def test_a_flipped_byte_is_refused_by_the_gzip_check(tmp_path):
    """D2: tarfile stops before the gzip trailer, so a changed byte trained on changed images."""
    path = write_cifar_archive(tmp_path / cifar10.ARCHIVE, cifar_arrays(n_per_batch=20, n_test=20))
    data = bytearray(path.read_bytes())
    data[150000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match="CRC check failed"):  # the oracle: the standard library's gzip
        gzip.decompress(bytes(data))
    with pytest.raises(DataError, match=f"{path}: corrupt or truncated archive .*CRC check failed") as info:
        load_splits("cifar10", data_dir=tmp_path)
    assert "\n" not in str(info.value)
    path.write_bytes(path.read_bytes() + b"junk")  # bytes after the gzip stream
    with pytest.raises(DataError, match="corrupt or truncated archive"):
        load_splits("cifar10", data_dir=tmp_path)


def _declared_only(path, name, size):
    """A gzipped tar holding one member header that declares `size` bytes and little else after it."""
    info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
    info.size = size
    with gzip.open(path, "wb") as gz:
        gz.write(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024))
    return path


@pytest.mark.parametrize("layout", ["archive", "folder"])
def test_a_member_larger_than_a_batch_is_refused_before_it_is_read(tmp_path, monkeypatch, layout):
    """D7: a 1.35 MB archive declaring a 1 GiB data_batch_1 was read whole into memory."""
    if layout == "archive":
        _declared_only(tmp_path / cifar10.ARCHIVE, "data_batch_1", 2 ** 30)
    else:
        folder = write_cifar_folder(tmp_path, cifar_arrays())
        with open(folder / "data_batch_2", "r+b") as fh:
            fh.truncate(2 ** 30)  # sparse: no gigabyte written
    reads = []
    real_read = tarfile.ExFileObject.read
    monkeypatch.setattr(tarfile.ExFileObject, "read", lambda self, *a: reads.append(a) or real_read(self, *a))
    with pytest.raises(DataError, match=r"data_batch_\d: 1,073,741,824 bytes, more than a CIFAR-10 batch can be "
                                        r"\(67,108,864\); not a CIFAR-10 batch") as info:
        load_splits("cifar10", data_dir=tmp_path)
    assert "\n" not in str(info.value) and reads == []
    assert cifar10.MAX_BATCH_BYTES > 2 * 10_000 * 3_073  # twice an official batch's image and label bytes


def test_the_archive_is_read_once_and_a_changed_one_is_named_as_not_official(tmp_path, monkeypatch, capsys):
    """Its SHA-256 comes from the single pass that also checks the gzip CRC; only files other than the
    published one get a notice, and are used (a user's own files in the official format are allowed)."""
    path = write_cifar_archive(tmp_path / cifar10.ARCHIVE, cifar_arrays())
    opened = []
    monkeypatch.setattr(cifar10, "open", lambda p, *a: opened.append(p) or open(p, *a), raising=False)
    s = load_splits("cifar10", data_dir=tmp_path)
    assert opened == [path] and s.file_sha256 == ((str(path), hashlib.sha256(path.read_bytes()).hexdigest()),)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"notice: {path}: not the official CIFAR-10 file"), err
    entry = registry.DATASETS["cifar10"]
    official = registry.RemoteFile(cifar10.ARCHIVE, s.file_sha256[0][1], (), 0)
    monkeypatch.setitem(registry.DATASETS, "cifar10", dataclasses.replace(entry, files=(official,)))
    assert load_splits("cifar10", data_dir=tmp_path).counts() == (27, 3, 8)
    assert capsys.readouterr().err == ""
    write_cifar_folder(tmp_path / "f", cifar_arrays())  # extracted batches: no published checksum, no notice
    assert load_splits("cifar10", data_dir=tmp_path / "f").file_sha256 == () and capsys.readouterr().err == ""
