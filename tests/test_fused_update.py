"""The fused Adam update (bctrain.step.fused_update): its C kernel against a NumPy oracle on every code
path this CPU has, the TensorFlow op against the XLA update it replaces, and the training step."""
import ctypes
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from bctrain.config import with_overrides
from bctrain.paper.models import BinaryParam, Net
from bctrain.paper.optim import Optimizer
from bctrain.step import fused_update
from bctrain.step.build import make_train_step
from bctrain.step.plan import StepPlan
from bctrain.step.precision import PRECISIONS

RNG = np.random.default_rng(7)
B1, B2, EPS = 0.9, 0.999, 1e-8
pytestmark = pytest.mark.skipif(fused_update.load() is None, reason=fused_update.reason() or "no op")


class Params(ctypes.Structure):
    _fields_ = [(name, ctypes.c_float) for name in ("b1", "c1", "b2", "c2", "eps", "h", "size", "g_div",
                                                    "wb_value")] + [("wb_word", ctypes.c_uint32)]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """bc_adam_kernel.c alone, as a shared library (no TensorFlow)."""
    lib = tmp_path_factory.mktemp("kernel") / "bc_adam_kernel.so"
    subprocess.run(["cc", *fused_update.C_FLAGS, "-shared", "-Wall", "-Wextra", "-Werror",
                    os.path.join(fused_update.SRC_DIR, "bc_adam_kernel.c"), "-o", str(lib), "-lm"], check=True)
    k = ctypes.CDLL(str(lib))
    k.bc_adam_path.restype = ctypes.c_char_p
    return k


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def _fma(a, b, c):
    """fma in float32 through float64: a*b is exact there; the one rounding of a*b + c to float64
    before float32 can differ from a true fma in rare halfway cases (hence the 1-ulp allowance)."""
    return _f32(np.float64(a) * _f32(b).astype(np.float64) + _f32(c).astype(np.float64))


def oracle(w, m, v, g, size, h, g_div):
    g = _f32(g) / np.float32(g_div) if g_div != 1 else _f32(g)
    m = _fma(np.float32(B1), m, np.float32(1 - B1) * g)
    v = _fma(np.float32(B2), v, np.float32(1 - B2) * (g * g))
    w = _f32(w) - (np.float32(size) * m) / (np.sqrt(v) + np.float32(EPS))
    return (np.clip(w, -np.float32(h), np.float32(h)) if h > 0 else w), m, v


def _state(n):
    return (_f32(RNG.uniform(-1, 1, n)), _f32(RNG.normal(0, 1e-3, n)), _f32(RNG.uniform(0, 1e-5, n)),
            _f32(RNG.normal(0, 1e-2, n)))


def _bf16_words(x):
    return (np.asarray(x, np.float32).view(np.uint32) >> 16).astype(np.uint16)  # truncation: exact bf16 values


def _paths(kernel):
    have = kernel.bc_adam_path().decode()
    return ["portable"] + {"avx512": ["avx2", "avx512"], "avx2": ["avx2"]}.get(have, [])


@pytest.mark.parametrize("bf16,h,g_div,wb_bits", [(False, 1.0, 1.0, 0), (False, 0.0, 1.0, 32),
                                                   (True, 0.25, 0.25, 16), (True, 1.0, 1.0, 32)])
def test_kernel_matches_numpy_oracle_on_every_code_path(kernel, bf16, h, g_div, wb_bits):
    n = 1003  # not a multiple of any vector width
    w0, m0, v0, g = _state(n)
    w0[:6] = [1.0, -1.0, 0.9999, -0.9999, 0.0, -0.0]
    g[4:6], m0[4:6] = 0.0, 0.0  # w stays +0 and -0 there: sign(0) = +1 for both
    g_words = _bf16_words(g) if bf16 else g
    g_used = (g_words.astype(np.uint32) << 16).view(np.float32) if bf16 else g
    want = oracle(w0, m0, v0, g_used, 0.05, h, g_div)
    wb_value = 0.75  # written as float32, or as the bfloat16 word of +1 (0x3F80) with its sign flipped
    plus, minus = (np.float32(wb_value), -np.float32(wb_value)) if wb_bits == 32 else (np.uint16(0x3F80),
                                                                                        np.uint16(0xBF80))
    wb_want = np.where(want[0] >= 0, plus, minus)
    for path in _paths(kernel):
        w, m, v = w0.copy(), m0.copy(), v0.copy()
        wb = np.zeros(n + 1, np.float32 if wb_bits == 32 else np.uint16)[1:]  # not 64-byte aligned
        p = Params(np.float32(B1), np.float32(1 - B1), np.float32(B2), np.float32(1 - B2), EPS, h, 0.05, g_div,
                   wb_value, 0x3F80)
        ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
        assert kernel.bc_adam_update_on(path.encode(), ptr(w), ptr(m), ptr(v), ptr(g_words), int(bf16),
                                        ptr(wb) if wb_bits else None, wb_bits, ctypes.c_int64(n), p) == 0
        for got, exp in zip((w, m, v), want):
            np.testing.assert_array_max_ulp(got, exp, maxulp=1)
            assert np.mean(got == exp) > 0.99, path
        if h > 0:
            assert np.max(np.abs(w)) <= h
        if wb_bits:
            np.testing.assert_array_equal(wb, np.where(w >= 0, plus, minus))
            assert np.mean(wb == wb_want) > 0.99 and wb[4] == plus and wb[5] == plus
    w = w0.copy()
    assert kernel.bc_adam_update_on(b"portable", ptr(w), ptr(m0.copy()), ptr(v0.copy()), ptr(g_words), int(bf16),
                                    ptr(w), 8, ctypes.c_int64(n), p) == -1  # 8-bit wb: refused


def _optimizer(shapes, rng=RNG, h=0.5):
    """Binary weights of `shapes` (clip h, lr_scale 3), a bias in the other group, Adam."""
    ws = [tf.Variable(rng.uniform(-h, h, s).astype(np.float32)) for s in shapes]
    b = tf.Variable(np.zeros(shapes[0][-1], np.float32))
    return ws, b, Optimizer("adam", [BinaryParam(i, w, 3.0, h) for i, w in enumerate(ws)], [b], lr=0.01)


def _update(opt, kind):
    """The optimizer's update by `kind`: "xla" (its TensorFlow ops) or "fused" (the op)."""
    if kind == "xla":
        return opt.apply
    return lambda grads, divisors=None: fused_update.apply(opt, grads, divisors)


@pytest.mark.parametrize("grad_dtype", [tf.float32, tf.bfloat16])
def test_op_matches_the_xla_update(grad_dtype):
    shapes = [(33, 70), (70, 70)]
    divisor = 1.0 if grad_dtype == tf.float32 else 0.125
    results = {}
    for kind in ("xla", "fused"):
        rng = np.random.default_rng(3)
        ws, b, opt = _optimizer(shapes, rng)
        grads = [[tf.cast(rng.normal(0, 1, s), grad_dtype) for s in shapes] for _ in range(4)]
        bias_grads = [tf.constant(rng.normal(0, 1, shapes[0][-1]), tf.float32) for _ in range(4)]
        update = _update(opt, kind)
        apply = tf.function(lambda g, gb: update(g + [gb], [divisor] * len(shapes) + [1.0]),
                            jit_compile=(kind == "xla"))
        for g, gb in zip(grads, bias_grads):
            apply(g, gb)
        results[kind] = [v.numpy() for v in ws + [b] + opt.m + opt.v]
    for a, f in zip(results["xla"], results["fused"]):
        np.testing.assert_array_max_ulp(f, a, maxulp=1)  # bit-identical on a CPU with FMA (measured)
        assert np.mean(a == f) > 0.999


def test_a_value_read_before_the_update_keeps_its_value():
    ws, b, opt = _optimizer([(16, 8)])
    before = ws[0].read_value()
    kept = before.numpy().copy()
    fused_update.apply(opt, [tf.ones((16, 8)), tf.ones(8)])
    np.testing.assert_array_equal(before.numpy(), kept)
    assert not np.array_equal(ws[0].numpy(), kept)


def test_op_refuses_bad_arguments():
    op = fused_update.load()
    w, m, v = (tf.Variable(tf.zeros((4, 3))) for _ in range(3))
    consts = dict(beta1=B1, one_minus_beta1=1 - B1, beta2=B2, one_minus_beta2=1 - B2, eps=EPS)
    with pytest.raises(tf.errors.InvalidArgumentError, match="shape"):
        op.bc_adam_update(w.handle, m.handle, v.handle, tf.zeros((3, 4)), 0.1, [], **consts)
    with pytest.raises(tf.errors.InvalidArgumentError, match="different variables"):
        op.bc_adam_update(w.handle, w.handle, v.handle, tf.zeros((4, 3)), 0.1, [], **consts)
    with pytest.raises(tf.errors.InvalidArgumentError, match="different variables"):
        op.bc_adam_update(w.handle, m.handle, v.handle, tf.zeros((4, 3)), 0.1, [m.handle], **consts)
    with pytest.raises(tf.errors.InvalidArgumentError, match="wb must be"):
        op.bc_adam_update(w.handle, m.handle, v.handle, tf.zeros((4, 3)), 0.1,
                          [tf.Variable(tf.zeros((4, 3), tf.int32)).handle], **consts)
    with pytest.raises(tf.errors.InvalidArgumentError, match="wb has shape"):
        op.bc_adam_update(w.handle, m.handle, v.handle, tf.zeros((4, 3)), 0.1,
                          [tf.Variable(tf.zeros((3, 4))).handle], **consts)
    with pytest.raises(ValueError, match="Adam without loss scaling"):
        fused_update.apply(Optimizer("sgd", [], [w], lr=0.1), [tf.ones((4, 3))])


class _Cache:
    """One cached layer (0), with the interface of bctrain.step.caches.ProductWeightCache."""

    def __init__(self, variable, value):
        self.variable, self.wb_value = variable, value

    def get(self, layer):
        return self.variable if layer == 0 else None

    def value(self, layer):
        return self.wb_value


@pytest.mark.parametrize("dtype,d", [(tf.float32, 1.0), (tf.bfloat16, 0.5), (tf.float16, 0.5)])
def test_op_writes_the_binary_weights_of_the_new_w(dtype, d):
    ws, b, opt = _optimizer([(40, 30)])
    cache = tf.Variable(tf.zeros((40, 30), dtype))
    before = cache.read_value()
    grad = tf.constant(RNG.normal(size=(40, 30)), tf.float32)
    h = opt.params[0].h
    fused_update.apply(opt, [grad, tf.ones(30)], [d, 1.0], _Cache(cache, h / d))
    want = np.where(ws[0].numpy() >= 0, h / d, -h / d)  # sign(0) = +1; h / d = 1 for the 16-bit ones
    np.testing.assert_array_equal(cache.numpy().astype(np.float32), want.astype(np.float32))
    assert set(np.unique(np.abs(cache.numpy().astype(np.float32)))) == {np.float32(h / d)}
    np.testing.assert_array_equal(before.numpy(), 0)  # the value read before is untouched


def _plan(cfg, kind, split=None) -> StepPlan:
    """The XLA step of `cfg` with the `kind` update; the fused one with the caches it writes."""
    split = bool(split) or PRECISIONS[cfg.precision].split_step
    cached = "none" if kind == "xla" else "all" if split else "first"
    return StepPlan("split" if split else "whole", True, kind, cached)


def _train_weights(cfg, kind, split=None, steps=4):
    x = tf.constant(np.random.default_rng(5).normal(size=(20, 784)), tf.float32)
    y = tf.one_hot(np.random.default_rng(6).integers(0, 10, 20), 10) * 2 - 1
    net = Net(cfg, seed=4)
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=0.01)
    step = make_train_step(net, opt, _plan(cfg, kind, split))
    for _ in range(steps):
        step(x, y)
    return net.weights_dict()


@pytest.mark.parametrize("precision,split", [pytest.param("float32", None, marks=pytest.mark.slow), ("float32", True),
                                             pytest.param("mixed_bfloat16", None, marks=pytest.mark.slow)])
def test_training_step_with_fused_update_matches_xla_update(precision, split):
    """The split steps also take their product weights from the caches the fused update writes."""
    cfg = with_overrides("mnist", hidden=(64, 64), precision=precision)
    weights = {kind: _train_weights(cfg, kind, split, steps=6) for kind in ("xla", "fused")}
    # bit-identical where XLA contracts to FMA as the kernel does (x86-64 with AVX2/AVX-512 and FMA);
    # elsewhere XLA may contract or fuse differently, so within 1e-6
    atol = 0.0 if _with_fma() else 1e-6
    for key, a in weights["xla"].items():
        np.testing.assert_allclose(weights["fused"][key], a, rtol=0, atol=atol, err_msg=key)


def _with_fma() -> bool:
    lib = ctypes.CDLL(fused_update.library_path())
    lib.bc_adam_path.restype = ctypes.c_char_p
    return lib.bc_adam_path().decode() in ("avx2", "avx512")


@pytest.mark.parametrize("precision", [pytest.param("float32", marks=pytest.mark.slow), "mixed_bfloat16"])
def test_a_stale_product_weight_cache_would_be_caught(monkeypatch, precision):
    """Control for the test above: caches the update does not rewrite change the training (float32:
    the first layer's, read by the XLA step; mixed_bfloat16: every layer's, read by the split step)."""
    cfg = with_overrides("mnist", hidden=(64, 64), precision=precision)
    want = _train_weights(cfg, "xla")
    apply = fused_update.apply
    monkeypatch.setattr(fused_update, "apply", lambda opt, grads, divisors=None, cache=None: apply(opt, grads, divisors))
    got = _train_weights(cfg, "fused")
    assert max(np.max(np.abs(got[key] - a)) for key, a in want.items()) > 1e-3


def test_build_without_a_compiler_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-bcnn")
    with pytest.raises(RuntimeError, match="no compiler 'no-such-compiler-bcnn'"):
        fused_update.build(str(tmp_path / "x.so"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_train_without_the_op_falls_back_or_refuses(tmp_path, capsys, monkeypatch):
    """`auto` says why it uses the XLA update and records it; `fused` is a one-line usage error."""
    import json

    from bctrain.cli import main
    monkeypatch.setattr(fused_update, "_state", {"module": None, "reason": "fused update unavailable (test)"})
    base = ["train", "--dataset", "mnist-sample", "--epochs", "1", "--hidden", "16", "--jit", "false"]
    assert main(base + ["--update-kernel", "fused", "--run-dir", str(tmp_path / "refused")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("notice:")]
    assert len(err) == 1 and "unavailable (test)" in err[0], err
    assert not (tmp_path / "refused").exists()
    assert main(base + ["--run-dir", str(tmp_path / "auto")]) == 0
    assert "fused update unavailable (test)" in capsys.readouterr().out
    with open(tmp_path / "auto" / "metrics.json") as f:
        assert json.load(f)["update_kernel"] == "xla"
