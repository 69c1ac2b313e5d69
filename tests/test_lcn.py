"""bctrain.data.lcn: pylearn2's LeCun LCN against a direct NumPy computation."""
import numpy as np
import pytest

from bctrain.data import lcn


def direct_lcn(x):
    """One image channel by channel, with an explicit 7x7 window sum at every pixel (float64)."""
    k = lcn.gaussian_2d()
    n, height, width, channels = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(n):
        for c in range(channels):
            img = x[i, :, :, c].astype(np.float64)
            padded = np.pad(img, 3)
            padded_sq = np.pad(img ** 2, 3)
            local_mean = np.array([[np.sum(k * padded[r:r + 7, s:s + 7]) for s in range(width)] for r in range(height)])
            denom = np.sqrt([[np.sum(k * padded_sq[r:r + 7, s:s + 7]) for s in range(width)] for r in range(height)])
            divisor = np.maximum(np.maximum(denom, denom.mean()), 1e-4)
            out[i, :, :, c] = (img - local_mean) / divisor
    return out


def test_gaussian_is_pylearn2s_filter():
    k = lcn.gaussian_2d()
    assert k.shape == (7, 7) and abs(k.sum() - 1) < 1e-15 and k[3, 3] == k.max()
    u = np.arange(7) - 3
    raw = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / 8.0) / (2 * np.pi * 4.0)  # sigma = 2, as pylearn2
    np.testing.assert_allclose(k, raw / raw.sum(), rtol=1e-14)
    np.testing.assert_allclose(np.outer(lcn.gaussian_1d(), lcn.gaussian_1d()), k, atol=1e-17)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_against_the_direct_computation(dtype, rtol):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 12, 10, 3)) * 0.02
    x[1, :, :, 2] = 0.0  # a blank channel: the 1e-4 floor applies
    x[2, :6] *= 30  # a bright half: the local norm exceeds the image mean there
    got = lcn.lcn(x.astype(dtype), dtype)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_allclose(got, direct_lcn(x.astype(dtype)), rtol=rtol, atol=rtol * 1e-2)
    assert not got[1, :, :, 2].any()


def test_channels_are_independent():
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3))
    y = lcn.lcn(x, np.float64)
    x2 = x.copy()
    x2[..., 1] *= 5
    np.testing.assert_allclose(lcn.lcn(x2, np.float64)[..., [0, 2]], y[..., [0, 2]], rtol=1e-14)
