"""bcexport.reference, the NumPy oracle, against independent computations (paper §9).

Its primitives against SciPy and hand-made values; the whole pass against the folded TF function
(bcexport.tfmodel) and against the training code path (bctrain Net, eval_mode="binary").
"""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from scipy.signal import correlate2d

from bctrain.data.preprocess import KINDS
from bctrain.paper.arch import layer_specs
from bctrain.paper.models import Net
from bcexport import reference
from bcexport.pack import load_deployment
from bcexport.rundir import load_best
from bcexport.tfmodel import inference_function, raw_inference_function
from bcexport.verify import noise_level, tolerance
from export_fixtures import cnn_config, make_run_dir, mlp_config, synthetic_test_data


def test_conv3_matches_scipy_correlate():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3))
    w = rng.choice([-1.0, 1.0], size=(3, 3, 3, 4))
    out = reference.conv3(x, w)
    expected = np.zeros((2, 5, 6, 4))
    for n in range(2):
        for o in range(4):
            expected[n, :, :, o] = sum(correlate2d(x[n, :, :, c], w[:, :, c, o], mode="same")
                                       for c in range(3))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def _zero_padded_conv_oracle(x, w):
    """Direct loops: out[n, i, j, o] = Σ over the taps inside the image of x · w (outside: 0)."""
    n, height, width, c_in = x.shape
    out = np.zeros((n, height, width, w.shape[3]), np.int64)
    for i in range(height):
        for j in range(width):
            for dy in range(3):
                for dx in range(3):
                    y, v = i + dy - 1, j + dx - 1
                    if 0 <= y < height and 0 <= v < width:
                        out[:, i, j, :] += x[:, y, v, :] @ w[dy, dx]
    return out


@pytest.mark.parametrize("height, width", [(5, 6), (1, 4), (2, 2)])
def test_binary_conv_with_zero_padding_and_the_popcount_border_correction(height, width):
    """The reference's integer product of ±1 inputs (zero padding) against direct loops; and the
    correction docs/BINARYNET.md gives the C task: with the border stored as bit 0 (−1) and a popcount
    over all 9·c_in taps, u = K − 2·popcount(x XOR w) + Σ over the taps outside the image of tap_sums."""
    from bcexport.pack import Block, pack_bits
    from bcexport.threshold import tap_sums
    rng = np.random.default_rng(height)
    c_in, c_out = 3, 4
    x = rng.choice([-1, 1], (2, height, width, c_in)).astype(np.int8)
    w = rng.choice([-1, 1], (3, 3, c_in, c_out)).astype(np.int8)
    blk = Block("conv", w.shape, pack_bits(w), np.ones(c_out, np.float32), np.zeros(c_out, np.float32), False, False,
                input="binary")
    oracle = _zero_padded_conv_oracle(x.astype(np.int64), w.astype(np.int64))
    u = reference.product(blk, blk.wb, x)
    assert u.dtype == np.int32
    np.testing.assert_array_equal(u, oracle)
    bits_x = np.pad(x > 0, ((0, 0), (1, 1), (1, 1), (0, 0)))  # border: bit 0, i.e. −1
    taps = tap_sums(w)
    for i in range(height):
        for j in range(width):
            patch = bits_x[:, i:i + 3, j:j + 3, :]                     # [N, 3, 3, c_in]
            popcount = (patch[..., None] != (w > 0)).sum(axis=(1, 2, 3))  # [N, c_out]
            outside = [(dy, dx) for dy in range(3) for dx in range(3)
                       if not (0 <= i + dy - 1 < height and 0 <= j + dx - 1 < width)]
            correction = sum((taps[dy, dx] for dy, dx in outside), np.zeros(c_out, np.int64))
            np.testing.assert_array_equal(9 * c_in - 2 * popcount + correction, oracle[:, i, j, :])


def test_float32_pass_is_close_but_not_identical(tiny_cnn_run_dir):
    dep = load_deployment(tiny_cnn_run_dir)
    _, x = _inputs(dep)
    ref, ref32 = reference.forward(dep, x), reference.forward(dep, x, dtype=np.float32)
    assert ref32.dtype == np.float32
    assert 0 < np.abs(ref32 - ref).max() < 1e-4 * np.abs(ref).max()


def test_max_pool2_drops_odd_edge():
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    np.testing.assert_array_equal(reference.max_pool2(x)[0, :, :, 0], [[6, 8], [16, 18]])


def _inputs(dep, seed=0):
    pixels, labels, _ = synthetic_test_data(dep.cfg, n=64, seed=seed)
    return pixels, KINDS[dep.preprocess].apply(pixels, dep.params).reshape((len(pixels),) + dep.input_shape)


def _assert_close(dep, x, ref, other):
    assert ref.dtype == np.float64 and other.shape == ref.shape
    assert np.all(np.abs(other - ref) <= tolerance(ref, noise_level(dep, x, ref))[:, None])
    np.testing.assert_array_equal(other.argmax(axis=1), ref.argmax(axis=1))


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_reference_equals_tf_folded_function(which, tiny_run_dir, tiny_cnn_run_dir):
    dep = load_deployment(tiny_run_dir if which == "mlp" else tiny_cnn_run_dir)
    _, x = _inputs(dep)
    _assert_close(dep, x, reference.forward(dep, x), inference_function(dep)(tf.constant(x)).numpy())


def test_reference_on_raw_pixels_equals_tf_raw_function(tiny_run_dir):
    dep = load_deployment(tiny_run_dir)
    pixels, x = _inputs(dep, seed=3)
    assert pixels.dtype == np.uint8 and pixels.shape[1:] == (28, 28)
    _assert_close(dep, x, reference.forward(dep, x), raw_inference_function(dep)(tf.constant(pixels)).numpy())


def _net_logits(run_dir, dep, x):
    net = Net(dep.cfg, seed=dep.cfg.seed)
    net.load_weights_dict(load_best(run_dir, dep.cfg))
    return net(tf.constant(x), training=False, eval_mode="binary").numpy()


@pytest.mark.parametrize("which", ["mlp", "cnn", "mlp-glorot-h"])
def test_reference_equals_training_code_path(which, tmp_path):
    cfg = {"mlp": mlp_config(), "cnn": cnn_config(), "mlp-glorot-h": mlp_config(h="glorot")}[which]
    run_dir = make_run_dir(tmp_path / which, cfg, seed=4)
    dep = load_deployment(run_dir)
    if which == "mlp-glorot-h":
        assert layer_specs(cfg)[0].h < 0.1  # the scale h is folded into a, not into wb
    _, x = _inputs(dep, seed=5)
    _assert_close(dep, x, reference.forward(dep, x), _net_logits(run_dir, dep, x))


def test_stochastic_run_uses_sign_of_latent_weights(tmp_path):
    cfg = dataclasses.replace(mlp_config(), binarize="stoch")
    run_dir = make_run_dir(tmp_path / "stoch", cfg, seed=6)
    dep = load_deployment(run_dir)
    _, x = _inputs(dep, seed=7)
    _assert_close(dep, x, reference.forward(dep, x), _net_logits(run_dir, dep, x))


def test_chunks_bound_the_im2col_memory_of_large_cnns():
    from bctrain.config import PRESETS
    from bcexport.pack import Deployment, build_blocks
    cfg = PRESETS["cifar10"]
    weights = {f"{i}/{k}": np.ones(s.w_shape if k == "w" else (s.n_out,), np.float32)
               for i, s in enumerate(layer_specs(cfg)) for k in ("w", "b", "gamma", "beta", "mean", "std")}
    dep = Deployment(cfg, build_blocks(cfg, weights), (32, 32, 3), "none")
    per_sample = 32 * 32 * 9 * 128 * 8  # the largest im2col: the second conv, float64
    n = reference.chunk_size(dep, np.float64)
    assert n * per_sample <= reference.CHUNK_BYTES < (n + 1) * per_sample
    mlp = Deployment(PRESETS["mnist"], (), (784,), "none")
    assert reference.chunk_size(mlp, np.float64) == reference.BATCH
