"""bctrain.paper.optim: LR schedule (§5, §8), scaled and clipped binary group, Adam/SGD vs NumPy (§1)."""
import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.models import BinaryParam
from bctrain.paper.optim import Optimizer, lr_at_epoch, lr_decay

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("start, end, epochs, expected", [
    (1e-3, 3e-6, 250, 0.977031), (3e-3, 2e-6, 500, 0.985480),
    (1e-2, 3e-6, 200, 0.960253), (3.0, 0.1, 1000, 0.996605),
])
def test_lr_decay_paper_values(start, end, epochs, expected):
    assert lr_decay(start, end, epochs) == pytest.approx(expected, abs=1e-6)
    assert lr_at_epoch(start, end, epochs, 0) == start
    assert lr_at_epoch(start, end, epochs, epochs) == pytest.approx(end, rel=1e-9)


def test_lr_decay_rejects_bad_input():
    with pytest.raises(ValueError, match="learning rates"):
        lr_decay(0.0, 1e-3, 10)
    with pytest.raises(ValueError, match="epochs"):
        lr_decay(1e-3, 1e-4, 0)


def _bp(w, lr_scale, h, layer=0):
    return BinaryParam(layer, w, lr_scale, h)


def _var(value, dtype=tf.float32):
    return tf.Variable(np.asarray(value), dtype=dtype)


def _grads(shapes, steps, scale=1.0):
    return [[RNG.normal(scale=scale, size=s) for s in shapes] for _ in range(steps)]


def _numpy_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, scale=1.0, h=None):
    """Lasagne's adam (the authors' code) with the BinaryConnect scale-and-clip of the step."""
    p, m, v = np.array(p, np.float64), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        prop = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
        p = p + scale * (prop - p)
        p = p if h is None else np.clip(p, -h, h)
    return p


def _run(kind, binary, other, grads, lr, **kw):
    """Apply `grads` (a list of per-step lists, binary first) with a fresh optimizer; final values."""
    opt = Optimizer(kind, binary, other, lr=lr, **kw)
    for step in grads:
        opt.apply([tf.constant(g, w.dtype) for g, w in zip(step, opt.trained)])
    return opt


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_scaled_step_is_exactly_scale_times_plain_step(kind):
    start = RNG.uniform(-1, 1, size=(6, 5))
    grads = _grads([(6, 5)], 3)
    deltas = []
    for scale in (1.0, 2.0):
        w = _var(start, tf.float64)
        _run(kind, [_bp(w, scale, 10.0)], [], grads, lr=0.01)
        deltas.append(w.numpy() - start)
    assert np.all(np.abs(deltas[0]) > 1e-4)
    np.testing.assert_allclose(deltas[1], 2.0 * deltas[0], rtol=1e-6)


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_binary_group_is_clipped_and_other_group_is_free(kind):
    h = 0.5
    w = _var(RNG.uniform(-h, h, size=(20, 8)))
    b = _var(np.zeros(8))
    gamma = _var(np.full(8, 5.0))
    opt = Optimizer(kind, [_bp(w, 30.0, h)], [b, gamma], lr=0.1)
    for _ in range(5):
        opt.apply([tf.constant(RNG.normal(size=(20, 8)), tf.float32), tf.ones(8), -tf.ones(8)])
        assert np.max(np.abs(w.numpy())) <= np.float32(h)
    assert np.mean(np.abs(w.numpy()) == np.float32(h)) > 0.5
    assert np.all(gamma.numpy() > 5.4) and np.all(b.numpy() < -0.4)


def test_adam_matches_numpy_for_three_steps():
    h, scale, lr = 0.8, 1.7, 0.003
    shapes = [(7, 4), (4,), (4,)]
    start = [RNG.uniform(-h, h, size=shapes[0]), RNG.normal(size=4), np.full(4, 5.0)]
    grads = _grads(shapes, 3)
    w, b, gamma = (_var(s) for s in start)
    opt = _run("adam", [_bp(w, scale, h)], [b, gamma], grads, lr=lr)
    assert int(opt.iterations.numpy()) == 3
    expected_w = _numpy_adam(start[0], [g[0] for g in grads], lr, scale=scale, h=h)
    np.testing.assert_allclose(w.numpy(), expected_w, rtol=1e-5)
    for var, i in ((b, 1), (gamma, 2)):
        expected = _numpy_adam(start[i], [g[i] for g in grads], lr)
        np.testing.assert_allclose(var.numpy(), expected, rtol=1e-5)


def test_sgd_is_w_minus_lr_g():
    h, scale, lr = 1.0, 3.0, 0.05
    start = [RNG.uniform(-h, h, size=(5, 3)), RNG.normal(size=3)]
    grads = _grads([(5, 3), (3,)], 1, scale=4.0)
    w, b = _var(start[0]), _var(start[1])
    _run("sgd", [_bp(w, scale, h)], [b], grads, lr=lr)
    expected_w = np.clip(start[0] - scale * lr * grads[0][0], -h, h)
    np.testing.assert_allclose(w.numpy(), expected_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.numpy(), start[1] - lr * grads[0][1], rtol=1e-6, atol=1e-7)


def test_xla_step_matches_eager_and_follows_lr_variable():
    start = RNG.uniform(-1, 1, size=(16, 8))
    grads = _grads([(16, 8), (8,)], 2)
    results = []
    for jit in (None, True):
        w, b = _var(start), _var(np.zeros(8))
        lr = tf.Variable(0.01, trainable=False)
        opt = Optimizer("adam", [_bp(w, 2.0, 1.0)], [b], lr=lr)
        apply = opt.apply if jit is None else tf.function(opt.apply, jit_compile=True)
        for i, (gw, gb) in enumerate(grads):
            lr.assign(0.01 * 0.5 ** i)
            apply([tf.constant(gw, tf.float32), tf.constant(gb, tf.float32)])
        results.append((w.numpy(), b.numpy()))
    for eager, xla in zip(*results):
        np.testing.assert_allclose(xla, eager, rtol=1e-5, atol=1e-7)


def test_state_round_trips_through_a_checkpoint(tmp_path):
    w = _var(RNG.uniform(-1, 1, size=(3, 2)))
    opt = Optimizer("adam", [_bp(w, 1.0, 1.0)], [], lr=0.01)
    opt.apply([tf.ones((3, 2))])
    path = tf.train.Checkpoint(optimizer=opt, w=w).save(str(tmp_path / "ckpt"))  # w: the network's
    saved = [v.numpy() for v in (opt.m[0], opt.v[0], w)]
    opt.apply([tf.ones((3, 2))])
    tf.train.Checkpoint(optimizer=opt, w=w).restore(path).assert_consumed()
    assert int(opt.iterations.numpy()) == 1
    for var, value in zip((opt.m[0], opt.v[0], w), saved):
        np.testing.assert_array_equal(var.numpy(), value)


def test_bad_arguments():
    w = _var(np.zeros(3))
    with pytest.raises(ValueError, match="optimizer 'momentum'"):
        Optimizer("momentum", [_bp(w, 1.0, 1.0)], [], lr=0.1)
    opt = Optimizer("sgd", [_bp(w, 1.0, 1.0)], [], lr=0.1)
    with pytest.raises(ValueError, match="no gradient"):
        opt.apply([None])
    with pytest.raises(ValueError, match="1 parameters"):
        opt.apply([])
