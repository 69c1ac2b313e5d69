"""bcexport/c/csrc/bcnn_xconv.h: BinaryNet's 3x3 XNOR convolution against a NumPy convolution.

bcnn_xconv_sign on random ±1 images and kernels, with and without the 2x2 max-pool, must give
exactly the bits of the zero-padded ±1 convolution (integer u, pooled as integers, then
dir · u >= thr) computed in NumPy. Channel counts put the patch (9 · ceil(C/64) words) at every
remainder modulo the AVX2 step of 4 words (9, 18, 27, 36 words) and at the 72-word limit past
which every pixel goes tap row by tap row (C > 512); output counts leave a group of fewer than 4;
odd widths leave a pixel without a pair and odd sizes a row and column the pool drops. Built on the
portable path and on AVX2 (whose two-pixel kernel, bcnn_xconv_x86.h, must give the same integers).
"""
import ctypes
import subprocess

import numpy as np
import pytest

from bcexport.c import bitrows
from bcexport.c.csrc import CSRC, PATHS, cpu_features
from c_fixtures import require
from test_c_bgemm import STRICT

WRAPPER = '#include "bcnn_xconv.h"\n' \
          "void xconv(int H, int W, int C, int N, int pool, const uint8_t *x, const uint8_t *w,\n" \
          "           const int32_t *thr, const int8_t *dir, uint8_t *y)\n" \
          "{\n    bcnn_xconv_sign(H, W, C, N, pool, x, w, thr, dir, y);\n}\n"
# (H, W, C, N, pool)
CASES = [(7, 5, 5, 6, 0), (7, 5, 5, 6, 1), (6, 9, 64, 9, 0), (6, 9, 65, 8, 1), (5, 6, 130, 7, 0),
         (4, 7, 200, 4, 1), (5, 5, 512, 5, 0), (4, 4, 513, 4, 1), (1, 3, 70, 4, 0), (3, 1, 3, 5, 0)]


def oracle(x, wb, thr, direction, pool):
    """Bits ±1 [H', W', N] of the zero-padded ±1 conv x [H, W, C] * wb [3, 3, C, N] (integers)."""
    h, w = x.shape[:2]
    xp = np.pad(x.astype(np.int64), ((1, 1), (1, 1), (0, 0)))
    u = sum(np.einsum("hwc,cn->hwn", xp[dy:dy + h, dx:dx + w], wb[dy, dx].astype(np.int64))
            for dy in range(3) for dx in range(3))
    if pool:
        u = u[:h // 2 * 2, :w // 2 * 2].reshape(h // 2, 2, w // 2, 2, -1).max(axis=(1, 3))
    return np.where(direction * u >= thr, 1, -1)


@pytest.mark.parametrize("path", ["portable", "avx2"])
def test_xconv_gives_the_numpy_convolution_bits(path, tmp_path):
    cc, = require("cc")
    if set(PATHS[path].cpu) - cpu_features():
        pytest.skip(f"this CPU lacks {PATHS[path].cpu}")
    source = tmp_path / "xconv.c"
    source.write_text(WRAPPER)
    lib = tmp_path / "xconv.so"
    subprocess.run([cc, *STRICT, "-O2", *PATHS[path].flags, "-shared", "-fPIC", f"-I{CSRC}", str(source),
                    "-o", str(lib)], check=True)
    xconv = ctypes.CDLL(str(lib)).xconv
    xconv.argtypes = [ctypes.c_int] * 5 + [ctypes.c_void_p] * 5
    rng = np.random.default_rng(7)
    for h, w, c, n, pool in CASES:
        x = np.where(rng.random((h, w, c)) < 0.5, -1, 1)
        wb = np.where(rng.random((3, 3, c, n)) < rng.uniform(0.2, 0.8), -1, 1)
        thr = rng.integers(-6, 7, n).astype(np.int32)
        direction = np.where(rng.random(n) < 0.3, -1, 1).astype(np.int8)
        want = oracle(x, wb, thr, direction, pool)
        xb = bitrows.pack_rows(x.reshape(h * w, c))
        wp = bitrows.pack_conv_weights(wb)
        y = np.full((want.shape[0] * want.shape[1], bitrows.row_bytes(n)), 0xAB, np.uint8)
        xconv(h, w, c, n, pool, xb.ctypes.data, wp.ctypes.data, thr.ctypes.data, direction.ctypes.data,
              y.ctypes.data)
        got = bitrows.unpack_rows(y, n).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=f"{path} H{h} W{w} C{c} N{n} pool{pool}")
        assert not y[:, (n + 7) // 8:].any()   # the row's padding bits stay 0
