"""Tests for bctrain.data.mnist: split sizes and where the data comes from (no network)."""

import dataclasses
import gzip
import hashlib
import struct
import urllib.error

import numpy as np
import pytest

from bctrain.data import DataError, download, load_splits, mnist, registry


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape) + array.tobytes()


def write_mnist_dir(directory, n_train, n_test, rows=28, cols=28, gz=True, seed=0):
    """Four IDX files of random images; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        mnist.TRAIN_IMAGES: rng.integers(0, 256, (n_train, rows, cols)),
        mnist.TRAIN_LABELS: rng.integers(0, 10, n_train),
        mnist.TEST_IMAGES: rng.integers(0, 256, (n_test, rows, cols)),
        mnist.TEST_LABELS: rng.integers(0, 10, n_test),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (directory / name).write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (directory / name.removesuffix(".gz")).write_bytes(data)
    return arrays


def refuse(url, dest):
    raise urllib.error.URLError("Name or service not known")


@pytest.mark.parametrize("gz", [True, False])
def test_data_dir_split_is_last_sixth_for_validation(tmp_path, gz):
    arrays = write_mnist_dir(tmp_path / "d", n_train=120, n_test=20, gz=gz)
    s = load_splits("mnist", data_dir=tmp_path / "d")
    assert s.name == "mnist" and s.counts() == (100, 20, 20)
    x, y = arrays[mnist.TRAIN_IMAGES], arrays[mnist.TRAIN_LABELS]
    np.testing.assert_array_equal(s.x_train, x[:100])
    np.testing.assert_array_equal(s.x_val, x[100:])
    np.testing.assert_array_equal(s.y_val, y[100:])
    np.testing.assert_array_equal(s.x_test, arrays[mnist.TEST_IMAGES])
    assert s.x_train.dtype == np.uint8 and s.x_train.shape[1:] == (28, 28)
    assert s.y_train.dtype == np.int64 and s.y_test.dtype == np.int64


def test_full_size_training_file_gives_the_papers_split(tmp_path):
    # Tiny 2x2 images keep a 60,000-image file cheap; the split only looks at the count.
    arrays = write_mnist_dir(tmp_path, n_train=60_000, n_test=10_000, rows=2, cols=2)
    s = mnist.read_dir(tmp_path, source="test")
    assert s.counts() == (50_000, 10_000, 10_000)
    np.testing.assert_array_equal(s.x_val, arrays[mnist.TRAIN_IMAGES][50_000:])


def test_n_validation_rounds_half_up():
    assert mnist.n_validation(60_000) == 10_000
    assert mnist.n_validation(120) == 20
    assert mnist.n_validation(9) == 2  # 1.5
    assert mnist.n_validation(3) == 1


def test_data_dir_missing_file_is_an_error_not_a_fallback(tmp_path):
    write_mnist_dir(tmp_path, n_train=12, n_test=4)
    (tmp_path / mnist.TEST_LABELS).unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_splits("mnist", data_dir=tmp_path, allow_sample=True)
    with pytest.raises(DataError, match="does not exist"):
        load_splits("mnist", data_dir=tmp_path / "nowhere")


def test_data_dir_image_size_mismatch(tmp_path):
    write_mnist_dir(tmp_path, n_train=12, n_test=4)
    (tmp_path / mnist.TEST_IMAGES).write_bytes(gzip.compress(idx_bytes(np.zeros((4, 20, 20)))))
    with pytest.raises(DataError, match="images are 20x20, training images in .* are 28x28"):
        load_splits("mnist", data_dir=tmp_path)


def test_verified_cache_is_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BCNN_CACHE", str(cache))
    write_mnist_dir(cache / "mnist", n_train=30, n_test=5)
    entry = registry.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, sha256=hashlib.sha256((cache / "mnist" / f.name).read_bytes()).hexdigest())
                  for f in entry.files)
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(entry, files=files))
    monkeypatch.setattr(download, "fetch_url", refuse)
    s = load_splits("mnist")
    assert s.name == "mnist" and s.counts() == (25, 5, 5)


def test_falls_back_to_sample_when_download_impossible(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(download, "fetch_url", refuse)
    s = load_splits("mnist")
    assert s.name == "mnist-sample"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "full MNIST unavailable" in err and "bundled sample" in err
    assert list((tmp_path / "empty" / "mnist").iterdir()) == []


def test_foreign_files_in_the_cache_stop_the_load_instead_of_a_fallback(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BCNN_CACHE", str(cache))
    write_mnist_dir(cache / "mnist", n_train=30, n_test=5)  # e.g. a Fashion-MNIST copy: other bytes
    before = {p.name: p.read_bytes() for p in (cache / "mnist").iterdir()}
    monkeypatch.setattr(download, "fetch_url", refuse)
    with pytest.raises(download.CacheConflict, match="not the official file"):
        load_splits("mnist")
    assert {p.name: p.read_bytes() for p in (cache / "mnist").iterdir()} == before


def test_fallback_also_without_downloads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path))
    monkeypatch.setattr(download, "fetch_url", refuse)
    assert load_splits("mnist", allow_download=False).name == "mnist-sample"
    assert "bundled sample" in capsys.readouterr().err


def test_no_fallback_when_sample_disallowed(tmp_path, monkeypatch):
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path))
    monkeypatch.setattr(download, "fetch_url", refuse)
    with pytest.raises(DataError, match="download failed"):
        load_splits("mnist", allow_sample=False)


def test_sample_by_name_and_unknown_dataset():
    assert load_splits("mnist-sample").name == "mnist-sample"
    with pytest.raises(DataError, match="unknown dataset 'cifar100'"):
        load_splits("cifar100")


@pytest.mark.parametrize("where", ["data directory", "image file"])
def test_a_symlink_loop_is_reported_as_such_not_as_missing(tmp_path, where):
    if where == "data directory":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        target = tmp_path / "loop"
    else:
        write_mnist_dir(tmp_path, n_train=12, n_test=4)
        (tmp_path / mnist.TEST_IMAGES).unlink()
        (tmp_path / mnist.TEST_IMAGES).symlink_to(tmp_path / mnist.TEST_IMAGES)
        target = tmp_path
    with pytest.raises(DataError, match="Too many levels of symbolic links"):
        load_splits("mnist", data_dir=target)



def test_a_foreign_later_file_with_an_earlier_one_missing_stops_instead_of_a_fallback(tmp_path, monkeypatch, capsys):
    """D13 through load_splits, as in the reproduction: a foreign t10k-images file, nothing else, offline."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BCNN_CACHE", str(cache))
    (cache / "mnist").mkdir(parents=True)
    foreign = cache / "mnist" / mnist.TEST_IMAGES
    foreign.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 28, 28)))))
    before = foreign.read_bytes()
    monkeypatch.setattr(download, "fetch_url", refuse)
    with pytest.raises(download.CacheConflict, match=f"{foreign}: not the official file"):
        load_splits("mnist")
    assert foreign.read_bytes() == before and [p.name for p in (cache / "mnist").iterdir()] == [mnist.TEST_IMAGES]
    assert "bundled sample" not in capsys.readouterr().err


def test_data_dir_files_other_than_the_official_ones_get_one_notice_and_are_used(tmp_path, capsys):
    write_mnist_dir(tmp_path / "gz", n_train=12, n_test=4)
    assert load_splits("mnist", data_dir=tmp_path / "gz").counts() == (10, 2, 4)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("notice: ") and "not the official full MNIST files" in err[0], err
    assert all(str(tmp_path / "gz" / f.name) in err[0] for f in registry.DATASETS["mnist"].files)
    write_mnist_dir(tmp_path / "plain", n_train=12, n_test=4, gz=False)  # no published checksum to compare
    load_splits("mnist", data_dir=tmp_path / "plain")
    assert capsys.readouterr().err == ""


def test_data_dir_files_that_are_the_official_ones_get_no_notice(tmp_path, monkeypatch, capsys):
    write_mnist_dir(tmp_path, n_train=12, n_test=4)
    entry = registry.DATASETS["mnist"]
    files = tuple(dataclasses.replace(f, sha256=hashlib.sha256((tmp_path / f.name).read_bytes()).hexdigest())
                  for f in entry.files)
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(entry, files=files))
    load_splits("mnist", data_dir=tmp_path)
    assert capsys.readouterr().err == ""
