"""Export and verification of convolutional nets (paper §6 CNNs, §9): the tricky parts pinned.

SAME padding, NHWC at the ONNX interface (the converter computes in NCHW inside), max-pool before
the folded BatchNorm, NHWC row-major flatten before the first dense block, and the CIFAR-10 /
SVHN preprocessing inside model.raw.onnx, each against hand-computed values or the NumPy oracle.
"""
import io
import os

import numpy as np
import onnx
import onnxruntime
import pytest

from bctrain.data.preprocess import KINDS
from bcexport import ExportError, reference
from bcexport.onnx.export import convert, export_run
from bcexport.pack import Block, Deployment, load_deployment, pack_bits
from bcexport.tfmodel import inference_function
from bcexport.verify import verify_run
from export_fixtures import make_run_dir, small_preset, synthetic_loader, synthetic_test_data


def _run(model, feed):
    sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: feed})[0]


def _deployment(blocks, input_shape, cfg):
    return Deployment(cfg, tuple(blocks), input_shape, "none")


def _block(kind, wb, a, c, pool=False, relu=False):
    wb = np.asarray(wb, np.float32)
    return Block(kind, wb.shape, pack_bits(wb), np.asarray(a, np.float32), np.asarray(c, np.float32), pool, relu)


@pytest.fixture(scope="module")
def cfg():
    return small_preset("cifar10")


def test_same_padding_against_hand_computed_values(cfg):
    """One pixel at the corner: each output sees it through one kernel tap, the others fall on padding."""
    wb = np.where(np.arange(9).reshape(3, 3, 1, 1) % 2 == 0, 1.0, -1.0)  # +-+ / -+- / +-+
    dep = _deployment([_block("conv", wb, [1.0], [0.0])], (4, 4, 1), cfg)
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, 0, 0, 0] = 2.0
    out = _run(convert(inference_function(dep)), x)[0, :, :, 0]
    # Output (r, c) reads input (r + dy - 1, c + dx - 1): the corner pixel meets tap (1 - r, 1 - c).
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 1], expected[1, 0], expected[1, 1] = 2 * wb[1, 1, 0, 0], 2 * wb[1, 0, 0, 0], \
        2 * wb[0, 1, 0, 0], 2 * wb[0, 0, 0, 0]
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(reference.forward(dep, x)[0, :, :, 0], expected)


def test_onnx_interface_is_nhwc_and_an_nchw_input_is_refused(cfg):
    rng = np.random.default_rng(0)
    wb = rng.choice([-1.0, 1.0], (3, 3, 3, 2))
    dep = _deployment([_block("conv", wb, [1.0, -0.5], [0.1, 0.2])], (6, 5, 3), cfg)
    model = convert(inference_function(dep))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [6, 5, 3]  # N, H, W, C
    assert {"Conv"} <= {n.op_type for n in model.graph.node}  # ONNX Conv is NCHW inside
    x = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(model, x), reference.forward(dep, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        _run(model, np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def test_max_pool_comes_before_the_folded_batchnorm(cfg):
    """With a < 0 the order matters: a·max(u) + c is not max(a·u + c)."""
    wb = -np.ones((3, 3, 1, 1))
    wb[1, 1] = 1.0  # centre +1, the rest -1
    dep = _deployment([_block("conv", wb, [-1.0], [0.5], pool=True)], (2, 2, 1), cfg)
    x = np.array([[1.0, 0.0], [0.0, 3.0]], np.float32).reshape(1, 2, 2, 1)
    # Every 3x3 SAME window of a 2x2 image holds all four pixels: u = x - (4 - x) = 2x - 4.
    u = 2 * x[0, :, :, 0] - 4.0
    pool_then_bn = -1.0 * u.max() + 0.5
    bn_then_pool = (-1.0 * u + 0.5).max()
    assert (pool_then_bn, bn_then_pool) == (-1.5, 4.5)
    out = _run(convert(inference_function(dep)), x)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == pool_then_bn
    assert reference.forward(dep, x)[0, 0, 0, 0] == pool_then_bn


def test_flatten_before_the_first_dense_block_is_nhwc_row_major(cfg):
    rng = np.random.default_rng(1)
    conv = _block("conv", rng.choice([-1.0, 1.0], (3, 3, 2, 3)), [1, 1, 1], [0, 0, 0])
    dense = _block("dense", rng.choice([-1.0, 1.0], (2 * 2 * 3, 4)), np.ones(4), np.zeros(4))
    dep = _deployment([conv, dense], (2, 2, 2), cfg)
    x = rng.normal(size=(5, 2, 2, 2)).astype(np.float32)
    out = _run(convert(inference_function(dep)), x)
    u = reference.conv3(x.astype(np.float64), conv.wb)
    nhwc = u.reshape(5, -1) @ dense.wb
    nchw = u.transpose(0, 3, 1, 2).reshape(5, -1) @ dense.wb
    np.testing.assert_allclose(out, nhwc, rtol=1e-5, atol=1e-5)
    assert np.abs(out - nchw).max() > 0.1  # the test tells the two orders apart


@pytest.fixture(scope="module", params=[pytest.param("cifar10", marks=pytest.mark.slow), "svhn"])
def exported_preset(request, tmp_path_factory):
    cfg = small_preset(request.param)
    path = make_run_dir(tmp_path_factory.mktemp(request.param) / "run", cfg)
    export_run(path)
    return path, cfg


def test_raw_model_takes_nhwc_pixels_and_preprocesses_in_the_graph(exported_preset):
    run_dir, cfg = exported_preset
    dep = load_deployment(run_dir)
    assert dep.image_shape == (32, 32, 3) and dep.preprocess == cfg.preprocess
    model = onnx.load(os.path.join(run_dir, "model.raw.onnx"))
    (inp,) = model.graph.input
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim][1:] == [32, 32, 3]
    pixels, _, _ = synthetic_test_data(cfg, n=40, seed=9)
    exact = KINDS[cfg.preprocess].apply(pixels, dep.params, np.float64)
    ref = reference.forward(dep, exact)
    raw = _run(model, pixels)
    assert np.abs(raw - ref).max() <= 1e-4 * np.abs(ref).max()
    np.testing.assert_array_equal(raw.argmax(axis=1), ref.argmax(axis=1))
    with open(os.path.join(run_dir, "export.json")) as fh:
        assert "pixels uint8 [N, 32, 32, 3]" in fh.read()


def test_verify_passes_with_every_back_end(exported_preset, tmp_path):
    import shutil
    run_dir, cfg = exported_preset
    run_dir = shutil.copytree(run_dir, tmp_path / "copy")
    report = verify_run(str(run_dir), load_test=synthetic_loader(cfg, n=60), out=io.StringIO())
    assert report["passed"], report
    assert set(report["backends"]) == {"tf_net", "onnx", "onnx_packed", "onnx_raw"}
    assert report["preprocess"] == cfg.preprocess and report["tolerance"]["rtol_pixels"] > 0


def test_verify_catches_damaged_preprocessing_in_the_raw_model(exported_preset, tmp_path):
    """One value of the ZCA mean (CIFAR-10) or of the LCN Gaussian (SVHN) changed in model.raw.onnx."""
    import shutil
    from onnx import numpy_helper
    run_dir, cfg = exported_preset
    run_dir = shutil.copytree(run_dir, tmp_path / "copy")
    path = os.path.join(run_dir, "model.raw.onnx")
    model = onnx.load(path)
    target = {"gcn_zca": lambda a: a.shape == (3072,), "gcn_lcn": lambda a: a.size == 21}[cfg.preprocess]
    init = next(i for i in model.graph.initializer if target(numpy_helper.to_array(i)))
    value = numpy_helper.to_array(init).copy()
    value.reshape(-1)[3] += 0.05
    init.CopyFrom(numpy_helper.from_array(value, init.name))
    onnx.save(model, path)
    report = verify_run(str(run_dir), load_test=synthetic_loader(cfg, n=60), out=io.StringIO())
    assert not report["backends"]["onnx_raw"]["passed"] and report["backends"]["onnx"]["passed"]


def test_a_raw_model_needs_images_the_network_can_take(cfg):
    from bcexport.tfmodel import raw_inference_function
    dep = _deployment([_block("dense", np.ones((12, 10)), np.ones(10), np.zeros(10))], (12,), cfg)
    with pytest.raises(ExportError, match="raw-pixel model needs images of 12 values"):
        raw_inference_function(Deployment(dep.cfg, dep.blocks, dep.input_shape, "none", {}, (32, 32, 3)))
