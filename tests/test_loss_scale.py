"""bctrain.step.loss_scale: dynamic loss scaling (halve and skip on overflow, double after a run of good steps)."""
import numpy as np
import tensorflow as tf

from bctrain.step.loss_scale import LossScale
from bctrain.paper.models import BinaryParam
from bctrain.paper.optim import Optimizer


def test_scale_halves_on_overflow_and_doubles_after_the_growth_interval():
    ls = LossScale(initial=8.0, growth_interval=3)
    grads, finite = ls.unscale([tf.constant([16.0, np.inf])])
    assert not bool(finite)
    ls.update(finite)
    assert float(ls.scale) == 4.0 and int(ls.good_steps) == 0
    for expected_scale, expected_good in ((4.0, 1), (4.0, 2), (8.0, 0)):
        grads, finite = ls.unscale([tf.constant([8.0, -2.0], tf.float16)])
        assert bool(finite) and grads[0].dtype == tf.float32
        np.testing.assert_array_equal(grads[0].numpy(), np.array([8.0, -2.0]) / float(ls.scale))
        ls.update(finite)
        assert (float(ls.scale), int(ls.good_steps)) == (expected_scale, expected_good)
    assert float(ls.scale_loss(tf.constant(0.5))) == 4.0


def test_scale_never_drops_below_one():
    ls = LossScale(initial=1.0)
    ls.update(tf.constant(False))
    assert float(ls.scale) == 1.0


def test_optimizer_skips_a_non_finite_step_entirely():
    w = tf.Variable([0.5, -0.5])
    b = tf.Variable([1.0])
    opt = Optimizer("adam", [BinaryParam(0, w, 2.0, 1.0)], [b], lr=0.1, loss_scale=True)
    scale = float(opt.loss_scale.scale)
    apply = tf.function(opt.apply, jit_compile=True)
    apply([tf.constant([np.inf, 1.0]), tf.constant([1.0])])
    np.testing.assert_array_equal(w.numpy(), [0.5, -0.5])
    np.testing.assert_array_equal(b.numpy(), [1.0])
    assert int(opt.iterations) == 0 and float(opt.loss_scale.scale) == scale / 2
    apply([tf.constant([scale, -scale]), tf.constant([scale])])  # gradients of the scaled loss
    assert int(opt.iterations) == 1
    # Adam's first step is lr * g / |g| (up to eps): lr_scale 2 for w, 1 for b.
    np.testing.assert_allclose(w.numpy(), [0.5 - 0.2, -0.5 + 0.2], rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), [0.9], rtol=1e-6)
