"""bcexport.pack: sign bits, their byte layout, BatchNorm folding, deployment loading (paper §9)."""
import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.layers import BatchNorm, max_pool2
from bcexport import ExportError
from bcexport.pack import fold_bn, load_deployment, pack_bits, sign_pm1, unpack_bits
from export_fixtures import cnn_config, make_run_dir, mlp_config

KIND_CONFIGS = {"mean": mlp_config(), "none": mlp_config(preprocess="none"),
                "gcn_zca": dataclasses.replace(cnn_config(), preprocess="gcn_zca"),
                "gcn_lcn": dataclasses.replace(cnn_config(), preprocess="gcn_lcn")}


def test_sign_of_zero_is_plus_one():
    w = np.array([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0], np.float32)
    np.testing.assert_array_equal(sign_pm1(w), [-1, 1, 1, 1, -1, 1])


def test_bit_order_hand_computed():
    # element k -> bit k % 8 of byte k // 8, least significant first; 1 = +1
    wb = np.array([1, -1, -1, 1, 1, 1, -1, -1, -1, 1], np.int8)
    # byte 0: bits 0, 3, 4, 5 set = 1 + 8 + 16 + 32; byte 1: bit 1 set (zero padded)
    np.testing.assert_array_equal(pack_bits(wb), np.array([57, 2], np.uint8))
    np.testing.assert_array_equal(pack_bits(wb.reshape(2, 5)), [57, 2])  # row-major flatten
    np.testing.assert_array_equal(unpack_bits(np.array([57, 2], np.uint8), (2, 5)), wb.reshape(2, 5))


@pytest.mark.parametrize("shape", [(1,), (8,), (13, 7), (3, 3, 5, 4)])
def test_round_trip(shape):
    rng = np.random.default_rng(0)
    w = rng.normal(size=shape).astype(np.float32)
    w.reshape(-1)[::3] = 0.0
    wb = sign_pm1(w)
    bits = pack_bits(wb)
    assert bits.dtype == np.uint8 and bits.shape == ((w.size + 7) // 8,)
    out = unpack_bits(bits, shape)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, wb)
    assert np.all(out[w == 0] == 1)


def test_pack_rejects_non_pm1_and_wrong_sizes():
    with pytest.raises(ValueError):
        pack_bits(np.array([1.0, 0.5]))
    with pytest.raises(ValueError):
        unpack_bits(np.zeros(2, np.uint8), (17,))


def _bn_numpy(z, gamma, beta, mean, std, eps):
    """The authors' BatchNorm in inference (paper §4), float64."""
    return (z - mean) * gamma / (std + eps) + beta


def _random_bn(rng, n):
    gamma = rng.normal(0, 1.5, n)
    gamma[:2] = [-1.3, 0.0]
    return (rng.normal(0, 0.5, n), gamma, rng.normal(0, 1, n), rng.normal(0, 2, n),
            rng.uniform(0.01, 3, n))


@pytest.mark.parametrize("h", [1.0, 0.0271])
def test_fold_equals_numpy_bn(h):
    rng = np.random.default_rng(1)
    b, gamma, beta, mean, std = (v.astype(np.float32) for v in _random_bn(rng, 6))
    u = rng.normal(0, 10, (50, 6))
    a, c = fold_bn(h, b, gamma, beta, mean, std, eps=1e-4)
    assert a.dtype == c.dtype == np.float32
    expected = _bn_numpy(h * u + b, *(v.astype(np.float64) for v in (gamma, beta, mean, std)), 1e-4)
    np.testing.assert_allclose(a.astype(np.float64) * u + c, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("pool", [False, True])
def test_fold_equals_bctrain_batchnorm_after_pool(pool):
    rng = np.random.default_rng(2)
    n, h, eps = 5, 0.37, 1e-4
    b, gamma, beta, mean, std = (v.astype(np.float32) for v in _random_bn(rng, n))
    bn = BatchNorm(n, alpha=0.15, eps=eps)
    for var, value in zip((bn.gamma, bn.beta, bn.mean, bn.std), (gamma, beta, mean, std)):
        var.assign(value)
    u = rng.normal(0, 5, (4, 6, 6, n)).astype(np.float32)
    z = tf.constant(h * u + b)
    expected = bn(max_pool2(z) if pool else z, training=False).numpy()
    a, c = fold_bn(h, b, gamma, beta, mean, std, eps)
    pooled = max_pool2(tf.constant(u)).numpy() if pool else u
    np.testing.assert_allclose(a * pooled + c, expected, rtol=1e-5, atol=1e-4)


def test_load_deployment(tiny_run_dir):
    dep = load_deployment(tiny_run_dir)
    weights = np.load(os.path.join(tiny_run_dir, "best.npz"))
    assert [b.shape for b in dep.blocks] == [(784, 32), (32, 16), (16, 10)]
    assert [b.relu for b in dep.blocks] == [True, True, False]
    for i, blk in enumerate(dep.blocks):
        np.testing.assert_array_equal(blk.wb, np.where(weights[f"{i}/w"] >= 0, 1, -1))
    assert np.any(weights["0/w"] == 0)
    assert dep.n_binary_weights == 784 * 32 + 32 * 16 + 16 * 10
    assert dep.preprocess == "mean" and set(dep.params) == {"mean"} and dep.params["mean"].shape == (784,)


@pytest.mark.parametrize("kind", KIND_CONFIGS)
def test_the_deployment_holds_the_kinds_parameters_as_preprocess_npz_stores_them(kind, tmp_path):
    path = make_run_dir(tmp_path / "run", KIND_CONFIGS[kind])
    stored = np.load(os.path.join(path, "preprocess.npz"))
    dep = load_deployment(path)
    assert dep.preprocess == kind and sorted(dep.params) == sorted(set(stored.files) - {"kind"})
    for name, value in dep.params.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, stored[name])


@pytest.mark.parametrize("kind", KIND_CONFIGS)
def test_an_earlier_releases_preprocess_npz_loads_as_the_same_deployment(kind, tmp_path):
    """Earlier releases stored a `mean` array beside every kind: kind "mean"'s parameter, zeros
    for the others (ignored)."""
    cfg = KIND_CONFIGS[kind]
    path = make_run_dir(tmp_path / "run", cfg)
    new = load_deployment(path)
    mean = new.params.get("mean", np.zeros(int(np.prod(cfg.input_shape)), np.float32))
    np.savez(os.path.join(path, "preprocess.npz"), kind=np.array(kind), **{"mean": mean, **new.params})
    old = load_deployment(path)
    assert old.preprocess == kind and sorted(old.params) == sorted(new.params)
    for name in new.params:
        np.testing.assert_array_equal(old.params[name], new.params[name])


@pytest.mark.parametrize("stored, words", [
    ({"mean": np.zeros(784, np.float32)}, "expected key 'kind'"),
    ({"kind": np.array("median")}, "kind 'median', expected one of mean, none"),
    ({"kind": np.array("mean")}, "mean is missing, expected [784] for kind 'mean'"),
    ({"kind": np.array("mean"), "mean": np.zeros(783, np.float32)}, "mean is [783], expected [784]"),
    ({"kind": np.array("mean"), "mean": np.full(784, np.nan, np.float32)}, "mean holds non-finite values"),
])
def test_a_bad_preprocess_npz_is_named(tiny_run_dir, stored, words):
    np.savez(os.path.join(tiny_run_dir, "preprocess.npz"), **stored)
    with pytest.raises(ExportError) as info:
        load_deployment(tiny_run_dir)
    assert "preprocess.npz: " in str(info.value) and words in str(info.value)


def test_float_baseline_is_refused(tmp_path):
    path = make_run_dir(tmp_path / "run", mlp_config(binarize="none"))
    with pytest.raises(ExportError, match="float baseline"):
        load_deployment(path)


def test_bad_weights_are_refused(tiny_run_dir):
    weights = dict(np.load(os.path.join(tiny_run_dir, "best.npz")))
    weights["1/gamma"] = weights["1/gamma"][:3]
    np.savez(os.path.join(tiny_run_dir, "best.npz"), **weights)
    with pytest.raises(ExportError, match="1/gamma"):
        load_deployment(tiny_run_dir)
    del weights["1/gamma"]
    np.savez(os.path.join(tiny_run_dir, "best.npz"), **weights)
    with pytest.raises(ExportError, match="1/gamma"):
        load_deployment(tiny_run_dir)
