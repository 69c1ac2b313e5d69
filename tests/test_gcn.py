"""bctrain.data.gcn: per-image global contrast normalisation (pylearn2's convention)."""
import numpy as np
import pytest

from bctrain.data.gcn import gcn


@pytest.mark.parametrize("scale", [55.0, 1.0])
def test_rows_have_zero_mean_and_the_stated_norm(scale):
    x = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    y = gcn(x, scale)
    assert y.dtype == np.float32 and y.shape == (40, 3072)
    np.testing.assert_allclose(y.mean(axis=1, dtype=np.float64), 0, atol=1e-6 * scale)
    np.testing.assert_allclose(np.linalg.norm(y.astype(np.float64), axis=1), scale, rtol=1e-6)


def test_against_a_direct_computation_on_one_image():
    x = np.array([[0, 10, 20, 250]], np.uint8)
    v = x[0].astype(np.float64) - 70.0
    expected = v * 55 / np.sqrt((v ** 2).sum())
    np.testing.assert_allclose(gcn(x, 55.0, np.float64)[0], expected, rtol=1e-15)
    # Independent of the pixel scale: the same on pixels / 255.
    np.testing.assert_allclose(gcn(x / 255.0, 55.0, np.float64), gcn(x, 55.0, np.float64), rtol=1e-13)


def test_a_constant_image_stays_zero():
    x = np.full((2, 4, 4, 3), 77, np.uint8)
    assert not gcn(x, 55.0).any()


def test_float32_result_is_the_rounded_float64_one():
    x = np.random.default_rng(1).integers(0, 256, (10, 3072), dtype=np.uint8)
    np.testing.assert_array_equal(gcn(x, 55.0, np.float32), gcn(x, 55.0, np.float64).astype(np.float32))
