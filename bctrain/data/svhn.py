"""SVHN cropped digits (format 2) from the official .mat files (arXiv:1511.00363, §6: SVHN).

`train_32x32.mat`, `extra_32x32.mat` and `test_32x32.mat` each hold `X`, uint8 [32, 32, 3, N],
and `y`, [N, 1] with labels 1..10 where 10 means the digit 0. They are returned as NHWC uint8
[N, 32, 32, 3] with labels 0..9.

Split, the authors' rule (pylearn2's SVHN `splitted_train` / `valid`, which their svhn.py trains
on): validation = 400 images of each class from train and 200 of each class from extra, chosen by
the generator pylearn2 uses (NumPy `RandomState(322)`, each class's indices shuffled in class
order 1..10, train first, then extra); training = everything else of train + extra (598,388
images), in file order; test = all 26,032 test images. For files of other sizes (tests, subsets)
the per-class counts scale with the file: round(400 · N_train / 73,257) and
round(200 · N_extra / 531,131), at least 1 each; exactly 400 and 200 for the official files.
"""
import os
from pathlib import Path

import numpy as np

from bctrain.data.splits import DataError, Splits

TRAIN, EXTRA, TEST = "train_32x32.mat", "extra_32x32.mat", "test_32x32.mat"
OFFICIAL_SIZES = {TRAIN: 73_257, EXTRA: 531_131, TEST: 26_032}
VALID_PER_CLASS = {TRAIN: 400, EXTRA: 200}
SPLIT_SEED = 322  # pylearn2.datasets.svhn: make_np_rng(None, 322, which_method="shuffle")
N_CLASSES = 10


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 32, 32, 3], raw labels int64 [N] in 1..10) of one official file."""
    import scipy.io  # only SVHN needs it

    if not path.is_file():
        if os.path.lexists(path):  # there, but not a readable file: say what it is, not "missing"
            raise DataError(f"{path}: {_why_not_a_file(path)}; expected an SVHN .mat file")
        raise DataError(f"{path.parent}: missing {path.name}")
    try:
        mat = scipy.io.loadmat(path, variable_names=("X", "y"))
    # scipy's parser reports malformed input with whatever exception its code hits (ValueError,
    # IndexError, zlib.error, struct.error, ...): any of them means "not a readable file".
    except Exception as e:
        raise DataError(f"{path}: not a readable SVHN .mat file ({type(e).__name__}: {e})") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: expected variables X and y")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: X is {x.dtype}{list(x.shape)}, expected uint8 [32, 32, 3, N]")
    if y.shape not in ((x.shape[3], 1), (x.shape[3],)):
        raise DataError(f"{path}: y has shape {list(y.shape)}, expected [{x.shape[3]}, 1] for the {x.shape[3]} images")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), checked_labels(y.reshape(-1), path)


def checked_labels(y: np.ndarray, path: Path) -> np.ndarray:
    """int64 labels 1..10 of a file's `y`: numbers (the official files store doubles), each a
    whole number in 1..10; anything else is refused rather than truncated or wrapped."""
    if y.dtype.kind not in "uif":
        raise DataError(f"{path}: y is {y.dtype}, expected numbers 1..{N_CLASSES} (the official files store doubles)")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
        if bad.size:
            raise DataError(f"{path}: label {y[bad[0]]} at index {bad[0]} is not a whole number "
                            f"({bad.size} such labels)")
    bad = np.flatnonzero((y < 1) | (y > N_CLASSES))
    if bad.size:
        raise DataError(f"{path}: label {int(y[bad[0]])} at index {bad[0]} outside 1..{N_CLASSES} "
                        f"({bad.size} such labels)")
    return y.astype(np.int64)


def _why_not_a_file(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as e:  # a symbolic link loop or to nothing, a permission problem
        return e.strerror
    return "a directory" if path.is_dir() else "not a regular file"


def digits(labels: np.ndarray) -> np.ndarray:
    """Raw SVHN labels 1..10 -> digits 0..9 (label 10 is the digit 0)."""
    return np.where(labels == 10, 0, labels)


def per_class(name: str, n: int) -> int:
    """Validation images per class taken from file `name` holding `n` images."""
    return max(1, int(VALID_PER_CLASS[name] * n / OFFICIAL_SIZES[name] + 0.5))


def validation_mask(labels: np.ndarray, count: int, rng: np.random.RandomState, where: Path) -> np.ndarray:
    """Boolean mask of `count` images per class (raw labels 1..10), drawn as pylearn2 does."""
    mask = np.zeros(len(labels), bool)
    for c in range(1, N_CLASSES + 1):
        index = np.flatnonzero(labels == c)
        if len(index) < count:
            raise DataError(f"{where}: {len(index)} images of label {c}, need {count} for validation")
        rng.shuffle(index)
        mask[index[:count]] = True
    return mask


def read_dir(directory: Path, source: str) -> Splits:
    """SVHN splits from a directory holding the three official .mat files."""
    directory = Path(directory)
    rng = np.random.RandomState(SPLIT_SEED)
    train_parts, val_parts = [], []
    for name in (TRAIN, EXTRA):
        x, y = read_mat(directory / name)
        val = validation_mask(y, per_class(name, len(y)), rng, directory / name)
        train_parts.append((x[~val], y[~val]))
        val_parts.append((x[val], y[val]))
        del x
    x_test, y_test = read_mat(directory / TEST)

    def join(parts, i):
        return np.concatenate([p[i] for p in parts])

    return Splits(name="svhn", x_train=join(train_parts, 0), y_train=digits(join(train_parts, 1)),
                  x_val=join(val_parts, 0), y_val=digits(join(val_parts, 1)),
                  x_test=x_test, y_test=digits(y_test), source=source)
