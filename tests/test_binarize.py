"""bctrain.paper.binarize: hard sigmoid, sign, det/stoch/none, straight-through gradient (§2, §3, §8)."""
import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.arch import glorot_h, glorot_lr_scale
from bctrain.paper.binarize import binarize, hard_sigmoid, sign_pm1

H = 0.0383  # a Glorot-like scale that is not a power of two


def test_hard_sigmoid_paper_values():
    x = tf.constant([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    np.testing.assert_array_equal(hard_sigmoid(x).numpy(), [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_sign_pm1_zero_is_plus_one_and_keeps_dtype(dtype):
    s = sign_pm1(tf.constant([-3.0, -1e-30, 0.0, -0.0, 1e-30, 2.0], dtype=dtype))
    assert s.dtype == dtype
    np.testing.assert_array_equal(s.numpy(), [-1, -1, 1, 1, 1, 1])


def test_det_is_exactly_plus_minus_h_and_zero_goes_up():
    w = tf.constant([-0.5, -1e-9, 0.0, 1e-9, 0.7, 2.0])
    wb = binarize(w, "det", H, training=True).numpy()
    np.testing.assert_array_equal(wb, np.float32(H) * np.array([-1, -1, 1, 1, 1, 1], np.float32))


def test_stoch_probability_at_half():
    gen = tf.random.Generator.from_seed(7)
    wb = binarize(tf.fill([100_000], 0.5), "stoch", 1.0, training=True, gen=gen).numpy()
    assert set(np.unique(wb)) <= {-1.0, 1.0}
    assert abs(np.mean(wb == 1.0) - 0.75) <= 0.005


def test_stoch_values_are_exactly_plus_minus_h_and_saturate():
    gen = tf.random.Generator.from_seed(3)
    w = tf.constant(np.random.default_rng(0).uniform(-H, H, size=5000), tf.float32)
    wb = binarize(w, "stoch", H, training=True, gen=gen).numpy()
    assert set(np.unique(wb)) == {np.float32(-H), np.float32(H)}
    edges = binarize(tf.constant([-H, -2 * H, H, 2 * H] * 1000), "stoch", H, True, gen=gen).numpy()
    expected = np.float32(H) * np.tile([-1, -1, 1, 1], 1000).astype(np.float32)
    np.testing.assert_array_equal(edges, expected)


def test_stoch_draw_changes_per_call_and_seed_reproduces():
    w = tf.zeros([4096])
    gen = tf.random.Generator.from_seed(11)
    first = binarize(w, "stoch", 1.0, True, gen=gen).numpy()
    second = binarize(w, "stoch", 1.0, True, gen=gen).numpy()
    assert np.mean(first != second) > 0.3
    again = tf.random.Generator.from_seed(11)
    np.testing.assert_array_equal(binarize(w, "stoch", 1.0, True, gen=again).numpy(), first)
    np.testing.assert_array_equal(binarize(w, "stoch", 1.0, True, gen=again).numpy(), second)


def test_inference_rules():
    w = tf.constant([-0.3, 0.0, 0.2])
    signs = np.float32(H) * np.array([-1, 1, 1], np.float32)
    for mode in ("det", "stoch"):
        np.testing.assert_array_equal(binarize(w, mode, H, training=False).numpy(), signs)
        np.testing.assert_array_equal(binarize(w, mode, H, False, eval_mode="real").numpy(), w.numpy())
    for training in (True, False):
        np.testing.assert_array_equal(binarize(w, "none", H, training).numpy(), w.numpy())


@pytest.mark.parametrize("mode", ["det", "stoch", "none"])
def test_gradient_is_identity_without_masking(mode):
    w = tf.Variable([-3.0, -0.5, 0.0, 0.2, 1.0, 4.0])
    c = tf.constant([1.0, -2.0, 3.0, 0.5, -1.5, 2.5])
    gen = tf.random.Generator.from_seed(0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(c * binarize(w, mode, 1.0, training=True, gen=gen))
    np.testing.assert_array_equal(tape.gradient(loss, w).numpy(), c.numpy())


def test_works_under_xla():
    gen = tf.random.Generator.from_seed(5)
    w = tf.Variable(tf.random.uniform([64, 32], -1, 1, seed=1))

    @tf.function(jit_compile=True)
    def grads():
        with tf.GradientTape() as tape:
            wb = binarize(w, "stoch", 1.0, True, gen=gen)
            loss = tf.reduce_sum(3.0 * wb)
        return wb, tape.gradient(loss, w)

    wb, g = grads()
    assert set(np.unique(wb.numpy())) <= {-1.0, 1.0}
    np.testing.assert_array_equal(g.numpy(), np.full([64, 32], 3.0, np.float32))


def test_bad_arguments():
    w = tf.zeros([3])
    with pytest.raises(ValueError, match="mode 'binary'"):
        binarize(w, "binary", 1.0, True)
    with pytest.raises(ValueError, match="eval_mode 'float'"):
        binarize(w, "det", 1.0, False, eval_mode="float")
    with pytest.raises(ValueError, match="Generator"):
        binarize(w, "stoch", 1.0, True)


@pytest.mark.parametrize("fan_in, fan_out, expected", [
    (784, 2048, 43.45), (2048, 2048, 52.26), (2048, 10, 37.04),
    (784, 1024, 34.72), (1024, 1024, 36.95), (1024, 10, 26.26),
    (27, 1152, 28.04), (128 * 9, 128 * 9, 39.19), (512 * 9, 512 * 9, 78.38), (8192, 1024, 78.38),
])
def test_glorot_lr_scale_paper_values(fan_in, fan_out, expected):
    assert glorot_lr_scale(fan_in, fan_out) == pytest.approx(expected, abs=0.01)
    assert glorot_h(fan_in, fan_out) * glorot_lr_scale(fan_in, fan_out) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(7,), (3, 5), (1000, 3)])
def test_uniform16_covers_the_16_bit_grid(shape):
    from bctrain.paper.binarize import uniform16
    u = uniform16(tf.random.Generator.from_seed(4), shape).numpy()
    assert u.shape == shape and u.dtype == np.int32 and u.min() >= 0 and u.max() < 65536


def test_uniform16_is_uniform_and_uses_both_halves_of_each_word():
    from bctrain.paper.binarize import uniform16
    u = uniform16(tf.random.Generator.from_seed(5), (200_000,)).numpy().astype(np.float64)
    # mean and variance of the discrete uniform on 0..65535, 6 standard errors
    assert abs(u.mean() - 32767.5) < 6 * 18918.6 / np.sqrt(len(u))
    assert abs(u.var() / (65536 ** 2 / 12) - 1) < 0.02
    low, high = u[0::2], u[1::2]
    assert abs(np.corrcoef(low, high)[0, 1]) < 0.02
    assert np.histogram(u, bins=16, range=(0, 65536))[0].min() > 0.9 * len(u) / 16


def test_stochastic_probability_under_xla_with_threefry():
    gen = tf.random.Generator.from_seed(6, alg="threefry")
    w = tf.fill([100_000], 0.5)
    draw = tf.function(lambda: binarize(w, "stoch", 1.0, training=True, gen=gen), jit_compile=True)
    assert abs(float(tf.reduce_mean(tf.cast(draw() > 0, tf.float32))) - 0.75) < 0.005


# -- activations (BinaryNet, §10) -------------------------------------------------------------

ACT_X = np.array([-3.0, -1.0000001, -1.0, -0.9999999, -0.5, -1e-30, -0.0, 0.0, 1e-30, 0.25, 0.9999999, 1.0,
                  1.0000001, 2.0], np.float32)


def _act_oracle(x, g):
    """NumPy: sign with sign(0) = +1; gradient g where |x| <= 1 (both ends included), else 0."""
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32), np.where(np.abs(x) <= 1, g, 0).astype(np.float32)


@pytest.mark.parametrize("jit", [False, True])
def test_sign_ste_forward_and_backward_against_numpy(jit):
    from bctrain.paper.binarize import sign_ste
    x = tf.constant(ACT_X)
    g = np.random.default_rng(0).normal(size=ACT_X.shape).astype(np.float32)

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = sign_ste(x)
            loss = tf.reduce_sum(tf.constant(g) * y)
        return y, tape.gradient(loss, x)

    y, dx = (tf.function(run, jit_compile=True) if jit else run)(x)
    want_y, want_dx = _act_oracle(ACT_X, g)
    np.testing.assert_array_equal(y.numpy(), want_y)
    np.testing.assert_array_equal(dx.numpy(), want_dx)
    # the cases named by §10: x = ±0 gives +1; |x| = 1 passes the gradient; just beyond it does not
    assert y.numpy()[6] == y.numpy()[7] == 1.0
    assert dx.numpy()[2] == g[2] and dx.numpy()[11] == g[11]
    assert dx.numpy()[1] == 0.0 and dx.numpy()[12] == 0.0
