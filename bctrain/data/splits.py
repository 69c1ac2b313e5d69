"""What every dataset loader returns or raises (arXiv:1511.00363, §6: train / validation / test).

`DataError` is the one error users see for bad or missing data; `Splits` holds the three splits
of a dataset as raw images. This module imports nothing else of the package, so every loader,
the registry and the download code can import it without cycles. Stdlib only.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: this module stays stdlib-only at run time
    import numpy as np


class DataError(ValueError):
    """Bad, missing or unverifiable data; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Splits:
    """Train / validation / test arrays: images uint8 [N, *image_shape] (MNIST [N, 28, 28],
    CIFAR-10 and SVHN NHWC [N, 32, 32, 3]), labels int64 [N] in 0..n_classes-1."""

    name: str  # the registry name of the dataset ("mnist", "mnist-sample", "cifar10", "svhn")
    x_train: "np.ndarray"
    y_train: "np.ndarray"
    x_val: "np.ndarray"
    y_val: "np.ndarray"
    x_test: "np.ndarray"
    y_test: "np.ndarray"
    source: str  # where the arrays came from, for logs and metrics.json
    file_sha256: tuple = ()  # ((path, SHA-256 hex), ...) of files a reader hashed while reading them

    def counts(self) -> tuple[int, int, int]:
        return len(self.y_train), len(self.y_val), len(self.y_test)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])
