"""bcexport.c.generate: the generated C model against the NumPy reference, through ctypes (paper §9)."""
import ctypes
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from bcexport import ExportError, reference
from bcexport.c.build import STRICT, CModel
from bcexport.c.layout import block_matrix
from bcexport.c.generate import generate
from bcexport.pack import sign_pm1
from bcexport.rundir import load_best
from c_fixtures import awkward_run, float32_bound, inputs, require, write_sources


@pytest.mark.parametrize("module", ["bcexport.c.generate", "bcexport.c.export", "bcexport.c.build"])
def test_generator_imports_without_tensorflow(module):
    code = f"import sys, {module}; sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.fixture(params=["mlp", "cnn"])
def awkward(request, tmp_path):
    """(deployment, run_dir, CModel) of an awkward tiny network, tile 4 so that batches span tiles."""
    require("cc")
    run, dep = awkward_run(tmp_path, request.param)
    sources = generate(dep, "awkward", tile=4)
    c_dir = write_sources(tmp_path / "c", sources)
    return dep, run, CModel(c_dir, sources.facts)


def test_bits_in_c_are_the_signs_of_the_latent_weights(tmp_path):
    cc, = require("cc")
    run, dep = awkward_run(tmp_path, "cnn")
    c_dir = write_sources(tmp_path / "c", generate(dep, "bits"))
    (tmp_path / "bits.c").write_text(
        '#include "bcnn_model.c"\n'
        "int bit(int block, int k, int n, int K) {\n"
        "    const uint8_t *w[] = {block0_w, block1_w, block2_w, block3_w};\n"
        "    return bcnn_bit(w[block], (K + 3) / 4, k, n);\n}\n")
    lib = tmp_path / "bits.so"
    subprocess.run([cc, *STRICT, "-shared", "-fPIC", f"-I{c_dir}", str(tmp_path / "bits.c"), "-o", str(lib)],
                   check=True)
    bit = ctypes.CDLL(str(lib)).bit
    latent = load_best(run, dep.cfg)
    zeros = 0
    for i, blk in enumerate(dep.blocks):
        w = block_matrix(blk.kind, latent[f"{i}/w"])
        zeros += int(np.sum(w == 0))
        c_bits = np.array([[bit(i, k, n, w.shape[0]) for n in range(w.shape[1])] for k in range(w.shape[0])])
        np.testing.assert_array_equal(c_bits * 2 - 1, sign_pm1(w))   # 1 = +1, sign(0) = +1
    assert zeros > 0


@pytest.mark.parametrize("n", [1, 4, 11])
def test_float_entry_point_matches_the_reference(awkward, n):
    dep, _, model = awkward
    _, x = inputs(dep, n, seed=n)
    ref = reference.forward(dep, x)
    assert np.all(np.abs(model.predict(x) - ref) <= float32_bound(dep, x, ref))


def test_pixel_entry_point_is_the_float_one_after_preprocessing(awkward):
    dep, _, model = awkward
    pixels, x = inputs(dep, 9, seed=3)
    np.testing.assert_array_equal(model.predict(pixels, "pixels"), model.predict(x))


def test_bad_arguments_are_error_codes(awkward):
    dep, _, model = awkward
    fn = getattr(model.lib, "bcnn_predict")
    f32 = ctypes.POINTER(ctypes.c_float)
    x = np.zeros((1, model.input_size), np.float32)
    out = np.zeros((1, model.n_classes), np.float32)
    scratch = model.new_scratch()
    args = [x.ctypes.data_as(f32), 1, out.ctypes.data_as(f32), scratch.ctypes.data_as(f32), scratch.nbytes]
    assert fn(*args) == 0
    assert fn(None, *args[1:]) == 1 and fn(*args[:2], None, *args[3:]) == 1
    assert fn(args[0], -1, *args[2:]) == 2
    assert fn(*args[:4], scratch.nbytes - 1) == 3
    assert fn(args[0], 0, *args[2:]) == 0


def test_raw_entry_point_matches_model_raw_onnx(exported_mlp_dir, tmp_path):
    require("cc")
    from bcexport.onnx.export import session
    from bcexport.pack import load_deployment
    dep = load_deployment(exported_mlp_dir)
    sources = generate(dep, "raw")
    model = CModel(write_sources(tmp_path / "c", sources), sources.facts)
    pixels, x = inputs(dep, 50, seed=4)
    pixels = pixels.reshape(50, 28, 28)
    sess = session(os.path.join(exported_mlp_dir, "model.raw.onnx"))
    onnx_logits = sess.run(None, {"pixels": pixels})[0]
    ref = reference.forward(dep, x)
    bound = float32_bound(dep, x, ref)
    c_logits = model.predict(pixels, "pixels")
    assert np.all(np.abs(c_logits - onnx_logits) <= 2 * bound)
    assert np.all(np.abs(c_logits - ref) <= bound)


def test_prefix_names_every_public_symbol(tmp_path):
    require("cc")
    _, dep = awkward_run(tmp_path, "mlp")
    sources = generate(dep, "named", prefix="digit net")
    assert "int digit_net_predict(const float *x" in sources.files["bcnn_model.h"]
    assert "#define DIGIT_NET_SCRATCH_BYTES" in sources.files["bcnn_model.h"]
    model = CModel(write_sources(tmp_path / "c", sources), sources.facts)
    assert model.kernel_path and model.predict(np.zeros((2, 784), np.float32)).shape == (2, 10)


def test_preprocessing_without_c_form_omits_the_pixel_entry_point(tmp_path):
    require("cc")
    _, dep = awkward_run(tmp_path, "mlp")
    sources = generate(dataclasses.replace(dep, preprocess="zca"), "zca")
    assert "predict_pixels" not in sources.facts["entry_points"].values()
    assert sources.facts["note"] == "no pixel entry point: preprocessing 'zca' has no C form yet"
    assert "#define BCNN_HAS_PIXELS 0" in sources.files["bcnn_model.h"]
    model = CModel(write_sources(tmp_path / "c", sources), sources.facts)
    assert model.feeds == ("x",) and not hasattr(model.lib, "bcnn_predict_pixels")


def test_banner_names_run_and_version(tmp_path):
    _, dep = awkward_run(tmp_path, "cnn")
    files = generate(dep, "my-run */ x").files
    for name in ("bcnn_model.h", "bcnn_model.c", "harness.c"):
        first = files[name].split("*/")[0]
        assert f"{name}: BinaryConnect network of run my-run * / x, generated by bcnn" in first
        assert "input 7x5x3 -> conv3x3(5)+pool conv3x3(6) dense(19) dense(10)" in first


def test_tile_must_be_positive(tmp_path):
    _, dep = awkward_run(tmp_path, "mlp")
    with pytest.raises(ValueError):
        generate(dep, "x", tile=0)
    with pytest.raises(ExportError):
        generate(dataclasses.replace(dep, blocks=dep.blocks[:1] + dep.blocks[2:]), "x")


@pytest.mark.parametrize("flags", [("-march=native",), ("-DBCNN_PORTABLE",)])
def test_model_header_pulls_in_no_kernel_code(tmp_path, flags):
    """A user file including bcnn_model.h compiles strictly and includes only the scratch macros
    besides <stddef.h> and <stdint.h>: no intrinsics header, no kernel, no <math.h>."""
    cc, = require("cc")
    _, dep = awkward_run(tmp_path, "cnn")
    c_dir = write_sources(tmp_path / "c", generate(dep, "user"))
    user = tmp_path / "user.c"
    user.write_text('#include "bcnn_model.h"\n'
                    "static float scratch[BCNN_SCRATCH_FLOATS];\n"
                    "int classify(const float *x, float *logits)\n"
                    "{\n    return bcnn_predict(x, 1, logits, scratch, sizeof scratch);\n}\n")
    args = [cc, *STRICT, *flags, f"-I{c_dir}", str(user)]
    subprocess.run([*args, "-c", "-o", str(tmp_path / "user.o")], check=True)
    deps = subprocess.run([*args, "-M"], capture_output=True, text=True, check=True).stdout
    headers = {os.path.basename(h) for h in deps.replace("\\\n", " ").split()[1:]}
    ours = {h for h in headers if h.startswith("bcnn_")}
    assert ours == {"bcnn_model.h", "bcnn_scratch.h"}, headers
    assert {"stddef.h", "stdint.h"} <= headers
    assert not headers & {"immintrin.h", "arm_neon.h", "math.h", "stdio.h", "stdlib.h"}, headers
