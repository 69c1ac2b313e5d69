"""Tests for bctrain.data.sample: the bundled data/mnist_sample.npz."""

import hashlib

import numpy as np
import pytest

from bctrain.data import DataError, sample

COUNTS = (6000, 2000, 2000)  # documented in data/SOURCES.md


@pytest.fixture(scope="module")
def splits():
    return sample.load_sample()


def test_checksum_is_the_pinned_one():
    assert hashlib.sha256(sample.SAMPLE_PATH.read_bytes()).hexdigest() == sample.SAMPLE_SHA256
    assert sample.SAMPLE_SHA256 in (sample.SAMPLE_PATH.parent / "SOURCES.md").read_text()


def test_counts_types_and_shapes(splits):
    assert splits.name == "mnist-sample"
    assert splits.counts() == COUNTS
    for x, y in ((splits.x_train, splits.y_train), (splits.x_val, splits.y_val), (splits.x_test, splits.y_test)):
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28)
        assert y.dtype == np.int64 and y.shape == (len(x),)


def test_every_class_in_every_split(splits):
    for y in (splits.y_train, splits.y_val, splits.y_test):
        assert set(np.unique(y).tolist()) == set(range(10))


def test_splits_share_no_image(splits):
    keys = [{img.tobytes() for img in x} for x in (splits.x_train, splits.x_val, splits.x_test)]
    assert sum(map(len, keys)) == sum(COUNTS)
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


def test_looks_like_mnist(splits):
    # MNIST digits: black background, ink up to 255, about 19 % of pixels non-zero.
    x = splits.x_train
    assert x.max() == 255 and (x[:, 0, :] == 0).mean() > 0.99
    assert 0.15 < (x > 0).mean() < 0.25


def test_checksum_mismatch_is_an_error(tmp_path):
    copy = tmp_path / "mnist_sample.npz"
    data = bytearray(sample.SAMPLE_PATH.read_bytes())
    data[-100] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match the pinned"):
        sample.load_sample(copy)


def test_missing_sample_is_an_error(tmp_path):
    with pytest.raises(DataError, match="bundled MNIST sample is missing"):
        sample.load_sample(tmp_path / "mnist_sample.npz")
