"""The C pixel entry point of the CIFAR-10 and SVHN preprocessing (GCN+ZCA, GCN+LCN, paper §6)
against the NumPy definitions, model.raw.onnx and `bcexport verify`, on 7x5x3 images (odd sizes,
smaller than the 7x7 LCN kernel, so every pixel meets the zero border); BinaryNet's pm1 against
NumPy's to the last bit."""
import dataclasses
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from bctrain.config import with_overrides
from bctrain.data.preprocess import KINDS
from bcexport import reference
from bcexport.c.build import STRICT, CModel
from bcexport.c.preprocess import pixel_step
from bcexport.c.generate import generate
from bcexport.pack import load_deployment
from c_fixtures import float32_bound, require, write_sources
from export_fixtures import make_run_dir, synthetic_loader

SHAPE = (7, 5, 3)
PRESET = {"gcn_zca": "cifar10", "gcn_lcn": "svhn"}


def smooth_pixels(n, seed):
    """Images whose pixels are strongly correlated (3x3 blocks plus a little noise), like photos:
    their ZCA matrix has the large, cancelling entries of a real one."""
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 240, (n, 3, 2, 3)), np.ones((1, 3, 3, 1)))[:, :SHAPE[0], :SHAPE[1]]
    return (base + rng.integers(0, 16, (n, *SHAPE))).astype(np.uint8)


def sample_images(n=40, seed=5):
    """Smooth images, then the edge cases of GCN: all zero, constant (divisor floor), one bright pixel."""
    pixels = smooth_pixels(n, seed)
    pixels[0], pixels[1], pixels[2] = 0, 200, 0
    pixels[2, 3, 2, 1] = 255
    return pixels


def config(kind):
    return with_overrides(PRESET[kind], input_shape=SHAPE, conv=(5, 6), pool=(1, 0), hidden=(19,), epochs=1)


@pytest.fixture(scope="module", params=["gcn_zca", "gcn_lcn"])
def run(request, tmp_path_factory):
    """(kind, run directory, deployment taking 7x5x3 raw images) with parameters fitted on smooth images."""
    kind = request.param
    cfg = config(kind)
    params = KINDS[kind].fit(smooth_pixels(400, seed=1))
    path = make_run_dir(tmp_path_factory.mktemp(kind) / "run", cfg, params=params)
    return kind, path, dataclasses.replace(load_deployment(path), image_shape=SHAPE)


def preprocess_in_c(dep, tmp_path, pixels, flags=("-ffp-contract=off",)):
    """x [N, D] from the generated model's own preprocessing call, built with -ffp-contract=off
    (or `flags`)."""
    cc, = require("cc")
    step, why = pixel_step(dep)
    assert step is not None, why
    c_dir = write_sources(tmp_path / "c", generate(dep, "pre"))
    driver = tmp_path / "pre.c"
    driver.write_text('#include "bcnn_model.c"\n'
                      f"size_t work_floats(void) {{ return (size_t)({step.work}); }}\n"
                      "void pre(int m, const uint8_t *p, float *x, float *work)\n{\n"
                      f"    (void)work;\n    {step.call('m', 'p', 'x', 'work')}\n}}\n")
    lib = tmp_path / "pre.so"
    subprocess.run([cc, *STRICT, "-O2", "-march=native", *flags, "-shared", "-fPIC", f"-I{c_dir}",
                    str(driver), "-o", str(lib), "-lm"], check=True)
    import ctypes
    so = ctypes.CDLL(str(lib))
    so.work_floats.restype = ctypes.c_size_t
    x = np.full((len(pixels), pixels[0].size), np.nan, np.float32)
    work = np.empty(max(1, so.work_floats()), np.float32)
    p = np.ascontiguousarray(pixels)
    so.pre(len(p), p.ctypes.data_as(ctypes.c_void_p), x.ctypes.data_as(ctypes.c_void_p),
           work.ctypes.data_as(ctypes.c_void_p))
    return x


def test_preprocessing_in_c_is_the_numpy_definition(run, tmp_path):
    """GCN+ZCA: the float64 value rounded once (|C - float64| <= half a float32 ulp of it, plus
    the double sums' error, 1e-9 ulp); GCN+LCN: NumPy's float32 computation to the last bit."""
    kind, _, dep = run
    pixels = sample_images()
    x = preprocess_in_c(dep, tmp_path, pixels)
    x64 = KINDS[kind].apply(pixels, dep.params, np.float64)
    x32 = KINDS[kind].apply(pixels, dep.params)
    assert np.all(np.isfinite(x))
    if kind == "gcn_zca":
        assert np.abs(x64).max() > 10 * np.abs(x64).mean()          # the matrix amplifies and cancels
        half_ulp = np.spacing(np.abs(x64).astype(np.float32)) / 2
        assert np.all(np.abs(x - x64) <= half_ulp * (1 + 1e-9))
    else:
        assert np.array_equal(x[1], np.zeros_like(x[1]))             # a constant image stays 0
    np.testing.assert_array_equal(x, x32)
    assert np.abs(x - x64).max() <= 2.0 ** -20 * max(1.0, np.abs(x64).max())


def test_lcn_of_grey_images_in_c(tmp_path):
    """Grey images [N, H, W] are LCN'd as [N, H, W, 1] in C as in NumPy (MNIST-shaped MLP)."""
    from c_fixtures import awkward_run
    _, dep = awkward_run(tmp_path, "mlp")
    dep = dataclasses.replace(dep, preprocess="gcn_lcn", params={})
    assert pixel_step(dep)[0].image == (28, 28, 1)
    rng = np.random.default_rng(4)
    pixels = (np.kron(rng.integers(0, 240, (5, 7, 7)), np.ones((1, 4, 4))) + rng.integers(0, 16, (5, 28, 28)))
    pixels = pixels.astype(np.uint8)
    x = preprocess_in_c(dep, tmp_path, pixels)
    np.testing.assert_array_equal(x, KINDS["gcn_lcn"].apply(pixels, {}))


@pytest.mark.parametrize("contract", ["off", "fast"])
def test_pm1_in_c_is_numpys_float32_to_the_last_bit(contract, tmp_path):
    """BinaryNet's 2 · (pixels / 255) − 1: every byte value and random images, NumPy's float32 bits,
    also where the compiler fuses the doubling and the subtraction (the product by 2 is exact)."""
    from c_fixtures import awkward_run
    _, dep = awkward_run(tmp_path, "mlp")
    dep = dataclasses.replace(dep, preprocess="pm1", params={})
    rng = np.random.default_rng(9)
    pixels = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    pixels[0].flat[:256] = np.arange(256)
    x = preprocess_in_c(dep, tmp_path, pixels, (f"-ffp-contract={contract}",))
    expected = KINDS["pm1"].apply(pixels, {})
    np.testing.assert_array_equal(x.view(np.uint32), expected.view(np.uint32))
    assert x[0, 0] == -1 and x[0, 255] == 1 and np.all(np.abs(x) <= 1)
    # two roundings, not one: the float64 value rounded once differs somewhere
    assert not np.array_equal(x, KINDS["pm1"].apply(pixels, {}, np.float64).astype(np.float32))


def test_pixel_entry_point_matches_raw_onnx_and_the_float64_preprocessing(run, tmp_path):
    require("cc")
    from bcexport.onnx.export import convert
    from bcexport.tfmodel import raw_inference_function
    kind, _, dep = run
    sources = generate(dep, "raw", tile=3)
    model = CModel(write_sources(tmp_path / "c", sources), sources.facts)
    pixels = sample_images(n=25, seed=7)
    c_logits = model.predict(pixels, "pixels")
    x32 = KINDS[kind].apply(pixels, dep.params).reshape(len(pixels), *SHAPE)
    np.testing.assert_array_equal(c_logits, model.predict(x32))      # the same x as NumPy's float32 one
    ref = reference.forward(dep, KINDS[kind].apply(pixels, dep.params, np.float64))
    bound = float32_bound(dep, x32, ref)
    assert np.all(np.abs(c_logits - ref) <= bound)
    onnx = convert(raw_inference_function(dep))
    import onnxruntime
    sess = onnxruntime.InferenceSession(onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(None, {"pixels": pixels})[0]
    assert np.all(np.abs(c_logits - onnx_logits) <= 2 * bound)


def test_pixel_entry_point_stays_in_the_stated_scratch(run, tmp_path):
    """The preprocessing works in the scratch the header states (it grew by the kind's work
    region): floats after it keep their values, and a scratch one float short is refused."""
    require("cc")
    kind, _, dep = run
    sources = generate(dep, "scratch", tile=2)
    header = sources.files["bcnn_model.h"]
    assert {"gcn_zca": "BCNN_ZCA_WORK_FLOATS(105)", "gcn_lcn": "BCNN_LCN_WORK_FLOATS(7, 5)"}[kind] in \
        sources.files["bcnn_model.c"] and "BCNN_SCRATCH_FLOATS" in header
    model = CModel(write_sources(tmp_path / "c", sources), sources.facts)
    unit = generate(dataclasses.replace(dep, preprocess="none"), "unit", tile=2)  # no work region
    plain = CModel(write_sources(tmp_path / "c0", unit), unit.facts)
    assert model.scratch_bytes > plain.scratch_bytes
    pixels = sample_images(n=5, seed=8)
    raw = np.full(model.scratch_bytes // 4 + 64, 7.25, np.float32)
    skip = (-raw.ctypes.data % 64) // 4
    scratch = raw[skip:skip + model.scratch_bytes // 4]
    expected = model.predict(pixels, "pixels")
    np.testing.assert_array_equal(model.predict(pixels, "pixels", scratch), expected)
    assert np.all(raw[skip + model.scratch_bytes // 4:] == 7.25)
    from bcexport import ExportError
    with pytest.raises(ExportError, match="error 3"):
        model.predict(pixels, "pixels", scratch[:-1])


def _damage(source: str, array: str) -> str:
    """The source with the first value of a float or double array changed by 1 %."""
    match = re.search(rf"static const (?:float|double) {array}\[\d+\] = \{{\s*([-+.0-9e]+)(f?)", source)
    value = float(match.group(1)) * 1.01 + 1e-3
    return source[:match.start(1)] + repr(value) + source[match.end(1):]


@pytest.mark.slow
def test_verify_checks_the_c_pixel_entry_point(run, tmp_path):
    """`bcexport onnx`, `bcexport c`, `bcexport verify` pass, c_raw included; a damaged
    preprocessing constant in the C source fails c_raw and nothing else."""
    require("cc")
    from bcexport.c.export import export_c
    from bcexport.onnx.export import export_run
    from bcexport.verify import verify_run
    kind, path, _ = run
    run_dir = str(shutil.copytree(path, tmp_path / "run"))
    export_run(run_dir)
    summary = export_c(run_dir, tile=3)
    assert summary["entry_points"]["pixels"] == "bcnn_predict_pixels"
    # ZCA: P (105 x 105 float32), two double vectors; LCN: the 7 Gaussian taps
    assert summary["preprocess_bytes"] == {"gcn_zca": 105 * 105 * 4 + 2 * 105 * 8, "gcn_lcn": 7 * 4}[kind]
    cfg = config(kind)
    report = verify_run(run_dir, load_test=synthetic_loader(cfg, n=60), out=io.StringIO())
    assert report["passed"], report
    assert report["backends"]["c_raw"]["passed"] and report["backends"]["c_raw"]["max_diff_over_tol"] < 1
    source = os.path.join(run_dir, "c", "bcnn_model.c")
    with open(source) as fh:
        text = fh.read()
    with open(source, "w") as fh:
        fh.write(_damage(text, {"gcn_zca": "pre_zca_bias", "gcn_lcn": "pre_lcn_g"}[kind]))
    report = verify_run(run_dir, load_test=synthetic_loader(cfg, n=60), out=io.StringIO())
    assert not report["backends"]["c_raw"]["passed"]
    assert all(b["passed"] for name, b in report["backends"].items() if name != "c_raw")


def test_lcn_threshold_in_c(tmp_path):
    """On a nearly flat image every local norm is below the 1e-4 threshold, which then divides:
    bcnn_lcn_channel gives NumPy's float32 lcn to the last bit there too."""
    import ctypes
    from bctrain.data import lcn
    from bcexport.c.csrc import CSRC
    cc, = require("cc")
    driver = tmp_path / "lcn.c"
    driver.write_text('#include "bcnn_preprocess.h"\n'
                      "void lcn(int H, int W, int C, int K, const float *g, float threshold, float *x, float *work)\n"
                      "{\n    for (int c = 0; c < C; ++c)\n"
                      "        bcnn_lcn_channel(H, W, C, c, K, g, threshold, x, work);\n}\n")
    lib = tmp_path / "lcn.so"
    subprocess.run([cc, *STRICT, "-O2", "-ffp-contract=off", "-shared", "-fPIC", f"-I{CSRC}", str(driver),
                    "-o", str(lib), "-lm"], check=True)
    x = np.random.default_rng(3).normal(0, 1e-6, (1, *SHAPE)).astype(np.float32)
    expected = lcn.lcn(x, np.float32)
    assert 0 < np.abs(expected).max() < 0.1    # divided by 1e-4, not by the local norm (~1e-6)
    g = lcn.gaussian_1d().astype(np.float32)
    work = np.empty(3 * SHAPE[0] * SHAPE[1], np.float32)
    f = ctypes.CDLL(str(lib)).lcn
    f.argtypes = [ctypes.c_int] * 4 + [ctypes.c_void_p, ctypes.c_float, ctypes.c_void_p, ctypes.c_void_p]
    f(*SHAPE, lcn.KERNEL, g.ctypes.data, lcn.THRESHOLD, x.ctypes.data, work.ctypes.data)
    np.testing.assert_array_equal(x, expected)


@pytest.mark.slow
def test_pixel_entry_point_gives_the_same_bits_on_every_path(run, tmp_path):
    """The harness on raw pixels, built for the portable and the native kernel path here and for
    AArch64 (NEON, portable) under qemu: every build gives the logits of the ctypes model bit for
    bit (same float operations in the same order; no contraction under -std=c99)."""
    from bcexport.c.csrc import PATHS
    cc, = require("cc")
    kind, _, dep = run
    sources = generate(dep, "paths", tile=3)
    c_dir = write_sources(tmp_path / "c", sources)
    pixels = sample_images(n=7, seed=11)
    pixels.tofile(tmp_path / "p.bin")
    expected = CModel(c_dir, sources.facts).predict(pixels, "pixels")
    builds = [(cc, ("-O2", *PATHS["portable"].flags), ()), (cc, ("-O2", "-march=native"), ())]
    cross, qemu = shutil.which("aarch64-linux-gnu-gcc"), shutil.which("qemu-aarch64")
    if cross and qemu:
        builds += [(cross, ("-O2", *PATHS[p].flags), (qemu, "-L", "/usr/aarch64-linux-gnu"))
                   for p in ("neon", "portable")]
    for i, (compiler, flags, runner) in enumerate(builds):
        exe = str(tmp_path / f"harness{i}")
        subprocess.run([compiler, *STRICT, *flags, f"-I{c_dir}", os.path.join(c_dir, "harness.c"),
                        os.path.join(c_dir, "bcnn_model.c"), "-o", exe, "-lm"], check=True)
        out = tmp_path / f"y{i}.bin"
        proc = subprocess.run([*runner, exe, "-p", "-o", str(out), str(tmp_path / "p.bin")], capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        np.testing.assert_array_equal(np.fromfile(out, "<f4").reshape(expected.shape), expected,
                                      err_msg=" ".join(flags))
