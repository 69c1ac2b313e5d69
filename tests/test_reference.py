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
