"""bctrain.data.cache: preprocessed arrays cached by data, kind, settings and code; never partial."""
import numpy as np
import pytest

from bctrain.data import cache, preprocess
from bctrain.data.splits import Splits


def _splits(seed=0, n=(12, 4, 5), name="svhn"):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(0, 256, (k, 32, 32, 3), dtype=np.uint8) for k in n]
    ys = [rng.integers(0, 10, k) for k in n]
    return Splits(name, xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], source="test")


def _entries():
    root = cache.download.cache_dir() / "preprocessed"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_second_call_reads_the_cache_and_equals_a_fresh_computation(monkeypatch, capsys):
    s = _splits()
    params, arrays = cache.preprocessed(s, "gcn_lcn")
    assert len(_entries()) == 1 and "preprocessing svhn (gcn_lcn)" in capsys.readouterr().err
    _, fresh = cache.compute(s, "gcn_lcn", ("train",))
    for name in cache.SPLITS:
        assert isinstance(arrays[name], np.memmap) and arrays[name].dtype == np.float32
        np.testing.assert_array_equal(arrays[name], fresh[name])
    monkeypatch.setattr(cache, "compute", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    _, again = cache.preprocessed(s, "gcn_lcn")
    np.testing.assert_array_equal(again["test"], fresh["test"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("change", ["data", "labels", "settings", "code", "fit_on"])
def test_a_cache_built_with_anything_else_is_never_used(monkeypatch, change):
    s = _splits()
    cache.preprocessed(s, "gcn_lcn")
    if change == "data":
        s = _splits(seed=1)
    elif change == "labels":
        s = Splits(s.name, s.x_train, (s.y_train + 1) % 10, s.x_val, s.y_val, s.x_test, s.y_test, "test")
    elif change == "settings":
        monkeypatch.setitem(preprocess.KINDS["gcn_lcn"].settings, "lcn_threshold", 2e-4)
    elif change == "code":
        monkeypatch.setattr(cache, "code_version", lambda: "another version")
    calls = []
    real = cache.compute
    monkeypatch.setattr(cache, "compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache.preprocessed(s, "gcn_lcn", fit_on=("train", "val") if change == "fit_on" else ("train",))
    assert calls == [1] and len(_entries()) == 2


def test_code_version_follows_the_source_of_the_preprocessing_modules():
    assert len(cache.code_version()) == 64
    assert {m.__name__ for m in cache.CODE} >= {"bctrain.data.gcn", "bctrain.data.zca", "bctrain.data.lcn",
                                               "bctrain.data.preprocess"}


def test_a_failed_build_leaves_nothing_behind(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("interrupted")
    monkeypatch.setattr(cache, "compute", boom)
    with pytest.raises(RuntimeError):
        cache.preprocessed(_splits(), "gcn_lcn")
    root = cache.download.cache_dir() / "preprocessed"
    assert list(root.iterdir()) == []


def test_a_damaged_entry_is_rebuilt(capsys):
    s = _splits()
    _, first = cache.preprocessed(s, "gcn_lcn")
    expected = np.array(first["val"])
    (entry,) = _entries()
    path = cache.download.cache_dir() / "preprocessed" / entry / "x_val.npy"
    path.write_bytes(path.read_bytes()[:100])
    _, again = cache.preprocessed(s, "gcn_lcn")
    assert "rebuilding the damaged preprocessing cache" in capsys.readouterr().err
    np.testing.assert_array_equal(again["val"], expected)


@pytest.mark.parametrize("name, junk", [("params.npz", b"junk"), ("x_test.npy", b"junk" * 100),
                                         ("params.npz", b"\x93NUMPY not a zip")])
def test_a_junk_file_in_an_entry_is_named_plainly_and_the_entry_rebuilt(capsys, name, junk):
    """D15: junk bytes were reported as "pickled (object) data", which they are not."""
    s = _splits()
    _, first = cache.preprocessed(s, "gcn_lcn")
    expected = np.array(first["test"])
    (entry,) = _entries()
    (cache.download.cache_dir() / "preprocessed" / entry / name).write_bytes(junk)
    _, again = cache.preprocessed(s, "gcn_lcn")
    err = capsys.readouterr().err
    assert "rebuilding the damaged preprocessing cache" in err and f"({name} is not an .np" in err, err
    assert "pickled" not in err
    np.testing.assert_array_equal(again["test"], expected)


def test_uncached_kinds_compute_in_memory_and_fit_on_the_named_splits():
    s = _splits(n=(6, 3, 2), name="mnist")
    params, arrays = cache.preprocessed(s, "mean", fit_on=("train", "val"))
    assert _entries() == []
    np.testing.assert_allclose(params["mean"], np.concatenate([s.x_train, s.x_val]).reshape(9, -1).mean(axis=0) / 255,
                               rtol=1e-6)
    assert arrays["test"].shape == (2, 3072) and not isinstance(arrays["test"], np.memmap)
    with pytest.raises(ValueError, match="never fitted on the test split"):
        cache.preprocessed(s, "mean", fit_on=("test",))


def test_unwritable_cache_is_a_data_error(tmp_path, monkeypatch):
    from bctrain.data import DataError
    (tmp_path / "a file").write_text("not a directory")
    monkeypatch.setenv("BCNN_CACHE", str(tmp_path / "a file"))
    with pytest.raises(DataError, match="cannot write the preprocessing cache"):
        cache.preprocessed(_splits(), "gcn_lcn")
