"""bctrain.paper.layers against NumPy oracles: binary dense/conv, the authors' BatchNorm (§1, §4, §8)."""
import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.binarize import binarize
from bctrain.paper.layers import BatchNorm, BinaryConv2D, BinaryDense, max_pool2, relu

H = 0.0383
RNG = np.random.default_rng(0)


def _sign(w):
    return np.where(w >= 0, 1.0, -1.0).astype(np.float32)


def _conv_same(x, w):
    """NumPy NHWC / HWIO convolution, stride 1, zero padding "SAME" (odd kernels)."""
    k = w.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    n, hh, ww, _ = x.shape
    out = np.zeros((n, hh, ww, w.shape[3]), np.float64)
    for di in range(k):
        for dj in range(k):
            out += np.einsum("nhwc,co->nhwo", xp[:, di:di + hh, dj:dj + ww, :], w[di, dj])
    return out


def _bn_numpy(x, gamma, beta, alpha, eps, run_mean, run_std):
    axes = tuple(range(x.ndim - 1))
    mu, sigma = x.mean(axis=axes), x.std(axis=axes)
    y = (x - mu) * gamma / (sigma + eps) + beta
    return y, (1 - alpha) * run_mean + alpha * mu, (1 - alpha) * run_std + alpha * sigma


def _x(*shape):
    return tf.constant(RNG.normal(size=shape), tf.float32)


def test_dense_init_and_variables():
    a = BinaryDense(20, 7, mode="det", h=H, lr_scale=3.0, seed=4, name="d")
    b = BinaryDense(20, 7, mode="det", h=H, lr_scale=3.0, init_gen=tf.random.Generator.from_seed(4))
    w = a.w.numpy()
    assert w.shape == (20, 7) and np.all(np.abs(w) <= np.float32(H)) and np.std(w) > H / 4
    np.testing.assert_array_equal(w, b.w.numpy())
    np.testing.assert_array_equal(a.b.numpy(), np.zeros(7))
    assert (a.n_in, a.n_out, a.mode, a.h, a.lr_scale, a.is_binary) == (20, 7, "det", H, 3.0, True)
    assert {v.name for v in a.trainable_variables} == {"d/w:0", "d/b:0"}
    assert not BinaryDense(2, 2, mode="none", h=1.0, lr_scale=1.0).is_binary


def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        BinaryDense(2, 2, mode="sign", h=1.0, lr_scale=1.0)
    with pytest.raises(ValueError, match="h="):
        BinaryConv2D(2, 2, mode="det", h=0.0, lr_scale=1.0)
    with pytest.raises(ValueError, match="lr_scale"):
        BinaryConv2D(2, 2, 3, "det", 1.0, None)
    with pytest.raises(ValueError, match="alpha"):
        BatchNorm(3, alpha=0.0)


def test_dense_equals_float_matmul_of_sign():
    layer = BinaryDense(30, 9, mode="det", h=H, lr_scale=1.0, seed=1)
    layer.b.assign(RNG.normal(size=9).astype(np.float32))
    x = _x(16, 30)
    expected = x.numpy() @ (np.float32(H) * _sign(layer.w.numpy())) + layer.b.numpy()
    for training in (True, False):
        np.testing.assert_allclose(layer(x, training=training).numpy(), expected, rtol=1e-5, atol=1e-6)
    real = x.numpy() @ layer.w.numpy() + layer.b.numpy()
    np.testing.assert_allclose(layer(x, False, eval_mode="real").numpy(), real, rtol=1e-5, atol=1e-6)


def test_conv_equals_float_conv_of_sign():
    layer = BinaryConv2D(3, 5, kernel=3, mode="det", h=1.0, lr_scale=1.0, seed=2)
    layer.b.assign(RNG.normal(size=5).astype(np.float32))
    x = _x(2, 6, 7, 3)
    assert layer.w.shape == (3, 3, 3, 5)
    expected = _conv_same(x.numpy(), _sign(layer.w.numpy())) + layer.b.numpy()
    np.testing.assert_allclose(layer(x, training=True).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["det", "stoch"])
@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_gradient_of_w_equals_gradient_of_wb(kind, mode):
    """The straight-through estimator: dL/dw of the binary layer is dL/dwb of a float layer fed wb."""
    if kind == "dense":
        layer = BinaryDense(12, 4, mode=mode, h=H, lr_scale=1.0, gen=tf.random.Generator.from_seed(9))
        x = _x(8, 12)
        forward = lambda wb: tf.matmul(x, wb) + layer.b
    else:
        layer = BinaryConv2D(2, 3, mode=mode, h=H, lr_scale=1.0, gen=tf.random.Generator.from_seed(9))
        x = _x(2, 5, 5, 2)
        forward = lambda wb: tf.nn.conv2d(x, wb, 1, "SAME") + layer.b
    wb = tf.Variable(binarize(layer.w, mode, H, True, gen=tf.random.Generator.from_seed(9)))
    target = _x(*forward(wb).shape)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True) - target))
    grad_w = tape.gradient(loss, layer.w)
    with tf.GradientTape() as tape:
        loss_b = tf.reduce_sum(tf.square(forward(wb) - target))
    np.testing.assert_allclose(loss.numpy(), loss_b.numpy(), rtol=1e-6)
    np.testing.assert_allclose(grad_w.numpy(), tape.gradient(loss_b, wb).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(40, 6), (4, 5, 3, 6)])
def test_batchnorm_matches_numpy(shape):
    alpha, eps = 0.15, 1e-4
    bn = BatchNorm(6, alpha=alpha, eps=eps)
    gamma, beta = RNG.uniform(0.5, 2, 6), RNG.normal(size=6)
    bn.gamma.assign(gamma.astype(np.float32))
    bn.beta.assign(beta.astype(np.float32))
    run_mean, run_std = np.zeros(6), np.ones(6)
    for _ in range(3):
        x = RNG.normal(loc=2.0, scale=3.0, size=shape) * RNG.uniform(0.01, 1, 6)
        y, run_mean, run_std = _bn_numpy(x, gamma, beta, alpha, eps, run_mean, run_std)
        got = bn(tf.constant(x, tf.float32), training=True).numpy()
        np.testing.assert_allclose(got, y, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(bn.mean.numpy(), run_mean, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(bn.std.numpy(), run_std, atol=1e-5, rtol=1e-5)
    x = RNG.normal(size=shape)
    expected = (x - run_mean) * gamma / (run_std + eps) + beta
    got = bn(tf.constant(x, tf.float32), training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(bn.std.numpy(), run_std, atol=1e-5, rtol=1e-5)


def test_batchnorm_variables_and_constant_channel():
    bn = BatchNorm(3, alpha=0.1, name="bn")
    assert {v.name for v in bn.trainable_variables} == {"bn/gamma:0", "bn/beta:0"}
    assert {v.name for v in bn.variables} >= {"bn/mean:0", "bn/std:0"}
    x = np.stack([RNG.normal(size=10), np.full(10, 2.5), RNG.normal(size=10)], axis=1)
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(bn(x, training=True)))
    assert np.all(np.isfinite(tape.gradient(loss, x).numpy()))


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_bias_gets_no_gradient_through_batchnorm(kind):
    if kind == "dense":
        layer, x = BinaryDense(10, 5, mode="det", h=1.0, lr_scale=1.0), _x(32, 10)
    else:
        layer, x = BinaryConv2D(3, 5, mode="det", h=1.0, lr_scale=1.0), _x(4, 6, 6, 3)
    layer.b.assign(RNG.normal(size=5).astype(np.float32))
    bn = BatchNorm(5, alpha=0.15)
    with tf.GradientTape(persistent=True) as tape:
        z = layer(x, training=True)
        loss = tf.reduce_sum(tf.sin(3.0 * bn(z, training=True)))
    grad_b = tape.gradient(loss, layer.b).numpy()
    grad_z = tape.gradient(loss, z).numpy()
    scale = np.abs(grad_z).reshape(-1, 5).sum(axis=0)
    assert np.all(np.abs(grad_b) <= 1e-6 * scale)
    assert np.all(scale > 0)


def test_max_pool2_and_relu():
    x = _x(2, 6, 4, 3)
    expected = x.numpy().reshape(2, 3, 2, 2, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(max_pool2(x).numpy(), expected)
    np.testing.assert_array_equal(relu(x).numpy(), np.maximum(x.numpy(), 0))


def test_max_pool2_odd_sizes_and_gradient():
    x = tf.constant(np.arange(2 * 5 * 7 * 3, dtype=np.float32).reshape(2, 5, 7, 3) % 11)
    expected = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
    np.testing.assert_array_equal(max_pool2(x).numpy(), expected.numpy())
    x = tf.constant([[[[1.0], [4.0]], [[3.0], [2.0]]]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = max_pool2(x)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy()[0, :, :, 0], [[0, 1], [0, 0]])


@pytest.mark.slow
def test_a_conv_training_step_compiles_with_xla_under_op_determinism():
    """`bctrain train` enables op determinism; XLA refuses tf.nn.max_pool2d's gradient then."""
    import subprocess
    import sys
    code = """
import tensorflow as tf
from bctrain.config import with_overrides
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step
from bctrain.step.plan import REFERENCE
tf.config.experimental.enable_op_determinism()
tf.random.set_seed(0)
cfg = with_overrides("cifar10", conv=(4, 4), pool=(0, 1), hidden=(8,), jit=True)
net = Net(cfg, seed=1)
opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start)
step = make_train_step(net, opt, REFERENCE)
y = -tf.ones([4, 10]) + 2 * tf.one_hot([1, 2, 3, 4], 10)
print(float(step(tf.random.normal([4, 32, 32, 3]), y)[0]))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# -- BinaryNet: sign after BatchNorm, dropout (PAPER.md §10) ----------------------------------------

def _near_tie_bn(n_units=64, n_rows=400, seed=0):
    """A BatchNorm at inference and integer inputs, half of whose units have beta set so that some
    input lands exactly on, or one float32 step beside, BN's zero."""
    rng = np.random.default_rng(seed)
    bn = BatchNorm(n_units, alpha=0.1)
    gamma = rng.normal(0, 1, n_units).astype(np.float32)
    gamma[:3] = [0.0, -0.0, -1.5]
    mean = rng.normal(0, 5, n_units).astype(np.float32)
    std = rng.uniform(0.5, 9, n_units).astype(np.float32)
    x = rng.integers(-30, 31, (n_rows, n_units)).astype(np.float32)
    s = gamma / (std + np.float32(1e-4))
    beta = rng.normal(0, 2, n_units).astype(np.float32)
    tie = -((x[0] - mean) * s)
    beta[n_units // 2:] = (tie + rng.integers(-1, 2, n_units) * np.spacing(tie))[n_units // 2:]
    for var, value in ((bn.gamma, gamma), (bn.beta, beta), (bn.mean, mean), (bn.std, std)):
        var.assign(value)
    return bn, x, ((x - mean) * s + beta >= 0)  # NumPy float32, TensorFlow's order: the oracle


def test_sign_after_batchnorm_at_inference_is_numpy_s_decision_eagerly_and_under_xla():
    bn, x, oracle = _near_tie_bn()
    want = np.where(oracle, 1.0, -1.0)
    eager = bn.sign(tf.constant(x), training=False).numpy()
    xla = tf.function(lambda v: bn.sign(v, training=False), jit_compile=True)(tf.constant(x)).numpy()
    np.testing.assert_array_equal(eager, want)
    np.testing.assert_array_equal(xla, want)
    assert all(len(np.unique(eager[:, j])) == 1 for j in (0, 1))  # gamma = ±0: a constant unit
    # the sign of the BatchNorm output itself, in TensorFlow's kernels, decides alike
    np.testing.assert_array_equal(np.where(bn(tf.constant(x), training=False).numpy() >= 0, 1.0, -1.0), want)
    # control: XLA contracts BatchNorm's output into an FMA, which decides some of these ties otherwise
    contracted = tf.function(lambda v: bn(v, training=False) >= 0, jit_compile=True)(tf.constant(x)).numpy()
    assert np.any(contracted != oracle)


def test_sign_after_batchnorm_in_training_is_sign_ste_of_the_batchnorm_output():
    from bctrain.paper.binarize import sign_ste
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(0, 3, (50, 8)).astype(np.float32))
    a, b = BatchNorm(8, alpha=0.1), BatchNorm(8, alpha=0.1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        got, want = a.sign(x, training=True), sign_ste(b(x, training=True))
        loss_got, loss_want = tf.reduce_sum(got * tf.range(8.0)), tf.reduce_sum(want * tf.range(8.0))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(tape.gradient(loss_got, x).numpy(), tape.gradient(loss_want, x).numpy())
    np.testing.assert_array_equal(a.mean.numpy(), b.mean.numpy())


@pytest.mark.parametrize("p, scale", [(0.2, 1.25), (0.5, 2.0)])
def test_dropout_keeps_one_minus_p_and_scales_exactly(p, scale):
    from bctrain.paper.layers import dropout, dropout_keep
    keep = dropout_keep(tf.random.Generator.from_seed(3), [400, 250], p)
    x = tf.constant(np.random.default_rng(2).choice([-1.0, 1.0], (400, 250)).astype(np.float32))
    y = dropout(x, keep, p).numpy()
    kept = keep.numpy()
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_array_equal(y, np.where(kept, x.numpy() * scale, 0.0))
