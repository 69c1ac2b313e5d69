"""The datasets, listed once (arXiv:1511.00363, §6): files, checksums, loader, shapes, splits.

Each entry says where a dataset's official files come from (URLs tried in order, published
SHA-256; data/SOURCES.md), which function parses a directory holding them into `Splits`, the image
shape, how the splits are made, the default preprocessing kind (`bctrain.data.preprocess.KINDS`)
and which splits its parameters are fitted on. `load_splits` is the one way data is loaded:
an explicit data directory, else the verified cache, else a download, else (MNIST only) the
bundled sample. A new dataset is one module with a `read_dir(directory, source) -> Splits` and one
entry here.

Readers are named as "module:function" and imported when used, so that this table (and
`bctrain.config`, which takes its dataset names from it) stays stdlib-only.
"""
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from bctrain.data import download
from bctrain.data.splits import DataError, Splits


@dataclass(frozen=True)
class RemoteFile:
    """One official file: its name in the cache, its published SHA-256, the URLs to try in order."""

    name: str
    sha256: str
    urls: tuple
    size: int  # bytes, as published (for messages and docs; the checksum is what is checked)


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str            # for messages
    image_shape: tuple    # one raw image: (rows, cols) or (rows, cols, channels), NHWC
    n_classes: int
    files: tuple          # RemoteFile, official files; () for data bundled with the repository
    reader: str           # "module:function": read_dir(directory, source) -> Splits, or load() if bundled
    splits: str           # how train / validation / test are made (docs and --help)
    preprocess: str       # default preprocessing kind
    fit_on: tuple = ("train",)  # splits the preprocessing parameters are fitted on (never "test")
    fallback: str = ""    # dataset used when the files can be neither found nor downloaded

    def read_function(self):
        module, function = self.reader.split(":")
        return getattr(importlib.import_module(module), function)


MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",  # TensorFlow Datasets
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision
)


def _mnist_file(name, sha256, size) -> RemoteFile:
    return RemoteFile(name, sha256, tuple(m + name for m in MNIST_MIRRORS), size)


SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"

DATASETS = {d.name: d for d in (
    Dataset("mnist", "full MNIST", (28, 28), 10, (
        _mnist_file("train-images-idx3-ubyte.gz",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9_912_422),
        _mnist_file("train-labels-idx1-ubyte.gz",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28_881),
        _mnist_file("t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877),
        _mnist_file("t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542),
    ), "bctrain.data.mnist:read_dir", "first 50,000 / last 10,000 of the training file / 10,000 test images",
        "mean", fallback="mnist-sample"),
    Dataset("mnist-sample", "the bundled sample data/mnist_sample.npz", (28, 28), 10, (), "bctrain.data.sample:load_sample",
            "6,000 / 2,000 / 2,000 real MNIST digits bundled in data/mnist_sample.npz", "mean"),
    Dataset("cifar10", "CIFAR-10", (32, 32, 3), 10, (
        RemoteFile("cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                   ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), 170_498_071),
    ), "bctrain.data.cifar10:read_dir", "first 45,000 / last 5,000 of the 50,000 training images / 10,000 test",
        # The authors' ZCA (pylearn2 make_cifar10_gcn_whitened.py) is fitted on all 50,000 training
        # images, validation included; the test set never is.
        "gcn_zca", fit_on=("train", "val")),
    Dataset("svhn", "SVHN", (32, 32, 3), 10, (
        RemoteFile("train_32x32.mat", "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8",
                   (SVHN_URL + "train_32x32.mat",), 182_040_794),
        RemoteFile("test_32x32.mat", "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b",
                   (SVHN_URL + "test_32x32.mat",), 64_275_384),
        RemoteFile("extra_32x32.mat", "a133a4beb38a00fcdda90c9489e0c04f900b660ce8a316a5e854838379a71eb3",
                   (SVHN_URL + "extra_32x32.mat",), 1_329_278_602),
    ), "bctrain.data.svhn:read_dir", "train + extra minus 6,000 held out (400 per class from train, 200 per "
        "class from extra) = 598,388 / 6,000 / 26,032 test", "gcn_lcn"),
)}


def get(name: str) -> Dataset:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}, expected one of {', '.join(DATASETS)}")
    return DATASETS[name]


def check_data_dir(dataset: str, data_dir: str | Path | None):
    """Refuse (DataError) a data directory `dataset` cannot use: given for a bundled dataset, or
    missing, a file, a symbolic-link loop or unreadable. Cheap, so callers ask before loading TensorFlow."""
    entry = get(dataset)
    if data_dir is None:
        return
    if not entry.files:  # it would be ignored, yet recorded in metrics.json
        raise DataError(f"data directory {data_dir}: {dataset} is bundled and reads none (--data-dir is "
                        f"for {', '.join(d.name for d in DATASETS.values() if d.files)})")
    directory = Path(data_dir)
    try:
        if directory.is_dir():
            return
        directory.stat()
    except FileNotFoundError:
        raise DataError(f"{directory}: data directory does not exist") from None
    except OSError as e:  # a symbolic link loop, a permission problem
        raise DataError(f"{directory}: {e.strerror}; expected a data directory") from None
    raise DataError(f"{directory}: not a directory; expected a data directory")


def unofficial(entry: Dataset, file_sha256) -> list:
    """The paths of `file_sha256` ((path, SHA-256), ...) that carry an official file's name but
    not its published SHA-256 (files under other names have no published checksum to compare)."""
    published = {f.name: f.sha256 for f in entry.files}
    return [path for path, sha256 in file_sha256 if published.get(Path(path).name, sha256) != sha256]


def notice_unofficial(entry: Dataset, file_sha256, out=None):
    """One notice line when data-directory files are not the official ones; they are used as given
    (a user's own files in the official format are allowed)."""
    other = unofficial(entry, file_sha256)
    if other:
        print(f"notice: {', '.join(other)}: not the official {entry.title} file{'s' if len(other) > 1 else ''} "
              "(SHA-256 other than the published one, data/SOURCES.md); used as given", file=out or sys.stderr)


def load_splits(dataset: str = "mnist", data_dir: str | Path | None = None,
                allow_download: bool = True, allow_sample: bool = True) -> Splits:
    """The splits of `dataset`, from `data_dir` (never falling back; files that are not the official
    ones get a notice), else the verified cache, else a download (if `allow_download`), else the
    entry's fallback (if `allow_sample`), announced on stderr."""
    entry = get(dataset)
    read = entry.read_function()
    check_data_dir(dataset, data_dir)
    if not entry.files:
        return read()
    if data_dir is not None:
        splits = read(Path(data_dir), source=f"{entry.title} files in {data_dir}")
        notice_unofficial(entry, splits.file_sha256)
        return splits
    try:
        directory = download.ensure_files(entry.name, entry.files, allow_download=allow_download)
    except DataError as e:
        if not (allow_sample and entry.fallback) or isinstance(e, download.CacheConflict):
            raise  # a conflict is the user's own file: say so and stop, never train on something else
        splits = load_splits(entry.fallback)
        n_train, n_val, n_test = splits.counts()
        print(f"notice: {entry.title} unavailable ({e}); using {get(entry.fallback).title} "
              f"({n_train:,} train / {n_val:,} validation / {n_test:,} test)", file=sys.stderr)
        return splits
    return read(directory, source=f"verified {entry.title} cache {directory}")
