"""Datasets for BinaryConnect (arXiv:1511.00363, §6): MNIST, CIFAR-10, SVHN.

`bctrain.data.splits` holds the package's shared contract (`DataError`, `Splits`) and imports
nothing else of the package; `bctrain.data.registry` lists the datasets and loads them
(`load_splits`). Both are re-exported here for `from bctrain.data import DataError, load_splits`.
TensorFlow is only imported by `bctrain.data.pipeline` (and, lazily, by the in-graph halves of the
preprocessing kinds), never from here.
"""

from bctrain.data.splits import DataError, Splits
from bctrain.data.registry import DATASETS, load_splits

__all__ = ["DATASETS", "DataError", "Splits", "load_splits"]
