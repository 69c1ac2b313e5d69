"""Mixed precision (bctrain.step.precision): exact ±1 product weights, float32 state, a learning step."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from bctrain.config import with_overrides
from bctrain.paper.layers import BinaryConv2D, BinaryDense
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.precision import PRECISIONS
from bctrain.step.build import make_train_step
from bctrain.step.evaluate import make_eval_step
from bctrain.step.plan import choose_plan

RNG = np.random.default_rng(0)
BF16_EPS = 2.0 ** -8  # spacing of bfloat16 numbers in [1, 2): a rounding is at most half of it


def _bf16(a):
    return tf.cast(tf.cast(a, tf.bfloat16), tf.float64).numpy()


def test_the_table_names_the_config_choices():
    assert list(PRECISIONS) == ["float32", "mixed_bfloat16", "mixed_float16"]
    assert [p.loss_scaling for p in PRECISIONS.values()] == [False, False, True]
    with pytest.raises(ValueError, match="precision"):
        with_overrides("mnist", precision="float8")


@pytest.mark.parametrize("h", [1.0, 0.0383])
def test_bfloat16_dense_multiplies_by_exactly_pm1_and_scales_by_h(h):
    layer = BinaryDense(300, 9, mode="det", h=h, lr_scale=1.0, seed=1, compute_dtype="bfloat16")
    layer.b.assign(RNG.normal(size=9).astype(np.float32))
    wb = layer.product_weights(training=True)
    assert wb.dtype == tf.bfloat16 and layer.w.dtype == tf.float32
    np.testing.assert_array_equal(wb.numpy().astype(np.float32), np.where(layer.w.numpy() >= 0, 1.0, -1.0))
    x = RNG.normal(size=(16, 300)).astype(np.float32)
    y = layer(tf.constant(x), training=True)
    assert y.dtype == tf.float32
    xb = _bf16(x)
    exact = xb @ np.where(layer.w.numpy() >= 0, 1.0, -1.0)  # products of the rounded inputs
    # The products are exact (±1 times bfloat16). Their sum is rounded to bfloat16 once where the CPU
    # has a bfloat16 dot instruction; elsewhere (AMD Zen 3) oneDNN also rounds partial sums, so the
    # bound is one bfloat16 rounding of the sum of the terms' magnitudes (a wrong h is off by 1/h).
    bound = BF16_EPS * np.abs(xb).sum(axis=1, keepdims=True)
    assert np.all(np.abs((y.numpy() - layer.b.numpy()) / h - exact) <= bound)


def test_bfloat16_conv_and_stochastic_weights_are_pm1():
    gen = tf.random.Generator.from_seed(3)
    layer = BinaryConv2D(3, 4, mode="stoch", h=0.5, lr_scale=1.0, gen=gen, compute_dtype="bfloat16")
    wb = layer.product_weights(training=True).numpy().astype(np.float32)
    assert set(np.unique(wb)) == {-1.0, 1.0}
    assert layer(tf.constant(RNG.normal(size=(2, 5, 5, 3)), tf.float32), training=True).dtype == tf.float32


def _tiny(precision, **kw):
    return with_overrides("mnist", hidden=(64,), precision=precision, jit=False, **kw)


def _batch(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 784)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    x[np.arange(n), labels] += 4.0  # learnable: the label is written into the input
    return tf.constant(x), tf.constant(2 * np.eye(10, dtype=np.float32)[labels] - 1)


@pytest.mark.parametrize("precision, binarize, jit", [("mixed_bfloat16", "det", False),
                                                      pytest.param("mixed_bfloat16", "stoch", True,
                                                                   marks=pytest.mark.slow),
                                                      ("mixed_float16", "det", False)])
def test_a_few_mixed_steps_lower_the_loss_and_keep_float32_state(precision, binarize, jit):
    cfg = dataclasses.replace(_tiny(precision, binarize=binarize), jit=jit)
    net = Net(cfg, seed=1)
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=3e-3,
                    loss_scale=net.precision.loss_scaling)
    plan = choose_plan(dataclasses.replace(cfg, update_kernel="xla"), gpu=False)
    step = make_train_step(net, opt, plan)
    x, y_pm1 = _batch()
    losses = [float(step(x, y_pm1)[0]) for _ in range(12)]
    assert losses[-1] < 0.7 * losses[0], losses  # stoch on AMD Zen 3: 0.70 after 8 steps, 0.59 after 12
    assert int(opt.iterations) == 12
    assert all(v.dtype == tf.float32 for v in net.variables if v.dtype.is_floating)
    assert all(v.dtype == tf.float32 for v in opt.m + opt.v)
    assert all(np.abs(p.w.numpy()).max() <= p.h for p in net.binary_params())
    errors = int(make_eval_step(net, "binary", plan)(x, tf.argmax(y_pm1, axis=1)))
    assert errors < 100  # of 200: far from chance after the loss fell


def test_bfloat16_gradients_match_the_float32_step():
    """Against the float32 step as the oracle: one SGD step (update = -lr * lr_scale * g)."""
    x, y_pm1 = _batch()
    moved = {}
    for precision in ("float32", "mixed_bfloat16"):
        net = Net(_tiny(precision, optimizer="sgd"), seed=1)
        start = [p.w.numpy() for p in net.binary_params()]
        opt = Optimizer("sgd", net.binary_params(), net.other_params(), lr=1e-3)
        cfg = _tiny(precision, optimizer="sgd")
        make_train_step(net, opt, choose_plan(dataclasses.replace(cfg, update_kernel="xla"), gpu=False))(x, y_pm1)
        moved[precision] = [p.w.numpy() - s for p, s in zip(net.binary_params(), start)]
    for f32, bf16 in zip(moved["float32"], moved["mixed_bfloat16"]):
        assert np.linalg.norm(bf16 - f32) <= 0.02 * np.linalg.norm(f32)


def _conv_cfg(precision):
    return with_overrides("cifar10", input_shape=(12, 12, 3), conv=(8, 16), pool=(0, 1), hidden=(32,), h="glorot",
                          batch_size=20, precision=precision, optimizer="sgd", lr_start=1e-3, steps_per_call=1)


@pytest.mark.slow
@pytest.mark.parametrize("bf16_kernels", [False, True])  # whole step, split step
def test_bfloat16_conv_steps_match_the_float32_steps(bf16_kernels):
    """Three SGD steps of a conv net in mixed_bfloat16 against float32 as the oracle, both as a CPU
    without bfloat16 instructions runs them (the whole XLA step) and as one with them does (the split
    step, TensorFlow's bfloat16 kernels): the losses within 1 % (0.4 % measured), every layer's weights
    moved within 20 % (the norm of the difference of the moves against the float32 move; 3-7 % whole,
    5-14 % split, measured on AMD Zen 3). A conv kernel's gradient is a sum over the batch and the
    positions whose terms mostly cancel (BatchNorm follows every conv), so the 8-bit rounding of its
    operands shows some 10x larger in it than in an MLP's (2 %, above). h = Glorot's (not 1), so that
    a gradient not divided by h (a 16-bit product's weights are wb / h) is off by 3-10x."""
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(20, 12, 12, 3)).astype(np.float32))
    y_pm1 = tf.constant(2 * np.eye(10, dtype=np.float32)[rng.integers(0, 10, 20)] - 1)
    moved, losses, forms = {}, {}, {}
    for precision in ("float32", "mixed_bfloat16"):
        cfg = _conv_cfg(precision)
        net = Net(cfg, seed=1)
        start = [p.w.numpy() for p in net.binary_params()]
        opt = Optimizer("sgd", net.binary_params(), net.other_params(), lr=1e-3)
        plan = choose_plan(cfg, gpu=False, bf16_kernels=bf16_kernels)
        forms[precision] = plan.form
        step = make_train_step(net, opt, plan)
        losses[precision] = [float(step(x, y_pm1)[0]) for _ in range(3)]
        moved[precision] = [p.w.numpy() - s for p, s in zip(net.binary_params(), start)]
    assert forms["mixed_bfloat16"] == ("split" if bf16_kernels else "whole")
    np.testing.assert_allclose(losses["mixed_bfloat16"], losses["float32"], rtol=0.01)
    for f32, bf16 in zip(moved["float32"], moved["mixed_bfloat16"]):
        assert np.linalg.norm(bf16 - f32) <= 0.2 * np.linalg.norm(f32)


def test_float16_overflow_step_is_skipped_and_training_goes_on():
    cfg = _tiny("mixed_float16")
    net = Net(cfg, seed=1)
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=3e-3, loss_scale=True)
    plan = choose_plan(dataclasses.replace(cfg, update_kernel="xla"), gpu=False)
    step = make_train_step(net, opt, plan)
    x, y_pm1 = _batch()
    opt.loss_scale.scale.assign(2.0 ** 40)  # the scaled loss's gradients overflow float16 (max 65504)
    before = [v.numpy() for v in net.trainable_variables]
    step(x, y_pm1)
    assert int(opt.iterations) == 0 and float(opt.loss_scale.scale) == 2.0 ** 39
    for v, b in zip(net.trainable_variables, before):
        np.testing.assert_array_equal(v.numpy(), b)
    while int(opt.iterations) == 0:  # halving until the gradients fit, then the update is applied
        step(x, y_pm1)
    assert 1.0 <= float(opt.loss_scale.scale) < 2.0 ** 39
    assert any(not np.array_equal(v.numpy(), b) for v, b in zip(net.trainable_variables, before))
