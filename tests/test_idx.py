"""Tests for bctrain.data.idx: the IDX reader and its validation, on files written here."""

import gzip
import struct

import numpy as np
import pytest

from bctrain.data import DataError
from bctrain.data import idx


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    magic = idx.magic_for(array.ndim) if magic is None else magic
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def write(path, data: bytes):
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def images(n=5, rows=4, cols=3):
    return np.arange(n * rows * cols, dtype=np.uint8).reshape(n, rows, cols)


def error_for(path, reader=idx.read_labels) -> str:
    with pytest.raises(DataError) as info:
        reader(path)
    message = str(info.value)
    assert "\n" not in message and path.name in message
    return message


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_reads_gzipped_and_plain_files(tmp_path, suffix):
    x = images()
    y = np.array([0, 9, 3, 3, 1])
    xp = write(tmp_path / f"train-images-idx3-ubyte{suffix}", idx_bytes(x))
    yp = write(tmp_path / f"train-labels-idx1-ubyte{suffix}", idx_bytes(y))
    got_x, got_y = idx.read_pair(xp, yp)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert got_x.dtype == np.uint8 and got_y.dtype == np.int64
    assert got_x.flags.writeable


def test_find_file_accepts_both_names(tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    plain = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes([1]))
    assert idx.find_file(tmp_path, name) == plain
    gz = write(tmp_path / name, idx_bytes([1]))
    assert idx.find_file(tmp_path, name) == gz
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte.gz"):
        idx.find_file(tmp_path, "train-images-idx3-ubyte.gz")


def test_wrong_magic_names_file_and_numbers(tmp_path):
    path = write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(images(), magic=0x00000802))
    message = error_for(path)
    assert "bad magic number 0x00000802, expected 0x00000801" in message


def test_images_read_as_labels_is_a_dimension_error(tmp_path):
    path = write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(images()))
    assert "3 dimensions, expected 1" in error_for(path)


def test_wrong_element_type(tmp_path):
    path = write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(images(), magic=0x00000D03))
    assert "element type 0x0D" in error_for(path, idx.read_images)


def test_truncated_data(tmp_path):
    path = write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images())[:-7])
    assert "truncated data" in error_for(path, idx.read_images)


def test_truncated_header(tmp_path):
    path = write(tmp_path / "train-images-idx3-ubyte", idx_bytes(images())[:9])
    assert "truncated header" in error_for(path, idx.read_images)


def test_trailing_data(tmp_path):
    path = write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes([1, 2, 3]) + b"\0\0")
    assert "2 bytes of trailing data" in error_for(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(1000)))[:-20])
    assert "corrupt gzip" in error_for(path)


def test_label_out_of_range(tmp_path):
    path = write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes([0, 9, 10, 3]))
    assert "label 10 at index 2 outside 0..9" in error_for(path)


def test_image_label_count_mismatch(tmp_path):
    xp = write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(images(n=5)))
    yp = write(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes([1, 2, 3, 4]))
    with pytest.raises(DataError) as info:
        idx.read_pair(xp, yp)
    assert str(info.value).startswith(str(yp))
    assert "4 labels for the 5 images in t10k-images-idx3-ubyte.gz" in str(info.value)


def test_a_header_whose_size_overflows_int64_is_a_data_error(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 0x00000803, 2 ** 31, 2 ** 31, 4) + bytes(16))
    with pytest.raises(DataError, match="truncated"):
        idx.read_idx(path, 3)
