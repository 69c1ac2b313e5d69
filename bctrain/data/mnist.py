"""MNIST train / validation / test splits (arXiv:1511.00363, §6: MNIST; authors' mnist.py).

The paper's split: train = the first 50,000 images of the training file, validation = the
last 10,000, test = the 10,000 of the test file. For a data directory whose training file is
not 60,000 images long the same rule is applied proportionally: validation = the last
round(N / 6) images (rounded half up), which is exactly 10,000 for N = 60,000.

Where the data comes from (a data directory, the verified cache, a download, the bundled sample)
is decided by `bctrain.data.registry.load_splits`; this module parses a directory holding the four
IDX files (gzipped or not).
"""

from pathlib import Path

from bccommon.digests import sha256_file
from bctrain.data import idx
from bctrain.data.splits import DataError, Splits

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def n_validation(n_train_file: int) -> int:
    """Validation size for a training file of `n_train_file` images: round(N / 6), half up."""
    return (n_train_file + 3) // 6


def read_dir(directory: Path, source: str) -> Splits:
    """Splits from a directory holding the four MNIST IDX files."""
    directory = Path(directory)
    train_images, train_labels, test_images, test_labels = (
        idx.find_file(directory, name) for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
    )
    x, y = idx.read_pair(train_images, train_labels)
    x_test, y_test = idx.read_pair(test_images, test_labels)
    if x_test.shape[1:] != x.shape[1:]:
        raise DataError(
            f"{test_images}: images are {x_test.shape[1]}x{x_test.shape[2]}, "
            f"training images in {train_images.name} are {x.shape[1]}x{x.shape[2]}"
        )

    n_val = n_validation(len(x))
    n_train = len(x) - n_val
    if n_val == 0 or n_train == 0:
        raise DataError(f"{train_images}: {len(x)} training images, need at least 3 for a validation split")
    return Splits(
        name="mnist",
        # 11 MB read a second time: cheap, and the gzipped files are the ones with published checksums
        file_sha256=tuple((str(p), sha256_file(p)) for p in (train_images, train_labels, test_images, test_labels)
                          if p.name.endswith(".gz")),
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_val=x[n_train:],
        y_val=y[n_train:],
        x_test=x_test,
        y_test=y_test,
        source=source,
    )
