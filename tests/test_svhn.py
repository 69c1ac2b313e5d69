"""bctrain.data.svhn: the official .mat files and the authors' validation rule (tiny files)."""
import numpy as np
import pytest

from bctrain.data import DataError, load_splits, svhn
from dataset_files import svhn_arrays, write_svhn_dir, write_svhn_mat


def test_splits_follow_the_authors_rule_on_small_files(tmp_path):
    arrays = svhn_arrays(n_train=60, n_extra=40, n_test=12)
    s = load_splits("svhn", data_dir=write_svhn_dir(tmp_path, arrays))
    # round(400 * 60 / 73257) and round(200 * 40 / 531131) are 0: at least 1 per class each.
    assert s.name == "svhn" and s.counts() == (100 - 20, 20, 12) and s.image_shape == (32, 32, 3)
    x_test, y_test = arrays[svhn.TEST]
    np.testing.assert_array_equal(s.x_test, x_test)
    np.testing.assert_array_equal(s.y_test, np.where(y_test == 10, 0, y_test))
    assert s.y_train.min() >= 0 and s.y_train.max() <= 9 and s.y_train.dtype == np.int64
    assert np.bincount(s.y_val, minlength=10).tolist() == [2] * 10  # one per class from each file
    # Validation and training partition train + extra: every image is in exactly one of them.
    every = np.concatenate([arrays[svhn.TRAIN][0], arrays[svhn.EXTRA][0]]).reshape(100, -1)
    used = np.concatenate([s.x_train, s.x_val]).reshape(100, -1)
    assert sorted(map(bytes, every)) == sorted(map(bytes, used))


def test_selection_is_pylearn2s_generator(tmp_path):
    arrays = svhn_arrays(n_train=60, n_extra=40, n_test=12)
    s = load_splits("svhn", data_dir=write_svhn_dir(tmp_path, arrays))
    rng = np.random.RandomState(322)
    picked = []
    for name in (svhn.TRAIN, svhn.EXTRA):
        x, y = arrays[name]
        for c in range(1, 11):
            index = np.flatnonzero(y == c)
            rng.shuffle(index)
            picked.append(x[index[0]])
    assert sorted(map(bytes, picked)) == sorted(map(bytes, s.x_val))
    # Training images stay in file order, train first.
    x_train_file = arrays[svhn.TRAIN][0]
    np.testing.assert_array_equal(s.x_train[0], next(im for im in x_train_file
                                                     if not any((im == v).all() for v in s.x_val)))


def test_official_file_sizes_give_the_papers_counts():
    assert svhn.per_class(svhn.TRAIN, 73_257) == 400 and svhn.per_class(svhn.EXTRA, 531_131) == 200
    assert 73_257 + 531_131 - 10 * (400 + 200) == 598_388


def test_nhwc_and_label_mapping(tmp_path):
    import scipy.io
    x = np.zeros((32, 32, 3, 2), np.uint8)
    x[4, 7, 2, 1] = 9  # row 4, column 7, blue, image 1 in the file's [32, 32, 3, N] layout
    scipy.io.savemat(tmp_path / "f.mat", {"X": x, "y": np.array([[10], [3]], np.uint8)})
    got, y = svhn.read_mat(tmp_path / "f.mat")
    assert got.shape == (2, 32, 32, 3) and got[1, 4, 7, 2] == 9 and got.sum() == 9
    assert svhn.digits(y).tolist() == [0, 3]


@pytest.mark.parametrize("change, message", [
    ({"X": np.zeros((32, 32, 3, 5), np.float32)}, r"X is float32\[32, 32, 3, 5\], expected uint8"),
    ({"X": np.zeros((28, 28, 3, 5), np.uint8)}, r"expected uint8 \[32, 32, 3, N\]"),
    ({"y": np.ones((4, 1), np.uint8)}, r"y has shape \[4, 1\], expected \[5, 1\]"),
    ({"y": np.array([[1], [2], [0], [4], [5]], np.uint8)}, r"label 0 at index 2 outside 1..10"),
    ({"y": np.array([[1], [2], [11], [4], [5]], np.uint8)}, r"label 11 at index 2 outside 1..10"),
    ({"y": np.array([[1], [2], [2.0 ** 70], [4], [5]])}, r"label 1180591620717411303424 at index 2 outside 1..10"),
    # D6: a character array crashed in the comparison; D9: 4.25 was truncated to 4, NaN to whatever astype gives
    ({"y": np.array(["a"] * 5)}, r"y is <U1, expected numbers 1..10 \(the official files store doubles\)"),
    ({"y": np.array([[1], [2], [4.25], [4.5], [5]])}, r"label 4.25 at index 2 is not a whole number \(2 such labels\)"),
    ({"y": np.array([[1], [2], [3], [np.nan], [5]])}, r"label nan at index 3 is not a whole number"),
    ({"y": np.array([[1], [2], [3], [4], [-np.inf]])}, r"label -inf at index 4 is not a whole number"),
    ({"y": np.array([[1], [2], [3], [4], [1 + 3j]])}, r"y is complex128, expected numbers"),
])
def test_malformed_files_are_one_line_errors(tmp_path, change, message):
    import scipy.io
    path = tmp_path / svhn.TEST
    scipy.io.savemat(path, {"X": np.zeros((32, 32, 3, 5), np.uint8), "y": np.ones((5, 1), np.uint8), **change})
    with pytest.raises(DataError, match=message) as info:
        svhn.read_mat(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_corrupt_truncated_and_missing_files(tmp_path):
    arrays = svhn_arrays()
    write_svhn_dir(tmp_path, arrays)
    data = (tmp_path / svhn.EXTRA).read_bytes()
    (tmp_path / svhn.EXTRA).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="extra_32x32.mat: not a readable SVHN .mat file"):
        load_splits("svhn", data_dir=tmp_path)
    (tmp_path / svhn.EXTRA).write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="not a readable SVHN .mat file"):
        load_splits("svhn", data_dir=tmp_path)
    (tmp_path / svhn.EXTRA).unlink()
    with pytest.raises(DataError, match="missing extra_32x32.mat"):
        load_splits("svhn", data_dir=tmp_path)


def test_whole_number_doubles_are_the_official_labels(tmp_path):
    import scipy.io
    y = np.array([[10.0], [1.0], [5.0]])
    scipy.io.savemat(tmp_path / "f.mat", {"X": np.zeros((32, 32, 3, 3), np.uint8), "y": y})
    _, labels = svhn.read_mat(tmp_path / "f.mat")
    assert labels.dtype == np.int64 and labels.tolist() == [10, 1, 5]


def test_a_directory_in_place_of_a_file_is_named_as_such(tmp_path):
    """D15: a directory named test_32x32.mat was reported as missing."""
    write_svhn_dir(tmp_path, svhn_arrays())
    (tmp_path / svhn.TEST).unlink()
    (tmp_path / svhn.TEST).mkdir()
    with pytest.raises(DataError, match=r"test_32x32.mat: a directory; expected an SVHN .mat file") as info:
        load_splits("svhn", data_dir=tmp_path)
    assert "missing" not in str(info.value)


def test_a_class_too_small_for_validation(tmp_path):
    arrays = svhn_arrays()
    x, y = arrays[svhn.TRAIN]
    arrays[svhn.TRAIN] = (x, np.where(y == 7, 8, y))
    write_svhn_dir(tmp_path, arrays)
    with pytest.raises(DataError, match="0 images of label 7, need 1 for validation"):
        load_splits("svhn", data_dir=tmp_path)


def test_reads_what_savemat_wrote(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_svhn_mat(tmp_path / "f.mat", x, [10, 1, 5])
    got, y = svhn.read_mat(tmp_path / "f.mat")
    np.testing.assert_array_equal(got, x)
    assert y.tolist() == [10, 1, 5]
