"""bcexport.threshold: BatchNorm + sign folded into one comparison per unit, against brute force
over every reachable pre-activation and against TensorFlow's own decision (PAPER.md §10)."""
import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.layers import BatchNorm
from bcexport.threshold import BatchNormParams, fold, fold_binary, fold_real, tap_sums

EPS = 1e-4


def _layer(n, fan_in, h=1.0, seed=0) -> BatchNormParams:
    """Random BatchNorm values of n units whose real threshold lies within the reachable range; unit 0
    has gamma = 0, unit 1 gamma = −0, unit 2 a negative gamma; units from n/3 on are tied: beta puts
    BatchNorm's zero exactly on (or one float32 step beside) the value at an integer u0."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    b = rng.normal(0, 0.5, n).astype(f32) * (rng.random(n) < 0.5)
    mean = rng.normal(0, fan_in / 4, n).astype(f32)
    std = rng.uniform(0.3, fan_in / 2, n).astype(f32)
    gamma = rng.normal(0, 1, n).astype(f32)
    gamma[:3] = [0.0, -0.0, -abs(gamma[2]) - 0.1]
    beta = rng.normal(0, 1, n).astype(f32)
    u0 = rng.integers(-fan_in, fan_in + 1, n).astype(f32)
    s = gamma / (std + f32(EPS))
    p = ((u0 * f32(h) + b) - mean) * s
    tied = -p + rng.integers(-1, 2, n) * np.spacing(p)
    beta[n // 3:] = tied[n // 3:]
    return BatchNormParams.of(h, b, gamma, beta, mean, std, EPS)


def _tensorflow_decides(bn: BatchNormParams, u, jit=False) -> np.ndarray:
    """TensorFlow's inference: z = u·h + b as the layer computes it, then BatchNorm.sign, in float32."""
    layer = BatchNorm(len(bn.gamma), alpha=0.1, eps=EPS)
    for var, value in ((layer.gamma, bn.gamma), (layer.beta, bn.beta), (layer.mean, bn.mean), (layer.std, bn.std)):
        var.assign(value)

    def run(u):
        return layer.sign(u * bn.h + bn.b, training=False)
    return (tf.function(run, jit_compile=True) if jit else run)(tf.constant(u, tf.float32)).numpy() > 0


@pytest.mark.parametrize("fan_in, h, seed", [(9, 1.0, 0), (27, 1.0, 1), (64, 0.5, 2), (300, 2.0, 3), (4608, 1.0, 4)])
def test_integer_thresholds_equal_brute_force_at_every_reachable_pre_activation(fan_in, h, seed):
    bn = _layer(48, fan_in, h, seed)
    t = fold_binary(bn, fan_in)
    u = np.arange(-fan_in, fan_in + 1)[:, None] * np.ones(48, np.int64)
    brute = bn.decide(u)
    np.testing.assert_array_equal(t.apply(u) > 0, brute)
    np.testing.assert_array_equal(_tensorflow_decides(bn, u), brute)  # the oracle's formula is TensorFlow's
    np.testing.assert_array_equal(_tensorflow_decides(bn, u, jit=True), brute)
    assert t.threshold.dtype == np.int32 and t.direction.dtype == np.int8
    assert list(t.direction[:3]) == [0, 0, -1]  # gamma 0, −0: constant; gamma < 0: flipped
    assert np.all(np.abs(t.threshold) <= fan_in + 1)
    assert len(np.unique(brute[:, 0])) == len(np.unique(brute[:, 1])) == 1


def test_a_tie_is_decided_as_tensorflow_decides_it():
    """At u0 = 3 BatchNorm's output is exactly 0 (sign(0) = +1); a beta one float32 step lower gives −1."""
    f32 = np.float32
    gamma, mean, std = f32(0.7), f32(1.3), f32(2.9)
    s = gamma / (std + f32(EPS))
    p = (f32(3) - mean) * s
    bn = BatchNormParams.of(1.0, [0, 0], [gamma, gamma], [-p, np.nextafter(-p, f32(-1))], [mean, mean], [std, std], EPS)
    t = fold_binary(bn, 10)
    assert list(t.threshold) == [3, 4] and list(t.direction) == [1, 1]
    np.testing.assert_array_equal(_tensorflow_decides(bn, np.array([[3, 3], [4, 4]])), [[True, False], [True, True]])


def test_the_real_valued_threshold_rounded_is_not_enough():
    """Control: ceil of the threshold computed exactly (float64) misses some ties the bisection gets."""
    bn = _layer(300, 64, 1.0, 5)
    t = fold_binary(bn, 64)
    g, st, m, be, b = (x.astype(np.float64) for x in (bn.gamma, bn.std, bn.mean, bn.beta, bn.b))
    with np.errstate(divide="ignore", invalid="ignore"):
        real = m - be * (st + np.float64(np.float32(EPS))) / g - b
    up = t.direction > 0
    assert np.any(np.ceil(real[up]) != t.threshold[up])


@pytest.mark.parametrize("seed", [0, 1])
def test_float_thresholds_equal_the_decision_at_every_float32_near_them(seed):
    bn = _layer(40, 784, 1.0, seed)
    t = fold_real(bn)
    assert t.threshold.dtype == np.float32
    near = [t.threshold]
    for _ in range(3):  # the three float32 numbers on each side of each threshold
        near = [np.nextafter(near[0], np.float32(-np.inf))] + near + [np.nextafter(near[-1], np.float32(np.inf))]
    rng = np.random.default_rng(seed)
    u = np.concatenate([np.stack(near), rng.normal(0, 300, (200, 40)), np.zeros((1, 40))]).astype(np.float32)
    u = np.where(np.isfinite(u), u, 0).astype(np.float32)
    np.testing.assert_array_equal(t.apply(u) > 0, bn.decide(u))
    np.testing.assert_array_equal(_tensorflow_decides(bn, u), bn.decide(u))
    assert fold(bn, "real", 784).threshold.tobytes() == t.threshold.tobytes()


def test_a_unit_constant_over_the_reachable_range_gets_a_threshold_outside_it():
    bn = BatchNormParams.of(1.0, [0, 0], [1, -1], [50, 50], [0, 0], [1, 1], EPS)  # BN >= 0 for every |u| <= 8
    t = fold_binary(bn, 8)
    assert np.all(t.apply(np.arange(-8, 9)[:, None] * np.ones(2, int)) == 1)


def test_tap_sums_count_the_plus_ones_minus_the_minus_ones_per_tap():
    wb = np.where(np.random.default_rng(0).random((3, 3, 5, 4)) < 0.5, 1, -1)
    want = np.array([[[sum(wb[i, j, c, o] for c in range(5)) for o in range(4)] for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(tap_sums(wb), want)
