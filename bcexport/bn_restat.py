"""BatchNorm statistics re-estimated under the deployed ±1 weights (paper §2, §4, §9; docs/CNN_CHECK.md).

Training with stochastic binarization (`binarize="stoch"`, §2) keeps BatchNorm running statistics of
its *sampled* weights, whose products have the mean of the real weights w; the export deploys
wb = h·sign(w) (sign(0) = +1), whose products have other statistics wherever w is far from ±h, and
the trained mean and std then no longer normalise them. `restat` measures them again: block by block,
on N training images through the deployed network, each block's BatchNorm mean and std are the batch
statistics of its pre-activations z = pool(x ∗ wb) + b, as the authors' BatchNorm computes them in
training (`bctrain.paper.layers.BatchNorm`: mean over the batch and the spatial positions, biased std,
std = sqrt(max(var, 1e-30)), eps added to the std later), with the blocks before already normalising
with their new statistics. The deployed network has no dropout, so none is applied.

Arithmetic: products in float32 (NumPy, the im2col convolution of `bcexport.reference`) over chunks
of images, every block's z of all N images kept in float32; mean and variance accumulated in float64
over those float32 values (two passes: mean, then mean squared deviation) and rounded once to float32,
so the result is the exact batch statistics of the float32 z up to float64 rounding and does not
depend on the chunking. TensorFlow-free. `training_inputs` gives the N images: the first N of the
run's training split, in stored order, preprocessed with the run's preprocess.npz.
"""
import hashlib
import math

import numpy as np

from bcexport import ExportError
from bcexport.pack import sign_pm1
from bcexport.reference import conv3, max_pool2

DEFAULT_IMAGES = 2000  # training images for a stochastic run's statistics (`bcexport onnx`)
VAR_FLOOR = 1e-30      # bctrain.paper.layers._VAR_FLOOR: std = sqrt(max(var, VAR_FLOOR))
CHUNK_BYTES = 256 << 20  # largest float32 im2col array of one chunk of images


def default_images(binarize: str) -> int:
    """Images `bcexport onnx` re-estimates on by default: DEFAULT_IMAGES for a stochastic run, else 0
    (a deterministic run trained with the weights it deploys: its statistics already fit)."""
    return DEFAULT_IMAGES if binarize == "stoch" else 0


def deployed_product_weights(spec, w) -> np.ndarray:
    """wb = h·sign(w) in float32, sign(0) = +1: what the deployed block multiplies by."""
    return (np.float32(spec.h) * sign_pm1(w)).astype(np.float32)


def pre_activation(spec, wb, b, x) -> np.ndarray:
    """z = pool(x ∗ wb) + b of one block in float32 (x NHWC for a conv; flattened before a dense)."""
    x = np.asarray(x, np.float32)
    z = conv3(x, wb) if spec.kind == "conv" else x.reshape(len(x), -1) @ wb
    if spec.pool:
        z = max_pool2(z)
    return z + np.asarray(b, np.float32)


def normalize(spec, z, gamma, beta, mean, std, eps) -> np.ndarray:
    """The block's BatchNorm (z − mean)·γ/(std + ε) + β in float32, then its activation: ReLU, sign
    (±1, sign(0) = +1; BinaryNet) or none (the output block)."""
    f32 = np.float32
    y = (z - mean.astype(f32)) * (gamma.astype(f32) / (std.astype(f32) + f32(eps))) + beta.astype(f32)
    if spec.act == "sign":
        return sign_pm1(y).astype(f32)
    return np.maximum(y, f32(0)) if spec.relu else y


def batch_statistics(z) -> tuple:
    """(mean, std) float32 per channel (last axis) of z over every other axis: biased std, floored
    variance, accumulated in float64 (module docstring)."""
    axes = tuple(range(z.ndim - 1))
    count = math.prod(z.shape[:-1])
    mean = np.zeros(z.shape[-1], np.float64)
    for part in _row_chunks(z):
        mean += part.sum(axis=axes, dtype=np.float64)
    mean /= count
    var = np.zeros(z.shape[-1], np.float64)
    for part in _row_chunks(z):
        var += np.square(part.astype(np.float64) - mean).sum(axis=axes)
    var /= count
    return mean.astype(np.float32), np.sqrt(np.maximum(var, VAR_FLOOR)).astype(np.float32)


def _row_chunks(a, rows_bytes=CHUNK_BYTES):
    step = max(1, rows_bytes // max(1, 8 * math.prod(a.shape[1:])))
    return (a[i:i + step] for i in range(0, len(a), step))


def _chunk(spec, x) -> int:
    """Images per product: the block's im2col array within CHUNK_BYTES."""
    per_image = 4 * math.prod(x.shape[1:]) * (9 if spec.kind == "conv" else 1)
    return max(1, CHUNK_BYTES // per_image)


def restat(specs, weights, x, eps) -> dict:
    """{"<i>/mean", "<i>/std"} float32 of every block, re-estimated on inputs x [N, *input_shape]
    (preprocessed, float32) through the deployed ±1 network, block by block (module docstring).
    `weights`: a best.npz-style dict (w, b, gamma, beta of each block)."""
    x = np.asarray(x, np.float32)
    if len(x) == 0:
        raise ValueError("re-estimating BatchNorm statistics needs at least one image")
    stats = {}
    for i, spec in enumerate(specs):
        wb = deployed_product_weights(spec, weights[f"{i}/w"])
        step = _chunk(spec, x)
        z = np.concatenate([pre_activation(spec, wb, weights[f"{i}/b"], x[j:j + step])
                            for j in range(0, len(x), step)])
        mean, std = batch_statistics(z)
        stats[f"{i}/mean"], stats[f"{i}/std"] = mean, std
        if i + 1 < len(specs):
            x = normalize(spec, z, weights[f"{i}/gamma"], weights[f"{i}/beta"], mean, std, eps)
    return stats


def with_statistics(weights: dict, stats: dict) -> dict:
    """A copy of `weights` whose BatchNorm mean and std are those of `stats` (same keys)."""
    unknown = sorted(set(stats) - set(weights))
    if unknown:
        raise ValueError(f"statistics for unknown weights: {', '.join(unknown)}")
    return {**weights, **{k: np.asarray(v, np.float32) for k, v in stats.items()}}


def training_inputs(cfg, n: int, splits, kind: str, params: dict, data_json=None) -> np.ndarray:
    """The first `n` training images of `splits` (bctrain.data Splits), preprocessed with the run's
    kind and parameters (preprocess.npz), float32 [n, *input_shape]. `data_json` (the run's
    data.json, if it has one): the training split must be the one the run trained on."""
    where = f"training split of {splits.name}"
    if data_json and "train_sha256" in data_json:
        if hashlib.sha256(np.ascontiguousarray(splits.x_train).tobytes()).hexdigest() != data_json["train_sha256"]:
            raise ExportError(f"{where}: not the images the run trained on (data.json train_sha256 differs); "
                              "pass the run's --data-dir")
    if not 0 <= n <= len(splits.x_train):
        raise ExportError(f"--bn-restat-images {n}: expected 0 to {len(splits.x_train)} (the {where})")
    from bctrain.data.preprocess import KINDS
    x = KINDS[kind].apply(splits.x_train[:n], params)
    return np.asarray(x, np.float32).reshape((n,) + tuple(cfg.input_shape))
