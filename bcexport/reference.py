"""NumPy reference forward pass over the packed weights: the oracle for TF and ONNX (paper §9).

Every block is y = a ⊙ pool(x ∗ wb) + c (then ReLU but on the last block), with wb = ±1 unpacked
from the sign bits, NHWC tensors, HWIO kernels, 3x3 SAME convolution as an explicit im2col matmul
(zero padding), 2x2/stride-2 VALID max-pool, and a row-major NHWC flatten before the first dense block.

With binary activations (BinaryNet, §10) a hidden block's output is ±1 by its thresholds
(`bcexport.threshold`), and a block on ±1 inputs takes the integer path: its product is computed as
exact integers (a float32 BLAS product of ±1 values, every partial sum an integer below 2^24, then
int32), compared with integer thresholds, or turned into a ⊙ u + c by the output block.

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
    """3x3 stride-1 SAME convolution, NHWC x HWIO kernel, as im2col @ kernel: one matrix product
    over every pixel of the batch (NumPy runs a 4-D @ 2-D product as one small product per image
    row, 40 to 70 times slower at CIFAR-10's shapes)."""
    k, _, c_in, c_out = wb.shape
    if k != 3:
        raise ValueError(f"reference conv supports 3x3 kernels, got {k}x{k}")
    cols = im2col3(x)
    return (cols.reshape(-1, 9 * c_in) @ wb.reshape(9 * c_in, c_out)).reshape(*cols.shape[:3], c_out)


def max_pool2(x) -> np.ndarray:
    """2x2 max-pool, stride 2, VALID (odd trailing rows/columns dropped), NHWC."""
    n, height, width, ch = x.shape
    h2, w2 = height // 2, width // 2
    return x[:, :2 * h2, :2 * w2, :].reshape(n, h2, 2, w2, 2, ch).max(axis=(2, 4))


def product(blk, wb, x) -> np.ndarray:
    """u = pool(x ∗ wb) of one block, in the dtype of x and wb; int32 for a block on ±1 inputs."""
    if blk.input == "binary":
        x, wb = np.asarray(x, np.float32), np.asarray(wb, np.float32)
        if blk.fan_in >= 2 ** 24:
            raise ValueError(f"fan-in {blk.fan_in}: ±1 products are exact in float32 below 2^24 only")
    u = conv3(x, wb) if blk.kind == "conv" else x.reshape(len(x), -1) @ wb
    if blk.pool:
        u = max_pool2(u)
    return u.astype(np.int32) if blk.input == "binary" else u


def apply_block(blk, weights, x) -> np.ndarray:
    """One block on its input x with unpacked weights (wb, a, c): ±1 (int8) of a sign block, else
    a ⊙ u + c (and ReLU) in a's dtype."""
    wb, a, c = weights
    u = product(blk, wb, x)
    if blk.sign is not None:
        return blk.sign.apply(u)
    y = a * u + c
    return np.maximum(y, 0.0) if blk.relu else y


def forward_unpacked(blocks, weights, x, taps=None) -> np.ndarray:
    """The block stack on x with already unpacked weights [(wb, a, c) per block], in x's dtype;
    `taps`, a list, receives each block's ±1 output (int8) when it has binary activations."""
    for blk, w in zip(blocks, weights):
        x = apply_block(blk, w, x)
        if taps is not None and blk.sign is not None:
            taps.append(x)
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


def unpacked(dep: Deployment, dtype) -> list:
    """[(wb, a, c)] of every block in `dtype` (wb in float32 on ±1 inputs: the integer path)."""
    return [(b.wb.astype(np.float32 if b.input == "binary" else dtype), b.a.astype(dtype), b.c.astype(dtype))
            for b in dep.blocks]


def forward_taps(dep: Deployment, x, dtype=np.float64) -> tuple:
    """(logits [N, n_classes] in `dtype`, [±1 int8 output of each sign block]) of inputs x
    [N, *input_shape] (or flattened), used as given and converted to `dtype` only."""
    x = np.asarray(x).reshape((len(x),) + dep.input_shape).astype(dtype)
    weights = unpacked(dep, dtype)
    batch = chunk_size(dep, dtype)
    chunks = []
    for i in range(0, len(x), batch):
        taps = []
        chunks.append((forward_unpacked(dep.blocks, weights, x[i:i + batch], taps), taps))
    if not chunks:
        return np.zeros((0, dep.blocks[-1].a.shape[0]), dtype), []
    taps = [np.concatenate([t[j] for _, t in chunks]) for j in range(len(chunks[0][1]))]
    return np.concatenate([y for y, _ in chunks]), taps


def forward(dep: Deployment, x, dtype=np.float64) -> np.ndarray:
    """Logits [N, n_classes] of preprocessed inputs x [N, *input_shape] (or flattened), in `dtype`.

    x is used as given (float32 as the back ends get it, or float64 for the exact preprocessing of
    raw pixels), converted to `dtype` only."""
    return forward_taps(dep, x, dtype)[0]

