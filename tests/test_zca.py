"""bctrain.data.zca: whitening with covariance + bias·I, fitted on training rows only."""
import numpy as np

from bctrain.data import zca


def _data(n, d, seed):
    """Correlated rows: a random mixing of independent sources with very different variances."""
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((d, d))
    scales = np.geomspace(10.0, 0.05, d)
    return (rng.standard_normal((n, d)) * scales) @ mixing + rng.normal(0, 3, d)


def _chunks(x, size=700):
    return lambda: (x[i:i + size] for i in range(0, len(x), size))


def test_whitened_covariance_is_identity_with_the_bias_accounted_for():
    x = _data(5000, 24, 0)
    params = zca.fit(_chunks(x), bias=0.1)
    assert params["zca_mean"].dtype == np.float32 and params["zca_p"].shape == (24, 24)
    y = zca.apply(x, params, np.float64)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    c0 = np.cov(x, rowvar=False, bias=True)
    # Whitened covariance P C0 P = C0 (C0 + bias I)^-1: the identity shrunk along small directions.
    expected = c0 @ np.linalg.inv(c0 + 0.1 * np.eye(24))
    np.testing.assert_allclose(np.cov(y, rowvar=False, bias=True), expected, atol=2e-5)
    # Along the directions of variance >> bias it is the identity.
    eigenvalues, vectors = np.linalg.eigh(c0)
    big = vectors[:, eigenvalues > 100 * 0.1]
    assert big.shape[1] >= 8
    np.testing.assert_allclose(big.T @ np.cov(y, rowvar=False, bias=True) @ big, np.eye(big.shape[1]), atol=1.1e-2)


def test_without_bias_the_covariance_is_exactly_identity():
    x = _data(3000, 10, 1)
    y = zca.apply(x, zca.fit(_chunks(x), bias=0.0), np.float64)
    np.testing.assert_allclose(np.cov(y, rowvar=False, bias=True), np.eye(10), atol=2e-4)


def test_p_is_symmetric_and_matches_a_direct_eigendecomposition():
    x = _data(2000, 12, 2)
    p = zca.fit(_chunks(x, 333))["zca_p"]
    np.testing.assert_allclose(p, p.T, atol=1e-6)
    c = np.cov(x, rowvar=False, bias=True) + 0.1 * np.eye(12)
    w, v = np.linalg.eigh(c)
    np.testing.assert_allclose(p, v @ np.diag(w ** -0.5) @ v.T, rtol=1e-5, atol=1e-6)


def test_test_data_uses_the_training_parameters():
    train, test = _data(3000, 8, 3), _data(50, 8, 4)
    params = zca.fit(_chunks(train))
    expected = (test - params["zca_mean"].astype(np.float64)) @ params["zca_p"].astype(np.float64)
    np.testing.assert_allclose(zca.apply(test, params, np.float64), expected, rtol=1e-12)
    # Fitting on other data gives other parameters: the test rows must not enter the fit.
    assert not np.allclose(zca.fit(_chunks(np.concatenate([train, test * 10])))["zca_p"], params["zca_p"])
