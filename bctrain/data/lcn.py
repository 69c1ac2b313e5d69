"""LeCun local contrast normalisation, per channel (arXiv:1511.00363, §6: SVHN recipe).

pylearn2's `LeCunLCN((32, 32))` (kernel 7, threshold 1e-4, all three channels), which the authors'
svhn_preprocessing.py applies after GCN, computes for each image and each channel x [H, W]:

    G        = 7x7 Gaussian, σ = 2, normalised to sum 1 (pylearn2 `gaussian_filter`)
    centred  = x − G ∗ x
    denom    = sqrt(G ∗ x²)
    divisor  = max(denom, mean over the image of denom, 1e-4)
    lcn(x)   = centred / divisor

with ∗ a zero-padded "same" convolution (pylearn2 convolves in "full" mode and crops the border).
Note `G ∗ x²`: pylearn2 takes the local norm of x itself, not of the centred values as Jarrett
et al. (2009) write it; the authors' data was made with pylearn2's form, so that is the one here.

G is separable (exp(−(u² + v²)/2σ²) = g(u)·g(v)), so both convolutions are done as a 7-tap pass
along rows then columns, in NumPy and in the graph alike; the per-image mean of denom is
accumulated in float64 (it scales most of the image).
"""
import numpy as np

KERNEL = 7
SIGMA = 2.0
THRESHOLD = 1e-4


def gaussian_1d(size: int = KERNEL, sigma: float = SIGMA) -> np.ndarray:
    """g [size], float64, sum 1, with outer(g, g) the normalised 2-D Gaussian of pylearn2."""
    u = np.arange(size) - size // 2
    g = np.exp(-u ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def gaussian_2d(size: int = KERNEL, sigma: float = SIGMA) -> np.ndarray:
    """pylearn2's gaussian_filter: exp(−(u² + v²)/2σ²) / Σ, float64 [size, size]."""
    u = np.arange(size) - size // 2
    k = np.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def _blur(x, g) -> np.ndarray:
    """Zero-padded "same" separable convolution over axes 1 and 2 of x [N, H, W, C]."""
    r = len(g) // 2
    _, height, width, _ = x.shape
    xp = np.pad(x, ((0, 0), (r, r), (0, 0), (0, 0)))
    rows = sum(g[k] * xp[:, k:k + height] for k in range(len(g)))
    rp = np.pad(rows, ((0, 0), (0, 0), (r, r), (0, 0)))
    return sum(g[k] * rp[:, :, k:k + width] for k in range(len(g)))


def lcn(x, dtype=np.float32) -> np.ndarray:
    """Images [N, H, W, C] -> LCN of each channel (module docstring), in `dtype`."""
    x = np.asarray(x, dtype=dtype)
    g = gaussian_1d().astype(dtype)
    centred = x - _blur(x, g)
    denom = np.sqrt(_blur(x * x, g))
    image_mean = denom.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(dtype)
    divisor = np.maximum(np.maximum(denom, image_mean), np.asarray(THRESHOLD, dtype))
    return (centred / divisor).astype(dtype, copy=False)


def lcn_graph(x):
    """The same in a TensorFlow graph: float32 [N, H, W, C] -> float32 [N, H, W, C]."""
    import tensorflow as tf

    channels = int(x.shape[-1])
    g = gaussian_1d().astype(np.float32)
    along_rows = tf.constant(np.tile(g.reshape(KERNEL, 1, 1, 1), (1, 1, channels, 1)), name="lcn_rows")
    along_cols = tf.constant(np.tile(g.reshape(1, KERNEL, 1, 1), (1, 1, channels, 1)), name="lcn_cols")

    def blur(t):
        t = tf.nn.depthwise_conv2d(t, along_rows, strides=[1, 1, 1, 1], padding="SAME")
        return tf.nn.depthwise_conv2d(t, along_cols, strides=[1, 1, 1, 1], padding="SAME")

    centred = x - blur(x)
    denom = tf.sqrt(blur(x * x))
    image_mean = tf.cast(tf.reduce_mean(tf.cast(denom, tf.float64), axis=[1, 2], keepdims=True), tf.float32)
    divisor = tf.maximum(tf.maximum(denom, image_mean), THRESHOLD)
    return centred / divisor
