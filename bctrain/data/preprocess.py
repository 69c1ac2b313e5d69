"""Input preprocessing kinds, one table (arXiv:1511.00363, §6: the three recipes; BinaryNet's, §10).

    kind     recipe    fitted parameters               x (float32, flattened row-major NHWC)
    mean     MNIST     mean [D]                        pixels / 255 − mean
    none     -         -                               pixels / 255
    pm1      BinaryNet -                               2 · (pixels / 255) − 1, in [−1, 1]
    gcn_zca  CIFAR-10  zca_mean [D], zca_p [D, D]      zca(gcn(pixels, 55))          (gcn.py, zca.py)
    gcn_lcn  SVHN      -                               lcn(gcn(pixels, 1))           (gcn.py, lcn.py)

Each `Kind` gives: `fit` (uint8 training images -> {name: float32 array}), `apply` (uint8 images,
parameters, dtype -> [N, D]; float32 for training, float64 for the verification oracle), `graph`
(the same on a float32 pixel tensor in a TensorFlow graph, for model.raw.onnx; TensorFlow is
imported only when it is called), `param_shapes` (what a run's preprocess.npz must hold),
`settings` (the fixed constants, recorded in the cache key) and `cached` (whether the
preprocessed arrays are worth caching, `bctrain.data.cache`). Parameters are fitted on training
data only (the registry's `fit_on`) and saved in the run directory (preprocess.npz: `kind` and the
parameters), where export reuses them.
Pure NumPy.
"""
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bctrain.data import gcn, lcn, zca

CIFAR_GCN_SCALE = 55.0
SVHN_GCN_SCALE = 1.0
FIT_CHUNK = 5000  # images per chunk when fitting: bounds the float64 copies


def _flat_unit(x_uint8: np.ndarray, dtype=np.float32) -> np.ndarray:
    """uint8 images [N, ...] -> [N, D] in [0, 1]."""
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8:
        # A float input here almost always means the data was already preprocessed once.
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    flat = x.reshape(len(x), -1).astype(dtype)
    flat /= dtype(255)  # in place: one float copy of the images, not two
    return flat


def fit_mean(x_uint8: np.ndarray) -> np.ndarray:
    """Per-pixel mean of x / 255 over the given (training) images: float32 [D]."""
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8 or len(x) == 0:
        raise ValueError(f"expected a non-empty uint8 image array, got {x.dtype}{list(x.shape)}")
    # Accumulate in float64: a float32 sum over 50,000 images loses digits.
    mean = x.reshape(len(x), -1).mean(axis=0, dtype=np.float64) / 255
    return mean.astype(np.float32)


def apply_none(x_uint8: np.ndarray, dtype=np.float32) -> np.ndarray:
    """x / 255, flattened: [N, D]."""
    return _flat_unit(x_uint8, dtype)


def apply_mean(x_uint8: np.ndarray, mean: np.ndarray, dtype=np.float32) -> np.ndarray:
    """x / 255 − mean, flattened: [N, D]."""
    x = _flat_unit(x_uint8, dtype)
    mean = np.asarray(mean, dtype=np.float32).astype(dtype)
    if mean.shape != x.shape[1:]:
        raise ValueError(f"mean has shape {list(mean.shape)}, images have {x.shape[1]} pixels")
    x -= mean
    return x


def apply_pm1(x_uint8: np.ndarray, dtype=np.float32) -> np.ndarray:
    """2 · (x / 255) − 1, flattened: [N, D] in [−1, 1], BinaryNet's inputs (its mnist.py: 2·X − 1 with
    X = x / 255; its cifar10.py and svhn.py: 2/255 · x − 1). The doubling is exact, so x is
    x / 255 rounded, doubled, minus 1 rounded: two roundings, as the graph computes it."""
    x = _flat_unit(x_uint8, dtype)
    x *= dtype(2)
    x -= dtype(1)
    return x


def _checked_uint8(x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    return x


def _fit_gcn_zca(x) -> dict:
    x = _checked_uint8(x)
    return zca.fit(lambda: (gcn.gcn(x[i:i + FIT_CHUNK], CIFAR_GCN_SCALE, np.float64)
                            for i in range(0, len(x), FIT_CHUNK)))


def _apply_gcn_zca(x, params, dtype=np.float32) -> np.ndarray:
    # Both steps in float64, rounded once (zca.py says why).
    return zca.apply(gcn.gcn(_checked_uint8(x), CIFAR_GCN_SCALE, np.float64), params, dtype)


def _nhwc(shape) -> tuple:
    """[N, H, W, C] for colour images, [N, H, W, 1] for grey ones [N, H, W]."""
    return tuple(shape) + ((1,) if len(shape) == 3 else ())


def _apply_gcn_lcn(x, params, dtype=np.float32) -> np.ndarray:
    x = _checked_uint8(x)
    return lcn.lcn(gcn.gcn(x, SVHN_GCN_SCALE, dtype).reshape(_nhwc(x.shape)), dtype).reshape(len(x), -1)


def _graph_mean(pixels, params):
    import tensorflow as tf
    d = math.prod(pixels.shape[1:])
    mean = tf.constant(np.asarray(params["mean"], np.float32), name="mean")
    return tf.reshape(pixels, [-1, d]) / 255.0 - mean


def _graph_none(pixels, params):
    import tensorflow as tf
    return tf.reshape(pixels, [-1, math.prod(pixels.shape[1:])]) / 255.0


def _graph_pm1(pixels, params):
    import tensorflow as tf
    return tf.reshape(pixels, [-1, math.prod(pixels.shape[1:])]) / 255.0 * 2.0 - 1.0


def _graph_gcn_zca(pixels, params):
    import tensorflow as tf
    return zca.apply_graph(gcn.gcn_graph(pixels, CIFAR_GCN_SCALE, tf.float64), params)


def _graph_gcn_lcn(pixels, params):
    import tensorflow as tf
    x = tf.reshape(gcn.gcn_graph(pixels, SVHN_GCN_SCALE), [-1, *_nhwc(pixels.shape)[1:]])
    return tf.reshape(lcn.lcn_graph(x), [-1, math.prod(pixels.shape[1:])])


@dataclass(frozen=True)
class Kind:
    name: str
    help: str               # one line for --help
    fit: Callable           # uint8 images [N, *shape] -> {name: float32 array}
    apply: Callable         # (uint8 images, params, dtype=float32) -> [N, D] in dtype
    graph: Callable         # (float32 pixel tensor [N, *shape], params) -> float32 tensor [N, D]
    param_shapes: Callable  # D -> {name: shape} of the fitted parameters
    settings: dict = field(default_factory=dict)
    cached: bool = False


KINDS = {k.name: k for k in (
    Kind("mean", "pixels/255 minus the per-pixel training mean", lambda x: {"mean": fit_mean(x)},
         lambda x, p, dtype=np.float32: apply_mean(x, p["mean"], dtype),
         _graph_mean, lambda d: {"mean": (d,)}),
    Kind("none", "pixels/255", lambda x: {}, lambda x, p, dtype=np.float32: apply_none(x, dtype), _graph_none,
         lambda d: {}),
    Kind("pm1", "2*pixels/255 - 1, BinaryNet", lambda x: {}, lambda x, p, dtype=np.float32: apply_pm1(x, dtype),
         _graph_pm1, lambda d: {}),
    Kind("gcn_zca", "GCN x55 then ZCA, CIFAR-10", _fit_gcn_zca, _apply_gcn_zca, _graph_gcn_zca,
         lambda d: {"zca_mean": (d,), "zca_p": (d, d)},
         settings={"gcn_scale": CIFAR_GCN_SCALE, "gcn_min_divisor": gcn.MIN_DIVISOR, "zca_bias": zca.BIAS},
         cached=True),
    Kind("gcn_lcn", "GCN then LeCun LCN, SVHN", lambda x: {}, _apply_gcn_lcn, _graph_gcn_lcn, lambda d: {},
         settings={"gcn_scale": SVHN_GCN_SCALE, "gcn_min_divisor": gcn.MIN_DIVISOR, "lcn_kernel": lcn.KERNEL,
                   "lcn_sigma": lcn.SIGMA, "lcn_threshold": lcn.THRESHOLD},
         cached=True),
)}


def get(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown preprocessing {kind!r}, expected one of {', '.join(KINDS)}")
    return KINDS[kind]


def preprocess(kind: str, x_fit: np.ndarray, *others: np.ndarray) -> tuple[dict, list[np.ndarray]]:
    """Fit on `x_fit` only, apply to it and to `others`: (params, [x_fit, *others]) in float32."""
    k = get(kind)
    params = k.fit(x_fit)
    return params, [k.apply(x, params) for x in (x_fit, *others)]


def params_sha256(params: dict) -> str:
    """SHA-256 over the fitted parameters (names, dtypes, shapes, bytes), for a run's data.json."""
    digest = hashlib.sha256()
    for name in sorted(params):
        value = np.ascontiguousarray(params[name])
        digest.update(f"{name}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
