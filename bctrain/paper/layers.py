"""Layers of a BinaryConnect network as tf.Modules over tf.Variables (paper §1, §4).

BinaryDense / BinaryConv2D keep real latent weights `w` (initialised U(-h, h), §3) and a real bias
`b`, and compute with wb = binarize(w) (see `bctrain.paper.binarize`):
    dense: y = x @ wb + b             x [N, n_in], w [n_in, n_out]
    conv:  y = conv2d(x, wb) + b      NHWC, w HWIO [k, k, c_in, c_out], stride 1, padding "SAME"

BatchNorm is the authors' layer (batch_norm.py of their code), not Ioffe & Szegedy's:
    training:  y = (x - mu) * gamma / (sigma + eps) + beta,  mu, sigma = batch mean and biased std
               over every axis but the last; run <- (1 - alpha) * run + alpha * batch for mean, std
    inference: the same with the running mean and running std.
eps is added to the std, not to the variance, and the running average is of the std.

BinaryNet's hidden blocks (PAPER.md §10) end in sign(BatchNorm(x)) (`BatchNorm.sign`): in training the
BatchNorm output through `sign_ste`; at inference the decision fl(fl(x − mean)·s) >= −beta, with
s = fl(gamma / fl(std + eps)). That is exactly the decision fl(fl(fl(x − mean)·s) + beta) >= 0 of
the BatchNorm output above (two float32 numbers add to a value >= 0 exactly when their exact sum is
>= 0: both are multiples of the smallest subnormal, so a negative exact sum rounds to a negative
number, never to −0; TensorFlow's flushing of subnormals aside), but it leaves XLA no multiply-add
to contract into an FMA, which decides ties otherwise: TensorFlow's kernels and an XLA-compiled
evaluation then decide alike, and bcexport.threshold folds the decision into exact thresholds.

Dropout (BinaryNet's MLP: input 0.2, hidden 0.5; Lasagne's DropoutLayer): in training, each value is
kept with probability 1 − p and scaled by 1 / (1 − p) (computed in float64, rounded once: 1.25 and 2
exactly for 0.2 and 0.5); at inference it is the identity. The keep masks come from a
tf.random.Generator the network owns and checkpoints (bctrain.paper.models).

Several replicas (bctrain.step.strategy): with `stats="global"` (the default) BatchNorm all-reduces the
batch statistics over the replicas, in two passes as one device computes them (sum and count, then
the sum of squared deviations), so it normalises over the whole global batch as the authors' layer
does; every replica then holds the same running averages (kept from the first replica). With
`stats="replica"` each replica normalises over its own rows and the running averages are the mean
of the replicas' ones.

Mixed precision (bctrain.step.precision): a binary layer given a 16-bit `compute_dtype` multiplies its
input, cast to that dtype, by wb / h (exactly ±1 in 16 bits) and returns h * product + b in
float32, so BatchNorm computes its statistics and running averages in float32 (always).
"""
import tensorflow as tf

from bctrain import choices
from bctrain.paper.binarize import binarize, sign_ste

# sigma = sqrt(var) has an infinite derivative at var = 0, which turns the (zero) gradient of a
# constant channel into NaN. Flooring var here keeps the gradient finite; the forward value
# differs from sqrt(var) only when sigma < 1e-15, far below eps = 1e-4 in float32.
_VAR_FLOOR = 1e-30


def _check_binary_args(mode, h, lr_scale):
    choices.check("binarization mode", mode, choices.BINARIZE)
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

    def __init__(self, w_shape, mode, h, lr_scale, gen, name, init_gen, seed, init_limit, compute_dtype):
        super().__init__(name=name)
        _check_binary_args(mode, h, lr_scale)
        self.n_in, self.n_out = int(w_shape[-2]), int(w_shape[-1])
        self.mode, self.h, self.lr_scale = mode, float(h), float(lr_scale)
        self.gen = gen
        self.compute_dtype = tf.as_dtype(compute_dtype)
        limit = self.h if init_limit is None else float(init_limit)
        with self.name_scope:
            self.w = tf.Variable(_uniform_init(list(w_shape), limit, init_gen, seed), name="w")
            self.b = tf.Variable(tf.zeros([self.n_out]), name="b")

    @property
    def is_binary(self) -> bool:
        return choices.BINARIZE[self.mode].binary

    def product_weights(self, training, eval_mode="binary"):
        """The weights the product uses: wb in float32, or wb / h in a 16-bit compute dtype."""
        with tf.name_scope("binarize"):  # named for profiles (benchmarks.profile_step)
            wb = binarize(self.w, self.mode, self.h, training, gen=self.gen, eval_mode=eval_mode)
            if self.compute_dtype == tf.float32:
                return wb
            return tf.cast(wb / self.h, self.compute_dtype)  # h / h is exactly 1 in IEEE arithmetic

    @property
    def product_divisor(self) -> float:
        """d of the product weights wb / d: h for a 16-bit product, 1 in float32."""
        return 1.0 if self.compute_dtype == tf.float32 else self.h

    def latent_gradient(self, g):
        """dL/dw from dL/d(product weights): the identity STE, undoing the 1 / h of a 16-bit product."""
        if self.compute_dtype == tf.float32:
            return g
        return tf.cast(g, tf.float32) / self.h

    def apply(self, x, wb):
        """The layer's float32 output for input `x` and product weights `wb` (`product_weights`)."""
        if self.compute_dtype == tf.float32:
            return self._apply(x, wb) + self.b
        y = self._apply(tf.cast(x, self.compute_dtype), wb)
        return tf.cast(y, tf.float32) * self.h + self.b

    def __call__(self, x, training, eval_mode="binary"):
        return self.apply(x, self.product_weights(training, eval_mode))


class BinaryDense(_BinaryLinear):
    """y = x @ binarize(w) + b, with latent w [n_in, n_out] ~ U(-h, h) and b = 0."""

    def __init__(self, n_in, n_out, mode, h, lr_scale, gen=None, name=None, *,
                 init_gen=None, seed=0, init_limit=None, compute_dtype="float32"):
        super().__init__([n_in, n_out], mode, h, lr_scale, gen, name, init_gen, seed, init_limit,
                         compute_dtype)

    def _apply(self, x, wb):
        return tf.matmul(x, wb)


class BinaryConv2D(_BinaryLinear):
    """y = conv2d(x, binarize(w)) + b: NHWC, w HWIO [k, k, c_in, c_out] ~ U(-h, h), stride 1, SAME.

    `mode`, `h` and `lr_scale` are required; they follow `kernel` so that it can default to 3.
    """

    def __init__(self, c_in, c_out, kernel=3, mode=None, h=None, lr_scale=None, gen=None,
                 name=None, *, init_gen=None, seed=0, init_limit=None, compute_dtype="float32"):
        self.c_in, self.c_out, self.kernel = int(c_in), int(c_out), int(kernel)
        super().__init__([self.kernel, self.kernel, c_in, c_out], mode, h, lr_scale, gen, name,
                         init_gen, seed, init_limit, compute_dtype)

    def _apply(self, x, wb):
        return tf.nn.conv2d(x, wb, strides=1, padding="SAME")


# How the replicas' running averages combine: equal everywhere (global statistics), or averaged.
_RUNNING_AGGREGATION = {"global": tf.VariableAggregation.ONLY_FIRST_REPLICA, "replica": tf.VariableAggregation.MEAN}


class BatchNorm(tf.Module):
    """The authors' BatchNorm over the last axis: eps on the std, running mean and running std."""

    def __init__(self, n, alpha, eps=1e-4, name=None, stats="global"):
        super().__init__(name=name)
        if not 0 < alpha <= 1:
            raise ValueError(f"BatchNorm alpha={alpha!r}: expected a number in (0, 1]")
        choices.check("BatchNorm stats", stats, choices.BN_STATS)
        self.n, self.alpha, self.eps, self.stats = int(n), float(alpha), float(eps), stats
        aggregation = _RUNNING_AGGREGATION[stats]
        with self.name_scope:
            self.gamma = tf.Variable(tf.ones([self.n]), name="gamma")
            self.beta = tf.Variable(tf.zeros([self.n]), name="beta")
            self.mean = tf.Variable(tf.zeros([self.n]), trainable=False, name="mean", aggregation=aggregation)
            self.std = tf.Variable(tf.ones([self.n]), trainable=False, name="std", aggregation=aggregation)

    def _moments(self, x):
        """Batch mean and biased variance per channel, over every replica's rows if `stats` is global."""
        axes = list(range(len(x.shape) - 1))
        ctx = tf.distribute.get_replica_context()
        if self.stats == "replica" or ctx is None or ctx.num_replicas_in_sync == 1:
            mean = tf.reduce_mean(x, axis=axes)
            return mean, tf.reduce_mean(tf.square(x - mean), axis=axes)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
        total, count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [tf.reduce_sum(x, axis=axes), count])
        mean = total / count
        return mean, ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(tf.square(x - mean), axis=axes)) / count

    def __call__(self, x, training):
        if training:
            mean, var = self._moments(x)
            std = tf.sqrt(tf.maximum(var, _VAR_FLOOR))
            a = self.alpha
            self.mean.assign((1.0 - a) * self.mean + a * tf.stop_gradient(mean))
            self.std.assign((1.0 - a) * self.std + a * tf.stop_gradient(std))
        else:
            mean, std = self.mean, self.std
        return (x - mean) * (self.gamma / (std + self.eps)) + self.beta

    def sign(self, x, training):
        """sign(BatchNorm(x)), sign(0) = +1: through `sign_ste` in training; at inference the same
        decision in a form XLA cannot contract (module docstring)."""
        if training:
            return sign_ste(self(x, training=True))
        scaled = (x - self.mean) * (self.gamma / (self.std + self.eps))
        # sign_pm1(scaled + beta), decided without the addition (module docstring)
        return tf.where(scaled >= -self.beta, tf.ones_like(scaled), -tf.ones_like(scaled))


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


def dropout_keep(gen, shape, p):
    """Keep masks (bool, `shape`) of dropout probability p, drawn from the tf.random.Generator `gen`."""
    return gen.uniform(shape, dtype=tf.float32) >= p


def dropout(x, keep, p):
    """x / (1 − p) where `keep`, else 0 (module docstring); the scale is rounded once to x's dtype."""
    return tf.where(keep, x * tf.cast(1.0 / (1.0 - p), x.dtype), tf.zeros_like(x))
