"""bctrain.paper.losses against NumPy: squared hinge on +-1 targets, error rate and error count (§5)."""
import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.losses import error_rate, n_errors, squared_hinge

RNG = np.random.default_rng(0)


def test_squared_hinge_matches_numpy():
    y = RNG.normal(scale=2.0, size=(50, 10))
    labels = RNG.integers(0, 10, size=50)
    t = 2.0 * np.eye(10)[labels] - 1.0
    expected = np.mean(np.maximum(0.0, 1.0 - t * y) ** 2)
    got = squared_hinge(tf.constant(y, tf.float32), tf.constant(t, tf.float32))
    assert got.numpy() == pytest.approx(expected, rel=1e-6)


def test_squared_hinge_is_zero_beyond_the_margin():
    t = tf.constant([[1.0, -1.0, -1.0]])
    assert squared_hinge(tf.constant([[1.0, -1.0, -3.0]]), t).numpy() == 0.0
    assert squared_hinge(tf.constant([[0.0, 0.0, 0.0]]), t).numpy() == 1.0


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_error_rate_and_count_match_numpy(dtype):
    y = RNG.normal(size=(37, 10)).astype(np.float32)
    labels = RNG.integers(0, 10, size=37).astype(dtype)
    labels[:10] = y[:10].argmax(axis=1)
    wrong = y.argmax(axis=1) != labels
    rate = error_rate(tf.constant(y), tf.constant(labels)).numpy()
    assert rate == pytest.approx(wrong.mean(), rel=1e-6)
    assert int(n_errors(tf.constant(y), labels)) == int(wrong.sum())
