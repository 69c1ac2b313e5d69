"""The bundled MNIST sample written in the official CIFAR-10 and SVHN formats, for the CNN learning
check (benchmarks/cnn_check.py, issue 20 §1; paper §6: CIFAR-10 and SVHN).

The 10,000 real digits of data/mnist_sample.npz (6,000 train / 2,000 validation / 2,000 test)
become 32x32 RGB images: each 28x28 digit padded by 2 black pixels on every side (MNIST's own
background is 0) and repeated in the three channels. Labels stay the digits 0..9 (SVHN stores the
digit 0 as label 10).

Layout, so that each loader's own split rule (bctrain/data/cifar10.py, svhn.py) gives every split
real images and a test split disjoint from training. The sample's train and validation digits, in
this order, are the "training pool" (8,000); its test digits are the test split of both formats:
  - CIFAR-10 (cifar-10-python.tar.gz): the pool in five training batches of 1,600 in order; the
    loader validates on the last tenth (800, the end of the sample's validation digits) and trains
    on the rest (7,200); test_batch = the 2,000 test digits.
  - SVHN (train_32x32.mat, extra_32x32.mat, test_32x32.mat): train = the first 7/8 of the pool
    (7,000), extra = the last 1/8 (1,000); the loader holds out round(400 * 7,000 / 73,257) = 38 per
    class from train and 1 per class from extra (390 validation, 7,610 training); test = the 2,000
    test digits.
`images` (a smoke run or a test) keeps that fraction of each of the sample's splits, in order.

The writers are the official-format writers of the tests (tests/dataset_files.py). A directory is
written whole or not at all (built under a temporary name, then renamed).
"""
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from bctrain.data import cifar10, svhn
from bctrain.data.sample import load_sample

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the official-format writers are test helpers

PAD = 2  # 28 + 2 * 2 = 32
EXTRA_SHARE = 8  # the last 1/8 of the training pool is SVHN's extra file
N_SAMPLE = 10_000


def to_rgb32(x28: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> uint8 [N, 32, 32, 3]: padded with zeros, the same digit in each channel."""
    padded = np.pad(np.asarray(x28, np.uint8), ((0, 0), (PAD, PAD), (PAD, PAD)))
    return np.repeat(padded[..., None], 3, axis=3)


def pool_and_test(images: int | None = None) -> tuple:
    """(pool images, pool digits, test images, test digits) as 32x32 RGB: the sample's train then
    validation digits, and its test digits; `images` < 10,000 keeps that fraction of each split."""
    s = load_sample()
    keep = 1.0 if images is None else images / N_SAMPLE

    def head(x, y):
        n = max(1, round(len(x) * keep))
        return x[:n], y[:n]

    (xt, yt), (xv, yv), (xs, ys) = head(s.x_train, s.y_train), head(s.x_val, s.y_val), head(s.x_test, s.y_test)
    return to_rgb32(np.concatenate([xt, xv])), np.concatenate([yt, yv]), to_rgb32(xs), ys


def cifar_layout(images: int | None = None) -> dict:
    """{batch name: (images NHWC, digits)}: the pool in five training batches, the test digits in test_batch."""
    x, y, x_test, y_test = pool_and_test(images)
    parts = np.array_split(np.arange(len(x)), len(cifar10.TRAIN_BATCHES))
    out = {name: (x[i], y[i]) for name, i in zip(cifar10.TRAIN_BATCHES, parts)}
    out[cifar10.TEST_BATCH] = (x_test, y_test)
    return out


def svhn_labels(digits: np.ndarray) -> np.ndarray:
    """Digits 0..9 -> SVHN's raw labels 1..10 (the digit 0 is label 10)."""
    return np.where(digits == 0, 10, digits)


def svhn_layout(images: int | None = None) -> dict:
    """{file name: (images NHWC, raw labels 1..10)}: the pool split into train and extra, and test."""
    x, y, x_test, y_test = pool_and_test(images)
    n_train = len(x) - len(x) // EXTRA_SHARE
    return {svhn.TRAIN: (x[:n_train], svhn_labels(y[:n_train])), svhn.EXTRA: (x[n_train:], svhn_labels(y[n_train:])),
            svhn.TEST: (x_test, svhn_labels(y_test))}


def _write_cifar(directory: Path, images):
    from dataset_files import py2_pickle, write_cifar_archive
    meta = py2_pickle({"label_names": [str(d) for d in range(10)], "num_vis": cifar10.ROW})
    write_cifar_archive(directory / cifar10.ARCHIVE, cifar_layout(images), override={"batches.meta": meta})


def _write_svhn(directory: Path, images):
    from dataset_files import write_svhn_dir
    write_svhn_dir(directory, svhn_layout(images))


WRITERS = {"cifar10": _write_cifar, "svhn": _write_svhn}


def write_data(preset: str, directory, images: int | None = None) -> Path:
    """The data directory of `preset` ("cifar10" | "svhn") at `directory`: written whole (a
    temporary directory beside it, then renamed) if it does not exist, else left as it is."""
    directory = Path(directory)
    if directory.exists():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        WRITERS[preset](tmp, images)
        os.rename(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
