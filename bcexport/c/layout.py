"""The 1-bit weight layout of the generated C code (paper §9: add and subtract only).

A binary matrix product in C, Y[m, n] = Σ_k X[m, k] · W[k, n] with W in {−1, +1}, reads W in this
layout (the one place it is defined; `bcexport/c/csrc/bcnn_bgemm.h` mirrors it):

    K inputs are taken in groups of 4 (KG = ceil(K / 4) groups), N outputs in blocks of 32
    (NB = ceil(N / 32) blocks). Block b, group g is 16 bytes at offset (b·KG + g)·16. Byte r of it
    holds output n = 32b + r in its low nibble and output n = 32b + 16 + r in its high nibble;
    bit t of a nibble is the sign bit of W[4g + t, n]: 1 means +1, 0 means −1 (sign(0) = +1, as
    everywhere: `bcexport.pack.sign_pm1`).

Padding (k ≥ K or n ≥ N) is bit 0; kernels read X only for k < K and write Y only for n < N, so
padding never changes a result. A nibble is the index of the 16 signed sums ±x0±x1±x2±x3 of a
group, which lets table kernels add one precomputed partial sum per 4 weights. A dense block's W is
its [n_in, n_out] matrix; a 3x3 conv's is its HWIO kernel reshaped to [9·c_in, c_out] (patches in
(dy, dx, c) order, like `bcexport.reference.im2col3`). Pure NumPy.
"""
import math

import numpy as np

GROUP = 4      # inputs per nibble
BLOCK = 32     # outputs per block (16 bytes: two nibbles each)


def packed_bytes(k: int, n: int) -> int:
    """Bytes of a K x N binary matrix in the C layout."""
    return math.ceil(n / BLOCK) * math.ceil(k / GROUP) * 16


def pack_matrix(wb) -> np.ndarray:
    """±1 matrix [K, N] -> uint8 [packed_bytes(K, N)] in the C layout (module docstring)."""
    wb = np.asarray(wb)
    if wb.ndim != 2 or not np.all(np.abs(wb) == 1):
        raise ValueError("pack_matrix expects a 2-d array of ±1 values")
    k, n = wb.shape
    kg, nb = math.ceil(k / GROUP), math.ceil(n / BLOCK)
    bits = np.zeros((kg * GROUP, nb * BLOCK), np.uint8)
    bits[:k, :n] = wb > 0
    # [kg, t, nb, half, r] -> nibble value per (nb, kg, half, r)
    b = bits.reshape(kg, GROUP, nb, 2, 16)
    nib = sum(b[:, t].astype(np.uint8) << t for t in range(GROUP))       # [kg, nb, 2, 16]
    out = nib[:, :, 0, :] | (nib[:, :, 1, :] << 4)                        # [kg, nb, 16]
    return np.ascontiguousarray(out.transpose(1, 0, 2)).reshape(-1)


def unpack_matrix(packed, k: int, n: int) -> np.ndarray:
    """Inverse of `pack_matrix`: ±1 float32 [K, N]."""
    packed = np.asarray(packed, np.uint8)
    if packed.shape != (packed_bytes(k, n),):
        raise ValueError(f"{packed.size} bytes do not hold a {k}x{n} matrix in the C layout")
    kg, nb = math.ceil(k / GROUP), math.ceil(n / BLOCK)
    by = packed.reshape(nb, kg, 16).transpose(1, 0, 2)                   # [kg, nb, 16]
    nib = np.stack([by & 0xF, by >> 4], axis=2)                          # [kg, nb, 2, 16]
    bits = np.stack([(nib >> t) & 1 for t in range(GROUP)], axis=1)      # [kg, t, nb, 2, 16]
    full = bits.reshape(kg * GROUP, nb * BLOCK)[:k, :n]
    return full.astype(np.float32) * 2 - 1


def block_matrix(kind: str, wb) -> np.ndarray:
    """The [K, N] matrix of a block's ±1 weights: dense as is, a 3x3 conv HWIO kernel as [9·c_in, c_out]."""
    wb = np.asarray(wb)
    return wb.reshape(-1, wb.shape[-1]) if kind == "conv" else wb
