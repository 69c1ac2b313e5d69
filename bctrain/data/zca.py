"""ZCA whitening with a bias on the covariance (arXiv:1511.00363, §6: CIFAR-10 recipe).

pylearn2's `preprocessing.ZCA()` (filter_bias = 0.1), which made the authors' CIFAR-10 data:
fitted on rows x (D values each, here the GCN'd training images),

    μ = mean of the rows,   C = (1/N) Σ (x − μ)ᵀ(x − μ) + bias · I,   C = V diag(λ) Vᵀ,
    P = V diag(1/√λ) Vᵀ,    zca(x) = (x − μ) P.

The whitened training data then has covariance P C₀ P = V diag(λ₀ / (λ₀ + bias)) Vᵀ, where
C₀ = C − bias·I: close to the identity along directions of variance ≫ bias, shrunk along the
others (the bias keeps noise directions from being amplified without bound).

The fit streams the rows in chunks (two passes: mean, then covariance, both accumulated in
float64), so for CIFAR-10 (50,000 x 3,072) it needs ~0.3 GB beyond the images, and an eigh of a
3,072 x 3,072 matrix (seconds). μ and P are stored as float32.

Applying is one matrix product, computed in float64 and rounded once, in NumPy and in the graph:
whitening cancels heavily (P has a large diagonal and many opposite off-diagonal terms), so a
float32 sum of 3,072 such terms keeps few correct digits, and a trained network amplifies that
error: with float32 ZCA, a small CIFAR-10 run deviated by 4.6e-5 of its logit scale, past the
largest float32 noise `bcexport verify` accepts (1e-4 / 16). In model.raw.onnx P is therefore
stored as float64 (75 MB).
"""
import numpy as np

BIAS = 0.1


def fit(chunks, bias: float = BIAS) -> dict:
    """{"zca_mean": float32 [D], "zca_p": float32 [D, D]} from a callable returning an iterable of
    float64 row chunks [n, D] (called twice: one pass for the mean, one for the covariance)."""
    total, count = None, 0
    for rows in chunks():
        total = rows.sum(axis=0) if total is None else total + rows.sum(axis=0)
        count += len(rows)
    if not count:
        raise ValueError("ZCA needs at least one training row")
    mean = total / count
    cov = np.zeros((len(mean), len(mean)))
    for rows in chunks():
        centred = rows - mean
        cov += centred.T @ centred
    cov /= count
    cov[np.diag_indices_from(cov)] += bias
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    p = (eigenvectors / np.sqrt(eigenvalues)) @ eigenvectors.T
    return {"zca_mean": mean.astype(np.float32), "zca_p": p.astype(np.float32)}


def apply(rows, params: dict, dtype=np.float32) -> np.ndarray:
    """(rows − μ) P computed in float64, returned in `dtype`: rows [N, D] -> [N, D]."""
    rows = np.asarray(rows, dtype=np.float64)
    out = (rows - params["zca_mean"].astype(np.float64)) @ params["zca_p"].astype(np.float64)
    return out.astype(dtype, copy=False)


def apply_graph(rows, params: dict):
    """The same in a TensorFlow graph: rows (float64 or float32) -> float32; constants made while
    tracing (converted to float64 by the converter's constant folding)."""
    import tensorflow as tf

    mean = tf.cast(tf.constant(np.asarray(params["zca_mean"], np.float32), name="zca_mean"), tf.float64)
    p = tf.cast(tf.constant(np.asarray(params["zca_p"], np.float32), name="zca_p"), tf.float64)
    return tf.cast(tf.matmul(tf.cast(rows, tf.float64) - mean, p), tf.float32)
