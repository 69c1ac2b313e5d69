"""CIFAR-10 from the official "python version" files (arXiv:1511.00363, §6: CIFAR-10).

The archive `cifar-10-python.tar.gz` holds `cifar-10-batches-py/data_batch_1` .. `data_batch_5`
and `test_batch`: Python 2 pickles of dicts whose `data` is a uint8 array [N, 3072] (per image
1024 red, 1024 green, 1024 blue values, each 32x32 row-major) and whose `labels` is a list of N
ints in 0..9. They are returned as NHWC uint8 [N, 32, 32, 3].

A pickle can run arbitrary code when loaded, so these files are read by `SafeUnpickler`, which
builds only what the official batches contain (dicts, lists, strings, numbers, and NumPy arrays
through NumPy's array reconstructor); any other global is refused. Members are read from the
archive in memory (at most MAX_BATCH_BYTES each), never extracted to disk; the archive's gzip CRC
and length are checked, and its SHA-256 is computed in the same single pass (`Splits.file_sha256`).

Split (authors' cifar10.py): train = the first 45,000 training images, validation = the last
5,000, test = the 10,000 test images. Training batches of other sizes (tests, subsets) keep the
proportion: validation = the last round(N / 10) images (half up).

`read_dir` accepts a directory holding the archive, its extracted `cifar-10-batches-py/`, or the
batch files themselves.
"""
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from bctrain.data.splits import DataError, Splits

ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
SIDE, CHANNELS, N_CLASSES = 32, 3, 10
ROW = SIDE * SIDE * CHANNELS
# An official batch is about 31 MB (10,000 images of 3,072 bytes, their labels, file names and the
# pickle's framing); a member or file declaring more than twice that is refused before it is read,
# so a small archive cannot make the reader allocate gigabytes.
MAX_BATCH_BYTES = 64 * 2 ** 20
READ_CHUNK = 2 ** 20


def _reconstruct(cls, shape, dtype):
    """numpy's ndarray reconstructor, limited to plain ndarrays (the pickle then sets its state)."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to build {cls!r}")
    return np.ndarray(shape, dtype)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can build only plain containers and NumPy arrays (no arbitrary globals)."""

    ALLOWED = {
        # Written by the numpy of 2009 (numpy.core) and by numpy >= 2 (numpy._core).
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")
        return self.ALLOWED[(module, name)]


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 32, 32, 3], labels int64 [N]) of one pickled batch."""
    try:
        # latin1: the batches are Python 2 pickles; numpy array bytes come back unchanged.
        batch = SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError) as e:
        raise DataError(f"{where}: not a readable CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataError(f"{where}: expected a dict with 'data' and 'labels'")
    x, labels = batch["data"], batch["labels"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != ROW:
        shape = f"{x.dtype}{list(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"{where}: data is {shape}, expected uint8 [N, {ROW}]")
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise DataError(f"{where}: labels must be a list of ints")
    if len(labels) != len(x):
        raise DataError(f"{where}: {len(labels)} labels for {len(x)} images")
    # Checked as Python ints, before NumPy sees them: a label of 2**70 does not fit an int64.
    bad = [i for i, v in enumerate(labels) if not 0 <= v < N_CLASSES]
    if bad:
        raise DataError(f"{where}: label {labels[bad[0]]} at index {bad[0]} outside 0..{N_CLASSES - 1} "
                        f"({len(bad)} such labels)")
    y = np.asarray(labels, dtype=np.int64)
    # Channel-major rows -> NHWC.
    return x.reshape(-1, CHANNELS, SIDE, SIDE).transpose(0, 2, 3, 1).copy(), y


class _Hashing:
    """A file read front to back, hashing every byte read through it (SHA-256)."""

    def __init__(self, fh):
        self.fh, self.sha256 = fh, hashlib.sha256()

    def read(self, size=-1) -> bytes:
        data = self.fh.read(size)
        self.sha256.update(data)
        return data


def _too_large(size: int, where) -> DataError:
    return DataError(f"{where}: {size:,} bytes, more than a CIFAR-10 batch can be "
                     f"({MAX_BATCH_BYTES:,}); not a CIFAR-10 batch")


def _read_archive(path: Path) -> tuple[dict, str]:
    """({batch name: bytes} of the six batches inside the archive, the archive's SHA-256).

    The archive is read once, as a stream: the gzip layer is read to its end, so its CRC and
    length are checked (tarfile stops at the end-of-archive blocks, before the gzip trailer, and so
    would train on damaged images), and the SHA-256 is computed on the way."""
    wanted = {f"{FOLDER}/{name}": name for name in TRAIN_BATCHES + (TEST_BATCH,)}
    found = {}
    try:
        with open(path, "rb") as raw:
            hashing = _Hashing(raw)
            with gzip.GzipFile(fileobj=hashing, mode="rb") as gz:
                with tarfile.open(fileobj=gz, mode="r|") as tar:
                    for member in tar:
                        if member.name in wanted and member.isfile():
                            if member.size > MAX_BATCH_BYTES:  # from the header, before reading it
                                raise _too_large(member.size, f"{path}:{member.name}")
                            found[wanted[member.name]] = tar.extractfile(member).read()
                while gz.read(READ_CHUNK):  # the rest, up to and including the CRC and length
                    pass
            while hashing.read(READ_CHUNK):
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or truncated archive ({type(e).__name__}: {e})") from None
    missing = [n for n in wanted.values() if n not in found]
    if missing:
        raise DataError(f"{path}: no {FOLDER}/{missing[0]} in the archive")
    return found, hashing.sha256.hexdigest()


def _read_folder(folder: Path) -> dict:
    out = {}
    for name in TRAIN_BATCHES + (TEST_BATCH,):
        try:
            with open(folder / name, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > MAX_BATCH_BYTES:
                    raise _too_large(size, folder / name)
                out[name] = fh.read()
        except OSError as e:
            raise DataError(f"{folder / name}: cannot read ({e.strerror or e})") from None
    return out


def find_batches(directory: Path) -> tuple[dict, Path, str | None]:
    """({batch name: bytes}, where they came from, the archive's SHA-256 or None for batch files)
    for a directory holding the archive, the extracted folder, or the batch files."""
    directory = Path(directory)
    for folder in (directory / FOLDER, directory):
        if (folder / TRAIN_BATCHES[0]).is_file():
            return _read_folder(folder), folder, None
    if (directory / ARCHIVE).is_file():
        batches, sha256 = _read_archive(directory / ARCHIVE)
        return batches, directory / ARCHIVE, sha256
    raise DataError(f"{directory}: no {ARCHIVE}, {FOLDER}/ or {TRAIN_BATCHES[0]} found")


def n_validation(n_train_file: int) -> int:
    """Validation size for N training images: round(N / 10), half up (5,000 of 50,000)."""
    return (n_train_file + 5) // 10


def read_dir(directory: Path, source: str) -> Splits:
    """CIFAR-10 splits from a directory holding the official files."""
    batches, where, sha256 = find_batches(directory)
    parsed = {name: parse_batch(data, f"{where}:{name}" if where.suffix else str(where / name))
              for name, data in batches.items()}
    x = np.concatenate([parsed[n][0] for n in TRAIN_BATCHES])
    y = np.concatenate([parsed[n][1] for n in TRAIN_BATCHES])
    n_val = n_validation(len(x))
    n_train = len(x) - n_val
    if n_val == 0 or n_train == 0:
        raise DataError(f"{where}: {len(x)} training images, need at least 2 for a validation split")
    x_test, y_test = parsed[TEST_BATCH]
    return Splits(name="cifar10", x_train=x[:n_train], y_train=y[:n_train], x_val=x[n_train:],
                  y_val=y[n_train:], x_test=x_test, y_test=y_test, source=source,
                  file_sha256=((str(where), sha256),) if sha256 else ())
