"""Layers of a BinaryConnect network as tf.Modules over tf.Variables (paper §1, §4).

BinaryDense / BinaryConv2D keep real latent weights `w` (initialised U(-h, h), §3) and a real bias
`b`, and compute with wb = binarize(w) (see `bctrain.binarize`):
    dense: y = x @ wb + b             x [N, n_in], w [n_in, n_out]
    conv:  y = conv2d(x, wb) + b      NHWC, w HWIO [k, k, c_in, c_out], stride 1, padding "SAME"

BatchNorm is the authors' layer (batch_norm.py of their code), not Ioffe & Szegedy's:
    training:  y = (x - mu) * gamma / (sigma + eps) + beta,  mu, sigma = batch mean and biased std
               over every axis but the last; run <- (1 - alpha) * run + alpha * batch for mean, std
    inference: the same with the running mean and running std.
eps is added to the std, not to the variance, and the running average is of the std.
"""
import tensorflow as tf

from bctrain.binarize import MODES, binarize

# sigma = sqrt(var) has an infinite derivative at var = 0, which turns the (zero) gradient of a
# constant channel into NaN. Flooring var here keeps the gradient finite; the forward value
# differs from sqrt(var) only when sigma < 1e-15, far below eps = 1e-4 in float32.
_VAR_FLOOR = 1e-30


def _check_binary_args(mode, h, lr_scale):
    if mode not in MODES:
        raise ValueError(f"binarization mode {mode!r}: expected one of {', '.join(MODES)}")
    if h is None or not h > 0:
        raise ValueError(f"binarization scale h={h!r}: expected a positive number")
    if lr_scale is None or not lr_scale > 0:
        raise ValueError(f"lr_scale={lr_scale!r}: expected a positive number")


def _uniform_init(shape, limit, init_gen, seed):
    """U(-limit, limit) from `init_gen`, or from a generator seeded with `seed` (deterministic)."""
    if init_gen is None:
        init_gen = tf.random.Generator.from_seed(seed)
    return init_gen.uniform(shape, minval=-limit, maxval=limit, dtype=tf.float32)


class _BinaryLinear(tf.Module):
    """Latent weights `w` of a given shape and a bias `b` [n_out]; subclasses say how to apply wb.

    `init_limit` defaults to h (U(-H, H), paper §3); a float baseline (mode "none") is given the
    Glorot-uniform limit instead, as the authors' layers fall back to Lasagne's default init.
    """

    def __init__(self, w_shape, mode, h, lr_scale, gen, name, init_gen, seed, init_limit):
        super().__init__(name=name)
        _check_binary_args(mode, h, lr_scale)
        self.n_in, self.n_out = int(w_shape[-2]), int(w_shape[-1])
        self.mode, self.h, self.lr_scale = mode, float(h), float(lr_scale)
        self.gen = gen
        limit = self.h if init_limit is None else float(init_limit)
        with self.name_scope:
            self.w = tf.Variable(_uniform_init(list(w_shape), limit, init_gen, seed), name="w")
            self.b = tf.Variable(tf.zeros([self.n_out]), name="b")

    @property
    def is_binary(self) -> bool:
        return self.mode != "none"

    def __call__(self, x, training, eval_mode="binary"):
        wb = binarize(self.w, self.mode, self.h, training, gen=self.gen, eval_mode=eval_mode)
        return self._apply(x, wb) + self.b


class BinaryDense(_BinaryLinear):
    """y = x @ binarize(w) + b, with latent w [n_in, n_out] ~ U(-h, h) and b = 0."""

    def __init__(self, n_in, n_out, mode, h, lr_scale, gen=None, name=None, *,
                 init_gen=None, seed=0, init_limit=None):
        super().__init__([n_in, n_out], mode, h, lr_scale, gen, name, init_gen, seed, init_limit)

    def _apply(self, x, wb):
        return tf.matmul(x, wb)


class BinaryConv2D(_BinaryLinear):
    """y = conv2d(x, binarize(w)) + b: NHWC, w HWIO [k, k, c_in, c_out] ~ U(-h, h), stride 1, SAME.

    `mode`, `h` and `lr_scale` are required; they follow `kernel` so that it can default to 3.
    """

    def __init__(self, c_in, c_out, kernel=3, mode=None, h=None, lr_scale=None, gen=None,
                 name=None, *, init_gen=None, seed=0, init_limit=None):
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), int(kernel)
        super().__init__([self.kernel, self.kernel, c_in, c_out], mode, h, lr_scale, gen, name,
                         init_gen, seed, init_limit)

    def _apply(self, x, wb):
        return tf.nn.conv2d(x, wb, strides=1, padding="SAME")


class BatchNorm(tf.Module):
    """The authors' BatchNorm over the last axis: eps on the std, running mean and running std."""

    def __init__(self, n, alpha, eps=1e-4, name=None):
        super().__init__(name=name)
        if not 0 < alpha <= 1:
            raise ValueError(f"BatchNorm alpha={alpha!r}: expected a number in (0, 1]")
        self.n, self.alpha, self.eps = int(n), float(alpha), float(eps)
        with self.name_scope:
            self.gamma = tf.Variable(tf.ones([self.n]), name="gamma")
            self.beta = tf.Variable(tf.zeros([self.n]), name="beta")
            self.mean = tf.Variable(tf.zeros([self.n]), trainable=False, name="mean")
            self.std = tf.Variable(tf.ones([self.n]), trainable=False, name="std")

    def __call__(self, x, training):
        if training:
            axes = list(range(len(x.shape) - 1))
            mean = tf.reduce_mean(x, axis=axes)
            var = tf.reduce_mean(tf.square(x - mean), axis=axes)
            std = tf.sqrt(tf.maximum(var, _VAR_FLOOR))
            a = self.alpha
            self.mean.assign((1.0 - a) * self.mean + a * tf.stop_gradient(mean))
            self.std.assign((1.0 - a) * self.std + a * tf.stop_gradient(std))
        else:
            mean, std = self.mean, self.std
        return (x - mean) * (self.gamma / (std + self.eps)) + self.beta


def max_pool2(x):
    """2x2 max-pool, stride 2, padding "VALID" (NHWC; an odd last row or column is dropped).

    Written as a reshape and a max over the 2x2 windows, not tf.nn.max_pool2d: under TensorFlow's op
    determinism (which `bctrain train` turns on) XLA refuses to compile MaxPool's gradient, on every
    device. The values are the same; the gradient of a window whose maximum is tied is split among
    the tied inputs (MaxPoolGrad gives it to the first, Theano's to each), which real-valued conv
    outputs make a measure-zero case.
    """
    height, width = x.shape[1] // 2, x.shape[2] // 2
    x = x[:, :2 * height, :2 * width, :]
    return tf.reduce_max(tf.reshape(x, [-1, height, 2, width, 2, x.shape[3]]), axis=[2, 4])


def relu(x):
    return tf.nn.relu(x)
