"""Weight binarization with the identity straight-through estimator (paper §1-§3), and BinaryNet's
activation binarization (paper §10).

    hard_sigmoid(x) = clip((x + 1) / 2, 0, 1)
    det:    wb = +h if w >= 0 else -h                      (sign(0) = +1)
    stoch:  wb = +h with probability hard_sigmoid(w / h), else -h
    none:   wb = w                                          (float baseline)

The backward pass uses d wb / d w = 1 (no masking at |w| >= 1): the gradient of the loss with
respect to `wb` is used unchanged as the gradient of `w`. The forward value is exactly +-h.

Stochastic draws use 16 random bits per weight, two draws per 32 generated bits: the drawn
uniform lies on the grid k / 65536, so P(+1) is hard_sigmoid(w / h) rounded up to a multiple of
1/65536. Random-bit generation is a large part of a stochastic step (10 M draws per step for the
MNIST MLP), so it is halved this way (docs/BENCHMARKS.md).

At test time (training=False) deterministic layers use h*sign(w) and stochastic layers use the
real `w` (how the paper's stochastic numbers were obtained, §2): `eval_mode` "binary" or "real"
chooses, for either mode. The Glorot scale of §3 is `bctrain.paper.arch.glorot_h`.

Activations (BinaryNet, arXiv:1602.02830; `sign_ste`): forward sign_pm1(x), so sign(0) = +1 as for
the weights; backward g·1{|x| <= 1}, the gradient of hard_tanh, both ends included. That is the
gradient of the authors' binary_tanh_unit, 2·round(hard_sigmoid(x)) − 1 with an identity gradient
through round: Theano's clip passes the gradient where min <= x <= max (Clip.grad,
theano/scalar/basic.py), so at |x| = 1 it is g, not 0; larq's ste_sign also masks with |x| <= 1.
"""
import tensorflow as tf

from bctrain import choices


def hard_sigmoid(x):
    """clip((x + 1) / 2, 0, 1): the probability of +1 (paper §2; not Keras' 0.2x + 0.5)."""
    return tf.clip_by_value((x + 1.0) / 2.0, 0.0, 1.0)


def sign_pm1(x):
    """+1 where x >= 0, else -1 (so sign(0) = +1), in the dtype of x."""
    x = tf.convert_to_tensor(x)
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))


@tf.custom_gradient
def sign_ste(x):
    """sign_pm1(x) forward; backward g·1{|x| <= 1} (BinaryNet's straight-through estimator, §10)."""
    def grad(dy):
        return dy * tf.cast(tf.abs(x) <= 1, dy.dtype)
    return sign_pm1(x), grad


@tf.custom_gradient
def _straight_through(w, wb):
    """Forward `wb` exactly; backward the incoming gradient goes to `w` unchanged."""
    def grad(dy):
        return dy, None
    return tf.identity(wb), grad


def uniform16(gen, shape):
    """Integers uniform in [0, 65536) of `shape` (int32), two per 32-bit word drawn from `gen`."""
    n = tf.reduce_prod(shape)
    words = gen.uniform_full_int([(n + 1) // 2], dtype=tf.uint32)
    low = tf.bitwise.bitwise_and(words, tf.constant(0xFFFF, tf.uint32))
    high = tf.bitwise.right_shift(words, tf.constant(16, tf.uint32))
    halves = tf.reshape(tf.stack([low, high], axis=1), [-1])[:n]
    return tf.reshape(tf.cast(halves, tf.int32), shape)


def _check_mode(mode, eval_mode):
    choices.check("binarization mode", mode, choices.BINARIZE)
    choices.check("eval_mode", eval_mode, choices.EVAL_MODES)


def binarize(w, mode, h, training, gen=None, eval_mode="binary"):
    """The weights a layer computes with: wb in {-h, +h} (or w itself), identity gradient to w.

    `training` is a Python bool. Mode "stoch" in training draws `uniform16(gen, shape(w))` from the
    given `tf.random.Generator`: an independent draw per weight on every call.
    """
    _check_mode(mode, eval_mode)
    w = tf.convert_to_tensor(w)
    if not choices.BINARIZE[mode].binary or (not training and eval_mode == "real"):
        return w
    h = tf.cast(h, w.dtype)
    if training and mode == "stoch":
        if gen is None:
            raise ValueError("binarization mode 'stoch' needs a tf.random.Generator (gen=None given)")
        # u / 65536 < p  <=>  u < p * 65536 (exact: p * 65536 is a float32 multiplication by 2^16)
        up = tf.cast(uniform16(gen, tf.shape(w)), w.dtype) < hard_sigmoid(w / h) * 65536.0
    else:
        up = w >= 0
    wb = tf.where(up, h, -h)
    return _straight_through(w, wb)
