"""Tests for bctrain.data.preprocess: per-pixel mean fitted on the training split only."""

import numpy as np
import pytest

from bctrain.data import preprocess


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)


def test_fit_mean_is_per_pixel_mean_of_scaled_pixels(images):
    x, _ = images
    mean = preprocess.fit_mean(x)
    assert mean.dtype == np.float32 and mean.shape == (784,)
    np.testing.assert_allclose(mean, (x.astype(np.float64) / 255).reshape(50, -1).mean(axis=0), atol=1e-7)


def test_apply_mean_and_none(images):
    x, _ = images
    mean = preprocess.fit_mean(x)
    out = preprocess.apply_mean(x, mean)
    assert out.dtype == np.float32 and out.shape == (50, 784)
    np.testing.assert_allclose(out, x.reshape(50, -1) / 255.0 - mean, atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-6)
    none = preprocess.apply_none(x)
    assert none.dtype == np.float32 and none.min() >= 0 and none.max() <= 1
    np.testing.assert_allclose(none, x.reshape(50, -1) / 255.0, atol=1e-7)


def test_mean_comes_from_training_split_only(images):
    x_train, x_val = images
    mean_a, (train_a, val_a) = preprocess.preprocess("mean", x_train, x_val)
    mean_b, (train_b, val_b) = preprocess.preprocess("mean", x_train, 255 - x_val)
    np.testing.assert_array_equal(mean_a, mean_b)
    np.testing.assert_array_equal(train_a, train_b)
    np.testing.assert_array_equal(mean_a, preprocess.fit_mean(x_train))
    np.testing.assert_allclose(val_a, x_val.reshape(7, -1) / 255.0 - mean_a, atol=1e-6)


def test_kind_none_has_zero_mean(images):
    x_train, x_val = images
    mean, (train, val) = preprocess.preprocess("none", x_train, x_val)
    assert mean.dtype == np.float32 and mean.shape == (784,) and not mean.any()
    np.testing.assert_array_equal(train, preprocess.apply_none(x_train))
    assert val.shape == (7, 784)


def test_bad_inputs_are_rejected(images):
    x, _ = images
    with pytest.raises(ValueError, match="unknown preprocessing 'zca'"):
        preprocess.preprocess("zca", x)
    with pytest.raises(ValueError, match="expected uint8 images, got float32"):
        preprocess.apply_mean(x.astype(np.float32), np.zeros(784, np.float32))
    with pytest.raises(ValueError, match="mean has shape"):
        preprocess.apply_mean(x, np.zeros(100, np.float32))
