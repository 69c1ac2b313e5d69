"""bcexport/c/csrc/bcnn_tconv.h (bcnn_conv3 of bcnn_runtime.h): every path against NumPy, through
tests/conv_driver.c.

The table convolution must give, bit for bit, what im2col followed by the portable bcnn_bgemm gives
(the driver computes both in one process) and what the NumPy emulation of bcnn_bgemm.h's order of
float32 operations gives on NumPy's im2col (`test_c_bgemm.emulate`); and stay within the header's
bound of the float64 product. A whole conv block (bcnn_conv_block: the table convolution pools and
applies the affine row by row) must give the bits of the separate passes. Inputs hold zeros of both signs (ReLU outputs, padding), where a
different order of operations would show in the sign of a zero sum. The work buffer must not be
overrun (the driver checks a guard).
"""
import math
import subprocess

import numpy as np
import pytest

from bcexport.c.csrc import CSRC, PATHS
from bcexport.c.layout import pack_matrix
from bcexport.reference import im2col3
from test_c_bgemm import QEMU, STRICT, Target, emulate, gamma, missing

DRIVER = CSRC.parent.parent.parent / "tests" / "conv_driver.c"

# (H, W, C, N, R): widths below, at and off multiples of 8 (the pixel blocks), C % 4 == 0 over one
# and several chunks of channel groups (and C % 4 != 0: im2col everywhere), N off multiples of 32
# and over several output sweeps, images with fewer pixel blocks than a register tile.
CASES = [(1, 1, 4, 1, 1), (3, 5, 4, 5, 4), (7, 9, 8, 33, 16), (5, 16, 12, 40, 8), (4, 8, 16, 70, 8),
         (6, 3, 4, 17, 5), (9, 17, 20, 64, 16), (8, 8, 64, 160, 8), (2, 24, 44, 31, 3), (5, 7, 3, 9, 8),
         (4, 6, 5, 12, 8), (1, 8, 36, 129, 8), (3, 40, 8, 16, 16), (3, 10, 68, 40, 8), (2, 9, 8, 548, 4)]

TARGETS = {
    "portable-gcc": Target("gcc", PATHS["portable"].flags, "portable"),
    "im2col-avx2-gcc": Target("gcc", ("-DBCNN_IM2COL", *PATHS["avx2"].flags), "avx2", cpu=PATHS["avx2"].cpu),
    "avx2-gcc": Target("gcc", PATHS["avx2"].flags, "avx2", cpu=PATHS["avx2"].cpu),
    "avx2-clang": Target("clang", PATHS["avx2"].flags, "avx2", cpu=PATHS["avx2"].cpu),
    "avx512-gcc": Target("gcc", PATHS["avx512"].flags, "avx512", cpu=PATHS["avx512"].cpu),
    "aarch64-neon": Target("aarch64-linux-gnu-gcc", PATHS["neon"].flags, "neon", runner=QEMU),
}


def make_case(h, w, c, n, r):
    rng = np.random.default_rng([h, w, c, n, r])
    x = (rng.normal(size=(h, w, c)) * 10.0 ** rng.uniform(-2, 2, (h, w, c))).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0.0
    x[rng.random(x.shape) < 0.1] = -0.0
    wb = np.where(rng.random((9 * c, n)) < 0.5, -1.0, 1.0)
    header = np.array([h, w, c, n, r], np.int32)
    return x, wb, header.tobytes() + x.tobytes() + pack_matrix(wb).tobytes()


def build(target: Target, out):
    proc = subprocess.run([target.compiler, *STRICT, *target.flags, f"-I{CSRC}", str(DRIVER), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def test_avx512_path_compiles(tmp_path):
    """AVX-512 builds run the AVX2 table convolution; this CPU may not run them, but they compile."""
    target = TARGETS["avx512-gcc"]
    if missing(Target(target.compiler, (), None)):
        pytest.skip(missing(Target(target.compiler, (), None)))
    build(target, tmp_path / "driver")


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_conv_path_matches_im2col_and_numpy(name, tmp_path):
    target = TARGETS[name]
    reason = missing(target)
    if reason:
        pytest.skip(reason)
    exe = build(target, tmp_path / "driver")
    path, tconv, _ = subprocess.run([*target.runner, str(exe), "path"], capture_output=True, text=True,
                                    check=True).stdout.split()
    assert path == target.path and tconv == ("0" if name in ("portable-gcc", "im2col-avx2-gcc") else "1")
    cases = [make_case(*c) for c in CASES]
    proc = subprocess.run([*target.runner, str(exe)], input=b"".join(c[2] for c in cases),
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    offset = 0
    for (h, w, c, n, _), (x, wb, _) in zip(CASES, cases):
        size = h * w * n * 4
        u, v = (np.frombuffer(proc.stdout[offset + i * size:offset + (i + 1) * size], np.float32).reshape(h * w, n)
                for i in (0, 1))
        offset += 2 * size
        assert u.tobytes() == v.tobytes(), (name, h, w, c, n)           # sign of zero included
        for pool in (0, 1):
            psize = ((h // 2) * (w // 2) if pool else h * w) * n * 4
            block, passes = proc.stdout[offset:offset + psize], proc.stdout[offset + psize:offset + 2 * psize]
            offset += 2 * psize
            assert block == passes, (name, h, w, c, n, pool)
        patches = im2col3(x[None])[0].reshape(h * w, 9 * c)
        np.testing.assert_array_equal(u, emulate(patches, wb), err_msg=f"{name} {h}x{w}x{c}->{n}")
        exact = patches.astype(np.float64) @ wb
        bound = (gamma(math.ceil(9 * c / 4) + 2) + 9 * c * 2.0 ** -53) * np.abs(patches.astype(np.float64)).sum(
            axis=1, keepdims=True)
        assert np.all(np.abs(u - exact) <= bound), (name, h, w, c, n)
    assert offset == len(proc.stdout)


def tconv_cnn_config():
    """A CNN whose convs after the first have C % 4 == 0 (so the SIMD builds run the table
    convolution), widths off multiples of 8 (3 pixel blocks per row: tiles of 4 blocks end inside a
    row, so pooling must wait for the row pair), odd sizes that pooling drops."""
    from bctrain.config import with_overrides
    return with_overrides("mnist", input_shape=(9, 19, 3), conv=(4, 8, 36), pool=(0, 1, 0), hidden=(7,), epochs=1)


@pytest.fixture(scope="module")
def tconv_model(tmp_path_factory):
    from bcexport.c.generate import generate
    from bcexport.pack import load_deployment
    from c_fixtures import write_sources
    from export_fixtures import make_run_dir
    tmp = tmp_path_factory.mktemp("tconv")
    dep = load_deployment(make_run_dir(tmp / "run", tconv_cnn_config()))
    sources = generate(dep, "tconv", tile=3)
    return dep, write_sources(tmp / "c", sources), sources.facts


def test_model_paths_give_the_same_bits(tconv_model, tmp_path):
    """The whole generated model: AVX2 (table convolution) and the portable path (im2col) give the
    same logits bit for bit, and NEON under qemu too; all within verify's float32 bound."""
    from bcexport import reference
    from bcexport.c.build import CModel
    from c_fixtures import float32_bound, inputs, require
    from test_c_build import build_harness, run_harness
    require("cc")
    dep, c_dir, facts = tconv_model
    _, x = inputs(dep, 7, seed=3)
    x[:, :2] = 0.0                              # zero rows: the padding row of the tables meets zeros
    logits = {}
    for name in ("portable", "avx2", "im2col"):
        if name != "portable" and missing(TARGETS["avx2-gcc"]):
            continue
        flags = {"portable": ("-O2", *PATHS["portable"].flags), "avx2": ("-O2", *PATHS["avx2"].flags),
                 "im2col": ("-O2", "-DBCNN_IM2COL", *PATHS["avx2"].flags)}[name]
        logits[name] = CModel(c_dir, facts, flags=flags).predict(x)
    ref = reference.forward(dep, x)
    for name, y in logits.items():
        assert y.tobytes() == logits["portable"].tobytes(), name
        assert np.all(np.abs(y - ref) <= float32_bound(dep, x, ref)), name
    if missing(TARGETS["aarch64-neon"]):
        return
    exe = build_harness("aarch64-linux-gnu-gcc", c_dir, str(tmp_path / "harness-neon"), ("-O2",))
    x.astype("<f4").tofile(tmp_path / "x.bin")
    proc = run_harness(exe, ["-o", str(tmp_path / "y.bin"), str(tmp_path / "x.bin")], runner=QEMU)
    assert proc.returncode == 0, proc.stderr
    assert np.fromfile(tmp_path / "y.bin", "<f4").tobytes() == logits["portable"].tobytes()
