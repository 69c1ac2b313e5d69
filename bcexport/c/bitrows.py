"""Bit rows: the ±1 layout of BinaryNet's XNOR-popcount products in the generated C (issue 21 §3).

A row of K values in {−1, +1} is 8·ceil(K / 64) bytes: value k is bit k mod 8 of byte k // 8
(least significant bit first, numpy.packbits with bitorder="little"), 1 = +1, 0 = −1, and the
bits from K to the end of the row are 0 (`bcexport/c/csrc/bcnn_xnor.h` mirrors this). A hidden
dense block on ±1 inputs stores its weights as one such row per output unit ([n_out] rows of its
n_in inputs), its inputs as one row per sample, and computes

    u[m, n] = K − 2·popcount(x_m XOR w_n)      (= Σ_k x[m, k]·w[k, n], exactly)

A conv on ±1 inputs stores 9 rows per output (its taps) and an image as one row per pixel
(`pack_conv_weights`, bcnn_xconv.h). Pure NumPy.
"""
import math

import numpy as np

WORD_BITS = 64


def row_bytes(k: int) -> int:
    """Bytes of one row of K values (whole 64-bit words)."""
    return 8 * math.ceil(k / WORD_BITS)


def pack_rows(pm1) -> np.ndarray:
    """±1 array [R, K] -> uint8 [R, row_bytes(K)] (module docstring)."""
    pm1 = np.asarray(pm1)
    if pm1.ndim != 2 or not np.all(np.abs(pm1) == 1):
        raise ValueError("pack_rows expects a 2-d array of ±1 values")
    r, k = pm1.shape
    bits = np.zeros((r, 8 * row_bytes(k)), np.uint8)
    bits[:, :k] = pm1 > 0
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_rows(packed, k: int) -> np.ndarray:
    """Inverse of `pack_rows`: uint8 [R, ≥ ceil(K / 8)] -> ±1 int8 [R, K] (later bytes ignored)."""
    packed = np.asarray(packed, np.uint8)
    bits = np.unpackbits(packed, axis=1, count=k, bitorder="little")
    return (bits.astype(np.int8) * 2 - 1).astype(np.int8)


def pack_weights(wb) -> np.ndarray:
    """A dense block's ±1 weights [K, N] as the C model stores them: N rows of K, flattened."""
    return pack_rows(np.asarray(wb).T).reshape(-1)


def pack_conv_weights(wb) -> np.ndarray:
    """A 3x3 conv's ±1 kernel HWIO [3, 3, C, N] as the C model stores it: per output n, its 9 taps
    (dy, dx) in row-major order, each a bit row of the C input channels (bcnn_xconv.h), flattened."""
    wb = np.asarray(wb)
    return pack_rows(wb.transpose(3, 0, 1, 2).reshape(-1, wb.shape[2])).reshape(-1)


def pack_block(kind: str, wb) -> np.ndarray:
    """A block on ±1 inputs: dense weights as `pack_weights`, conv kernels as `pack_conv_weights`."""
    return pack_conv_weights(wb) if kind == "conv" else pack_weights(wb)


def unpack_weights(packed, k: int, n: int) -> np.ndarray:
    """Inverse of `pack_weights`: ±1 float32 [K, N]."""
    packed = np.asarray(packed, np.uint8)
    if packed.shape != (n * row_bytes(k),):
        raise ValueError(f"{packed.size} bytes do not hold a {k}x{n} matrix as bit rows")
    return unpack_rows(packed.reshape(n, row_bytes(k)), k).T.astype(np.float32)
