"""Per-image global contrast normalisation (arXiv:1511.00363, §6: CIFAR-10 and SVHN recipes).

The authors' data came from pylearn2 (`global_contrast_normalize`, defaults subtract_mean=True,
use_std=False, sqrt_bias=0, min_divisor=1e-8), applied to the raw 0..255 pixel values of each
image x flattened to D values:

    y = (x − mean(x)) · scale / ‖x − mean(x)‖₂      (divisor 1 where ‖·‖ / scale < 1e-8)

so every image has mean 0 and L2 norm `scale` (a constant image stays 0). CIFAR-10 uses
scale = 55 (pylearn2's CIFAR10(gcn=55.), make_cifar10_gcn_whitened.py); SVHN uses scale = 1, the
default of the `GlobalContrastNormalization(batch_size=5000)` in the authors' svhn_preprocessing.py
(the LCN that follows divides by a local norm, so the global scale only matters through LCN's
1e-4 floor).

Numerics, shared by the NumPy and the in-graph version: computed in float64 and rounded to the
output type once, so that a float32 deployment and the float32 training arrays agree to the last
bit or so (the per-image statistics scale every value of the image, an error there would not
average out).
"""
import numpy as np

MIN_DIVISOR = 1e-8


def gcn(x, scale: float, dtype=np.float32) -> np.ndarray:
    """Images [N, ...] (any real type) -> [N, D] in `dtype`, each row of mean 0 and norm `scale`."""
    flat = np.asarray(x).reshape(len(x), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    divisor = np.sqrt(np.square(flat).sum(axis=1, keepdims=True)) / scale
    divisor[divisor < MIN_DIVISOR] = 1.0
    flat /= divisor
    return flat.astype(dtype, copy=False)


def gcn_graph(pixels, scale: float, dtype=None):
    """The same in a TensorFlow graph: float pixel tensor [N, ...] -> [N, D] in `dtype` (default
    float32; tf.float64 to keep the exact values for a following float64 step)."""
    import tensorflow as tf

    d = int(np.prod(pixels.shape[1:]))
    flat = tf.cast(tf.reshape(pixels, [-1, d]), tf.float64)
    flat = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    divisor = tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1, keepdims=True)) / scale
    divisor = tf.where(divisor < MIN_DIVISOR, tf.ones_like(divisor), divisor)
    return tf.cast(flat / divisor, dtype or tf.float32)
