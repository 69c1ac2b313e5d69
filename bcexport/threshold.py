"""BatchNorm + sign of a hidden block folded into one comparison per unit (BinaryNet, PAPER.md §10).

A hidden block with binary activations outputs +1 where TensorFlow's inference decides

    fl(fl(z − mean) · s) >= −beta,   s = fl(gamma / fl(std + eps)),   z = fl(h·u + b)

(`bctrain.paper.layers.BatchNorm.sign`, float32 throughout), with u = pool(x ∗ sign(w)) the block's
product with the ±1 weights (h is a power of two, so h·u is exact). Every float32 operation rounds
monotonically, so the decision is a monotone function of u: non-decreasing where s > 0, non-increasing
where s < 0, constant where s = 0 (gamma = 0). It is therefore one comparison per unit,

    out = +1  if  direction · u >= threshold,  else −1

with direction +1 (s > 0), −1 (s < 0) or 0 (constant: threshold 0 gives +1 everywhere, 1 gives −1).

- binary inputs (every hidden block after the first): u is an integer in [−K, K], K the fan-in
  (n_in, or 9·c_in for a 3x3 conv; zero padding only narrows it), exact in float32 in every back end
  (K < 2^24). The threshold is an integer, found by bisection over [−K − 1, K + 1] on the formula
  above evaluated as TensorFlow evaluates it: NumPy float32, the same operations in the same order
  (IEEE-754 arithmetic, no contraction), so it agrees with TensorFlow's decision at every integer of
  the range (tests/test_threshold.py: brute force, and TensorFlow itself).
- real inputs (the first block): u is a float32 sum; the threshold is a float32, found by bisection
  over the ordered float32 numbers, so the comparison equals the formula's decision at every float32
  u. The u itself depends on each back end's order of summation (bcexport.hidden says what the gate
  allows for that).
Subnormal intermediate values are outside the claim (TensorFlow flushes them to zero, NumPy does
not); they would need |gamma / std| or |z − mean| below 1e-38. TensorFlow-free.
"""
from dataclasses import dataclass

import numpy as np

INPUTS = ("binary", "real")


@dataclass(frozen=True)
class Threshold:
    """One hidden block's BatchNorm + sign: out = +1 where direction · u >= threshold, else −1."""

    input: str              # "binary": ±1 inputs, u an exact integer; "real": the first block, u a float32 sum
    threshold: np.ndarray   # int32 [n_out] ("binary") or float32 [n_out] ("real")
    direction: np.ndarray   # int8 [n_out]: +1, −1, or 0 (a constant unit)

    def apply(self, u) -> np.ndarray:
        """±1 of u [..., n_out] (int8; exact for integer or float u of any dtype)."""
        return np.where(self.direction * np.asarray(u) >= self.threshold, 1, -1).astype(np.int8)

    def margin(self, u) -> np.ndarray:
        """|u − threshold| where the decision depends on u, +inf on constant units (float64)."""
        return np.where(self.direction != 0, np.abs(self.direction * np.asarray(u, np.float64) - self.threshold),
                        np.inf)


@dataclass(frozen=True)
class BatchNormParams:
    """The float32 values TensorFlow's inference computes a hidden block's decision from."""

    h: np.float32
    b: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    eps: np.float32

    @staticmethod
    def of(h, b, gamma, beta, mean, std, eps) -> "BatchNormParams":
        f32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
        return BatchNormParams(np.float32(h), f32(b), f32(gamma), f32(beta), f32(mean), f32(std), np.float32(eps))

    @property
    def scale(self) -> np.ndarray:
        """s = fl(gamma / fl(std + eps))."""
        return self.gamma / (self.std + self.eps)

    def decide(self, u) -> np.ndarray:
        """TensorFlow's decision (bool, +1 where True) at u [..., n_out], float32 as TensorFlow computes it
        (at u = ±inf, the bisection's ends, the same IEEE rules give its limit)."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.asarray(u, np.float32) * self.h + self.b
            return (z - self.mean) * self.scale >= -self.beta


def _bisect(decide_up, lo, hi, steps) -> np.ndarray:
    """The smallest v in (lo, hi] with decide_up(v) (hi where none), decide_up non-decreasing;
    lo and hi are arrays of int64 bounds, decide_up(lo) taken as False and decide_up(hi) as True."""
    for _ in range(steps):
        mid = lo + (hi - lo) // 2
        up = decide_up(mid)
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    return hi


def _directions(bn: BatchNormParams) -> np.ndarray:
    s = bn.scale
    return np.where(s > 0, 1, np.where(s < 0, -1, 0)).astype(np.int8)


def fold_binary(bn: BatchNormParams, fan_in: int) -> Threshold:
    """Integer thresholds of a block whose inputs are ±1 (u an integer in [−fan_in, fan_in])."""
    if not 0 < fan_in < 2 ** 24 - 1:
        raise ValueError(f"fan-in {fan_in}: integer pre-activations must be exact in float32 (< 2^24)")
    direction = _directions(bn)
    n = direction.size
    sign = np.where(direction < 0, -1, 1)
    # in v = direction · u the decision is non-decreasing; bisect over v in [-K - 1, K + 1]
    lo, hi = np.full(n, -fan_in - 1, np.int64), np.full(n, fan_in + 1, np.int64)
    v = _bisect(lambda v: bn.decide(sign * v), lo, hi, int(np.ceil(np.log2(2 * fan_in + 3))) + 1)
    constant = np.where(bn.decide(np.zeros(n)), 0, 1)
    return Threshold("binary", np.where(direction != 0, v, constant).astype(np.int32), direction)


def _key(f) -> np.ndarray:
    """float32 -> int64 key in the order of the numbers (+0 and −0 both 0)."""
    bits = np.asarray(f, np.float32).view(np.int32).astype(np.int64)
    return np.where(bits >= 0, bits, -(bits & 0x7FFFFFFF))


def _from_key(k) -> np.ndarray:
    k = np.asarray(k, np.int64)
    return np.where(k >= 0, k, (-k) | 0x80000000).astype(np.uint32).view(np.float32)


def fold_real(bn: BatchNormParams) -> Threshold:
    """float32 thresholds of the first block (real inputs, u a float32 sum)."""
    direction = _directions(bn)
    n = direction.size
    sign = np.where(direction < 0, -1, 1).astype(np.float32)
    inf = np.float32(np.inf)
    lo, hi = np.full(n, _key(-inf) - 1), np.full(n, _key(inf))
    v = _from_key(_bisect(lambda k: bn.decide(sign * _from_key(k)), lo, hi, 33))
    constant = np.where(bn.decide(np.zeros(n)), 0, 1).astype(np.float32)
    return Threshold("real", np.where(direction != 0, v, constant).astype(np.float32), direction)


def fold(bn: BatchNormParams, input_kind: str, fan_in: int) -> Threshold:
    if input_kind not in INPUTS:
        raise ValueError(f"input kind {input_kind!r}: expected one of {', '.join(INPUTS)}")
    return fold_binary(bn, fan_in) if input_kind == "binary" else fold_real(bn)


def tap_sums(wb) -> np.ndarray:
    """int32 [k, k, c_out]: Σ over the input channels of the ±1 kernel HWIO at each tap, what a
    popcount over zero-padded ±1 inputs stored as bits must add back at the border (docs/BINARYNET.md)."""
    return np.asarray(wb).sum(axis=2).astype(np.int32)
