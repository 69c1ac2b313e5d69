"""Tests for bctrain.data.pipeline: ±1 targets and reproducible batch order."""

import numpy as np
import pytest

from bctrain.data import pipeline


def data(n=105):
    # Input i carries its own index, so the pairing of x and y can be checked after shuffling.
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = pipeline.to_pm1(np.arange(n) % 10)
    return x, y


def batches(ds):
    return [(bx.numpy(), by.numpy()) for bx, by in ds]


def order(ds):
    return np.concatenate([bx[:, 0] for bx, _ in batches(ds)]).astype(int)


def test_to_pm1():
    y = pipeline.to_pm1(np.array([0, 3, 9]))
    assert y.dtype == np.float32 and y.shape == (3, 10)
    assert set(np.unique(y).tolist()) == {-1.0, 1.0}
    np.testing.assert_array_equal(np.argmax(y, axis=1), [0, 3, 9])
    assert (y.sum(axis=1) == -8).all()
    with pytest.raises(ValueError):
        pipeline.to_pm1(np.array([10]))


def test_same_seed_and_epoch_give_identical_batches():
    x, y = data()
    a = batches(pipeline.train_batches(x, y, 10, seed=1, epoch=4))
    b = batches(pipeline.train_batches(x, y, 10, seed=1, epoch=4))
    assert len(a) == len(b)
    for (ax, ay), (bx, by) in zip(a, b):
        np.testing.assert_array_equal(ax, bx)
        np.testing.assert_array_equal(ay, by)


def test_other_epoch_or_seed_changes_order():
    x, y = data()
    base = order(pipeline.train_batches(x, y, 10, seed=1, epoch=4))
    assert not np.array_equal(base, order(pipeline.train_batches(x, y, 10, seed=1, epoch=5)))
    assert not np.array_equal(base, order(pipeline.train_batches(x, y, 10, seed=2, epoch=4)))


def test_remainder_dropped_and_pairs_kept():
    x, y = data(105)
    got = batches(pipeline.train_batches(x, y, 10, seed=0, epoch=0))
    assert len(got) == 10 and all(bx.shape == (10, 3) and by.shape == (10, 10) for bx, by in got)
    idx = np.concatenate([bx[:, 0] for bx, _ in got]).astype(int)
    assert len(set(idx.tolist())) == 100  # a permutation cut to 100, no repeats
    labels = np.concatenate([np.argmax(by, axis=1) for _, by in got])
    np.testing.assert_array_equal(labels, idx % 10)
    np.testing.assert_array_equal(idx, pipeline.epoch_order(105, 0, 0)[:100])


def test_eval_batches_keep_every_sample_in_order():
    x, y = data(105)
    got = batches(pipeline.eval_batches(x, np.arange(105), 10))
    assert len(got) == 11 and got[-1][0].shape == (5, 3)
    np.testing.assert_array_equal(np.concatenate([by for _, by in got]), np.arange(105))


def test_batch_larger_than_data_is_rejected():
    x, y = data(5)
    with pytest.raises(ValueError, match="batch_size 10"):
        pipeline.train_batches(x, y, 10, seed=0, epoch=0)


@pytest.mark.parametrize("chunk_batches", [1, 3, 100])
def test_memory_mapped_arrays_give_the_same_batches_in_chunks(tmp_path, monkeypatch, chunk_batches):
    x, y = data(105)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    monkeypatch.setattr(pipeline, "CHUNK_BYTES", chunk_batches * 10 * x[:1].nbytes)
    expected = batches(pipeline.train_batches(x, y, 10, seed=3, epoch=2))
    got = batches(pipeline.train_batches(mapped, y, 10, seed=3, epoch=2))
    assert len(got) == len(expected) == 10
    for (gx, gy), (ex, ey) in zip(got, expected):
        np.testing.assert_array_equal(gx, ex)
        np.testing.assert_array_equal(gy, ey)
