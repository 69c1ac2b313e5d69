"""Datasets for BinaryConnect (arXiv:1511.00363, §6 and the authors' MNIST recipe).

The package's shared contract lives here so every submodule can import it without cycles:
`DataError` (the one error users see for bad or missing data) and `Splits` (what
`load_splits` returns). `load_splits` is re-exported for `from bctrain.data import load_splits`.
TensorFlow is only imported by `bctrain.data.pipeline`, never from here.
"""

from dataclasses import dataclass

import numpy as np


class DataError(ValueError):
    """Bad, missing or unverifiable data; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Splits:
    """Train / validation / test arrays: images uint8 [N, rows, cols], labels int64 [N]."""

    name: str  # "mnist" or "mnist-sample"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where the arrays came from, for logs and metrics.json

    def counts(self) -> tuple[int, int, int]:
        return len(self.y_train), len(self.y_val), len(self.y_test)


# Imported last: mnist.py imports DataError and Splits from this (partly initialised) package.
from bctrain.data.mnist import load_splits  # noqa: E402

__all__ = ["DataError", "Splits", "load_splits"]
