"""NumPy reference forward pass over the packed weights: the oracle for TF and ONNX (paper §9).

Every block is y = a ⊙ pool(x ∗ wb) + c (then ReLU but on the last block), with wb = ±1 unpacked
from the sign bits, NHWC tensors, HWIO kernels, 3x3 SAME convolution as an explicit im2col matmul,
2x2/stride-2 VALID max-pool, and a row-major NHWC flatten before the first dense block.

The oracle computes in float64 (inputs, a and c are the float32 values every back end uses,
converted exactly), so it shares no rounding with the float32 back ends: its own rounding error is
~2^-29 of theirs, and their difference from it is their own float32 error. The same code run with
dtype=float32 is one such float32 back end; bcexport.verify measures its deviation from the
oracle to set the tolerance.
"""
import numpy as np

from bcexport.pack import Deployment

BATCH = 500  # samples per chunk at most
CHUNK_BYTES = 256 << 20  # and at most this much for the largest im2col of a chunk


def im2col3(x) -> np.ndarray:
    """[N, H, W, C] -> [N, H, W, 3·3·C]: SAME-padded 3x3 patches ordered (dy, dx, c) like HWIO."""
    n, height, width, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = [xp[:, dy:dy + height, dx:dx + width, :] for dy in range(3) for dx in range(3)]
    return np.concatenate(cols, axis=-1)


def conv3(x, wb) -> np.ndarray:
    """3x3 stride-1 SAME convolution, NHWC x HWIO kernel, as im2col @ kernel."""
    k, _, c_in, c_out = wb.shape
    if k != 3:
        raise ValueError(f"reference conv supports 3x3 kernels, got {k}x{k}")
    return im2col3(x) @ wb.reshape(9 * c_in, c_out)


def max_pool2(x) -> np.ndarray:
    """2x2 max-pool, stride 2, VALID (odd trailing rows/columns dropped), NHWC."""
    n, height, width, ch = x.shape
    h2, w2 = height // 2, width // 2
    return x[:, :2 * h2, :2 * w2, :].reshape(n, h2, 2, w2, 2, ch).max(axis=(2, 4))


def forward_unpacked(blocks, weights, x) -> np.ndarray:
    """The block stack on x with already unpacked weights [(wb, a, c) per block], in x's dtype."""
    for blk, (wb, a, c) in zip(blocks, weights):
        if blk.kind == "conv":
            u = conv3(x, wb)
        else:
            u = x.reshape(len(x), -1) @ wb
        if blk.pool:
            u = max_pool2(u)
        x = a * u + c
        if blk.relu:
            x = np.maximum(x, 0.0)
    return x


def chunk_size(dep: Deployment, dtype) -> int:
    """Samples per chunk: BATCH, or fewer so the largest im2col array stays near CHUNK_BYTES
    (a 32x32x128 layer's is 9.4 MB per sample in float64)."""
    if not dep.blocks or dep.blocks[0].kind != "conv":
        return BATCH
    height, width = dep.input_shape[:2]
    largest = 0
    for b in dep.blocks:
        if b.kind == "conv":
            largest = max(largest, height * width * 9 * b.shape[2])
            height, width = (height // 2, width // 2) if b.pool else (height, width)
    return max(1, min(BATCH, CHUNK_BYTES // (largest * np.dtype(dtype).itemsize)))


def forward(dep: Deployment, x, dtype=np.float64) -> np.ndarray:
    """Logits [N, n_classes] of preprocessed inputs x [N, *input_shape] (or flattened), in `dtype`.

    x is used as given (float32 as the back ends get it, or float64 for the exact preprocessing of
    raw pixels), converted to `dtype` only."""
    x = np.asarray(x).reshape((len(x),) + dep.input_shape).astype(dtype)
    weights = [(b.wb.astype(dtype), b.a.astype(dtype), b.c.astype(dtype)) for b in dep.blocks]
    batch = chunk_size(dep, dtype)
    outs = [forward_unpacked(dep.blocks, weights, x[i:i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, dep.blocks[-1].a.shape[0]), dtype)

