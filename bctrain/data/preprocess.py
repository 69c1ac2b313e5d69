"""Input preprocessing, pure NumPy (arXiv:1511.00363, §6: MNIST recipe of the authors' code).

MNIST: pixels scaled to [0, 1], minus the per-pixel mean of the *training* split, flattened
to [N, rows*cols] for the permutation-invariant MLP. The mean is fitted on the training split
only, so validation and test never leak into the model; it is saved in the run directory
(`preprocess.npz`) and reused by export. Kind "none" only scales and flattens. Kept free of
TensorFlow so export and the tests can use it cheaply.
"""

import numpy as np

KINDS = ("mean", "none")


def _flat_unit(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 images [N, ...] -> float32 [N, D] in [0, 1]."""
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8:
        # A float input here almost always means the data was already preprocessed once.
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    flat = x.reshape(len(x), -1).astype(np.float32)
    flat /= np.float32(255)  # in place: one float copy of the images, not two
    return flat


def fit_mean(x_uint8: np.ndarray) -> np.ndarray:
    """Per-pixel mean of x / 255 over the given (training) images: float32 [D]."""
    x = np.asarray(x_uint8)
    if x.dtype != np.uint8 or len(x) == 0:
        raise ValueError(f"expected a non-empty uint8 image array, got {x.dtype}{list(x.shape)}")
    # Accumulate in float64: a float32 sum over 50,000 images loses digits.
    mean = x.reshape(len(x), -1).mean(axis=0, dtype=np.float64) / 255
    return mean.astype(np.float32)


def apply_none(x_uint8: np.ndarray) -> np.ndarray:
    """x / 255, flattened: float32 [N, D]."""
    return _flat_unit(x_uint8)


def apply_mean(x_uint8: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """x / 255 − mean, flattened: float32 [N, D]."""
    x = _flat_unit(x_uint8)
    mean = np.asarray(mean, dtype=np.float32)
    if mean.shape != x.shape[1:]:
        raise ValueError(f"mean has shape {list(mean.shape)}, images have {x.shape[1]} pixels")
    x -= mean
    return x


def preprocess(kind: str, x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Fit on `x_train` only, apply to it and to `others`: (mean, [x_train, *others]).

    The mean is zeros for kind "none", matching the run directory's preprocess.npz.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown preprocessing {kind!r}, expected one of {', '.join(KINDS)}")
    if kind == "mean":
        mean = fit_mean(x_train)
    else:
        mean = np.zeros(int(np.prod(np.shape(x_train)[1:])), dtype=np.float32)
    return mean, [apply_mean(x, mean) for x in (x_train, *others)]
