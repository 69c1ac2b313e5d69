"""Reader for the IDX files that MNIST is distributed in (arXiv:1511.00363, §6: MNIST).

Format (big-endian): 2 zero bytes, element type (0x08 = unsigned byte), number of
dimensions, then one uint32 size per dimension, then the data. Images are 3-d
[N, rows, cols], labels 1-d [N]. Files may be gzipped (`name.gz`) or plain (`name`).
Every check raises `DataError` with one line naming the file and what is wrong, because a
silently misread dataset would only show up as a mysteriously bad error rate much later.
Pure NumPy and stdlib.
"""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from bctrain.data.splits import DataError

UBYTE = 0x08
IMAGE_DIMS = 3
LABEL_DIMS = 1
N_CLASSES = 10


def magic_for(ndim: int) -> int:
    return (UBYTE << 8) | ndim


def find_file(directory: Path, name: str) -> Path:
    """`directory/name.gz`, else `directory/name` (name without .gz); DataError if neither exists."""
    stem = name.removesuffix(".gz")
    for candidate in (Path(directory) / f"{stem}.gz", Path(directory) / stem):
        if candidate.is_file():
            return candidate
        if os.path.lexists(candidate):  # there, but no readable file: say why, not "missing"
            raise DataError(f"{candidate}: {_why_not_a_file(candidate)}")
    raise DataError(f"{directory}: missing {stem}.gz (or uncompressed {stem})")


def _why_not_a_file(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as e:  # a symbolic link loop or to nothing, a permission problem
        return f"{e.strerror}; expected an IDX file"
    return "not a regular file; expected an IDX file"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    # Decide by content, not by name: a renamed file should still be read correctly.
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data ({e})") from e


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX ubyte file with exactly `ndim` dimensions."""
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes, too short for an IDX header")
    expected = magic_for(ndim)
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected:
        if magic >> 16:
            why = "the first two bytes must be zero"
        elif (magic >> 8) & 0xFF != UBYTE:
            why = f"element type 0x{(magic >> 8) & 0xFF:02X}, only 0x08 (unsigned byte) is supported"
        else:
            why = f"{magic & 0xFF} dimensions, expected {ndim}"
        raise DataError(f"{path}: bad magic number 0x{magic:08X}, expected 0x{expected:08X} ({why})")

    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header ({len(data)} bytes, expected {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if min(shape) == 0:
        raise DataError(f"{path}: empty dimension in shape {shape}")

    n_bytes = math.prod(shape)  # Python ints: a crafted header cannot overflow the product
    body = len(data) - header
    dims = "x".join(str(s) for s in shape)
    if body < n_bytes:
        raise DataError(f"{path}: truncated data: header declares {dims} = {n_bytes} bytes, file has {body}")
    if body > n_bytes:
        raise DataError(f"{path}: {body - n_bytes} bytes of trailing data after the {dims} the header declares")
    # A copy, so callers get an ordinary writable array rather than a view of immutable bytes.
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def read_images(path: Path) -> np.ndarray:
    """Images uint8 [N, rows, cols]."""
    return read_idx(path, IMAGE_DIMS)


def read_labels(path: Path, n_classes: int = N_CLASSES) -> np.ndarray:
    """Labels int64 [N], each in 0..n_classes-1."""
    labels = read_idx(path, LABEL_DIMS)
    bad = np.flatnonzero(labels >= n_classes)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{path}: label {labels[i]} at index {i} outside 0..{n_classes - 1} ({bad.size} such labels)"
        )
    return labels.astype(np.int64)


def read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and their labels, checked to be equally many."""
    x = read_images(images_path)
    y = read_labels(labels_path)
    if len(x) != len(y):
        raise DataError(f"{labels_path}: {len(y)} labels for the {len(x)} images in {Path(images_path).name}")
    return x, y
