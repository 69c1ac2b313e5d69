"""bcexport/csrc/bcnn_bgemm.h: the C binary product reads the layout of bcexport.c_layout."""
import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from bcexport.c_layout import pack_matrix
from bcexport.csrc import CSRC

CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if not CC:
        pytest.skip("no C compiler (cc) on PATH")
    d = tmp_path_factory.mktemp("bgemm")
    (d / "w.c").write_text('#include "bcnn_bgemm.h"\n'
                           "void ref(int M, int K, int N, const float *X, const uint8_t *W, float *Y)"
                           "{ bcnn_bgemm_ref(M, K, N, X, K, W, Y, N); }\n")
    subprocess.run([CC, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC",
                    f"-I{CSRC}", str(d / "w.c"), "-o", str(d / "w.so")], check=True)
    return ctypes.CDLL(str(d / "w.so"))


@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (3, 5, 33), (2, 27, 10), (4, 64, 70)])
def test_reference_kernel_matches_numpy(lib, m, k, n):
    rng = np.random.default_rng(m * k * n)
    wb = np.where(rng.random((k, n)) < 0.5, -1.0, 1.0)
    x = rng.normal(size=(m, k)).astype(np.float32)
    y = np.zeros((m, n), np.float32)
    packed = pack_matrix(wb)
    f32p = ctypes.POINTER(ctypes.c_float)
    lib.ref(m, k, n, x.ctypes.data_as(f32p), packed.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
            y.ctypes.data_as(f32p))
    expected = x.astype(np.float64) @ wb
    # k additions in float32: |error| <= k * 2^-24 * sum |x|
    bound = k * 2.0 ** -24 * np.abs(x).astype(np.float64).sum(axis=1, keepdims=True)
    assert np.all(np.abs(y - expected) <= bound)
