"""bctrain.data.preprocess: the kinds table, fitted on training data only, NumPy and in-graph alike."""

import numpy as np
import pytest

from bctrain.data import preprocess


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)


def test_fit_mean_is_per_pixel_mean_of_scaled_pixels(images):
    x, _ = images
    mean = preprocess.fit_mean(x)
    assert mean.dtype == np.float32 and mean.shape == (784,)
    np.testing.assert_allclose(mean, (x.astype(np.float64) / 255).reshape(50, -1).mean(axis=0), atol=1e-7)


def test_apply_mean_and_none(images):
    x, _ = images
    mean = preprocess.fit_mean(x)
    out = preprocess.apply_mean(x, mean)
    assert out.dtype == np.float32 and out.shape == (50, 784)
    np.testing.assert_allclose(out, x.reshape(50, -1) / 255.0 - mean, atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-6)
    none = preprocess.apply_none(x)
    assert none.dtype == np.float32 and none.min() >= 0 and none.max() <= 1
    np.testing.assert_allclose(none, x.reshape(50, -1) / 255.0, atol=1e-7)


def test_pm1_is_two_x_over_255_minus_one(images):
    x, _ = images
    params, (out,) = preprocess.preprocess("pm1", x)
    assert params == {} and out.dtype == np.float32 and out.shape == (50, 784)
    exact = 2 * x.reshape(50, -1).astype(np.float64) / 255 - 1
    assert np.abs(out - exact).max() <= 2 ** -24  # two roundings of values below 1: within one ulp of 1
    assert out.min() == -1.0 and out.max() == 1.0  # pixels 0 and 255 map exactly onto -1 and +1
    np.testing.assert_array_equal(preprocess.KINDS["pm1"].apply(x, {}, np.float64), exact)


def test_mean_comes_from_training_split_only(images):
    x_train, x_val = images
    params_a, (train_a, val_a) = preprocess.preprocess("mean", x_train, x_val)
    params_b, (train_b, val_b) = preprocess.preprocess("mean", x_train, 255 - x_val)
    mean_a, mean_b = params_a["mean"], params_b["mean"]
    np.testing.assert_array_equal(mean_a, mean_b)
    np.testing.assert_array_equal(train_a, train_b)
    np.testing.assert_array_equal(mean_a, preprocess.fit_mean(x_train))
    np.testing.assert_allclose(val_a, x_val.reshape(7, -1) / 255.0 - mean_a, atol=1e-6)


def test_kind_none_has_no_parameters(images):
    x_train, x_val = images
    params, (train, val) = preprocess.preprocess("none", x_train, x_val)
    assert params == {} and preprocess.KINDS["none"].param_shapes(784) == {}
    np.testing.assert_allclose(train, x_train.reshape(50, -1) / 255.0, atol=1e-7)
    assert val.shape == (7, 784)


def test_bad_inputs_are_rejected(images):
    x, _ = images
    with pytest.raises(ValueError, match="unknown preprocessing 'zca'"):
        preprocess.preprocess("zca", x)
    with pytest.raises(ValueError, match="expected uint8 images, got float32"):
        preprocess.apply_mean(x.astype(np.float32), np.zeros(784, np.float32))
    with pytest.raises(ValueError, match="mean has shape"):
        preprocess.apply_mean(x, np.zeros(100, np.float32))


def _cifar_like(n, seed):
    """Smooth random colour images (neighbouring pixels correlated, as in photographs)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 5, 5, 3)).astype(np.float64)
    fine = coarse.repeat(7, axis=1).repeat(7, axis=2)[:, :32, :32]
    return np.clip(fine + rng.normal(0, 12, fine.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def zca_params():
    """A symmetric positive definite P of ZCA's scale (a 3,072-wide eigh takes ~10 s: the fit
    itself is tested on narrow data in test_zca.py and at full width in the slow CIFAR-10 run)."""
    rng = np.random.default_rng(5)
    a = rng.normal(0, 0.02, (3072, 3072))
    return {"zca_mean": rng.normal(0, 0.5, 3072).astype(np.float32),
            "zca_p": (np.eye(3072) * 2.5 + (a + a.T) / 2).astype(np.float32)}


def test_gcn_zca_fit_streams_gcn_rows_of_the_training_images(monkeypatch):
    from bctrain.data import gcn, zca
    x = _cifar_like(12, 1)
    seen = []
    monkeypatch.setattr(zca, "fit", lambda chunks: seen.append(np.concatenate(list(chunks()))) or {})
    monkeypatch.setattr(preprocess, "FIT_CHUNK", 5)
    preprocess.KINDS["gcn_zca"].fit(x)
    np.testing.assert_array_equal(seen[0], gcn.gcn(x, 55.0, np.float64))


def test_gcn_zca_applies_zca_to_gcn_rows(zca_params):
    from bctrain.data import gcn, zca
    x = _cifar_like(30, 1)
    out = preprocess.KINDS["gcn_zca"].apply(x, zca_params)
    assert out.dtype == np.float32 and out.shape == (30, 3072)
    expected = zca.apply(gcn.gcn(x, 55.0, np.float64), zca_params, np.float64)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_gcn_lcn_is_lcn_of_gcn():
    from bctrain.data import gcn, lcn
    x = _cifar_like(6, 2)
    out = preprocess.KINDS["gcn_lcn"].apply(x, {}, np.float64)
    expected = lcn.lcn(gcn.gcn(x, 1.0, np.float64).reshape(x.shape), np.float64).reshape(6, -1)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow) if k == "gcn_zca" else k
                                  for k in sorted(preprocess.KINDS)])
def test_in_graph_preprocessing_equals_the_numpy_definition(kind, zca_params):
    """What model.raw.onnx computes (TensorFlow, float32) is the float64 NumPy definition, to
    float32 rounding."""
    import tensorflow as tf
    x = _cifar_like(20, 3)
    x[0] = 128  # a constant image
    k = preprocess.KINDS[kind]
    params = {"gcn_zca": zca_params, "mean": {"mean": preprocess.fit_mean(x)}}.get(kind, {})
    graph = tf.function(lambda p: k.graph(tf.cast(p, tf.float32), params))(tf.constant(x)).numpy()
    exact = k.apply(x, params, np.float64)
    numpy32 = k.apply(x, params)
    assert graph.dtype == numpy32.dtype == np.float32 and graph.shape == exact.shape == (20, 3072)
    # Both float32 versions are within float32 rounding of the definition, in units of 2^-24 of
    # the largest value: observed at most 2.5 (mean, none), 3 (gcn_lcn); gcn_zca is computed in float64
    # and rounded once.
    scale = np.abs(exact).max()
    bound = {"gcn_lcn": 16}.get(kind, 4) * 2 ** -24 * scale
    for out in (graph, numpy32):
        assert np.abs(out - exact).max() <= bound


def test_every_kind_declares_its_parameters(zca_params):
    x = _cifar_like(20, 4)
    for name, k in preprocess.KINDS.items():
        params = zca_params if name == "gcn_zca" else k.fit(x)  # gcn_zca's fit: test_zca.py
        assert {n: v.shape for n, v in params.items()} == k.param_shapes(3072), name
        assert all(v.dtype == np.float32 for v in params.values()), name


def test_lcn_treats_grey_images_as_one_channel():
    import tensorflow as tf
    x = _cifar_like(4, 6)[..., 0]  # [N, 32, 32]
    k = preprocess.KINDS["gcn_lcn"]
    out = k.apply(x, {}, np.float64)
    np.testing.assert_array_equal(out, k.apply(x[..., None], {}, np.float64))
    graph = tf.function(lambda p: k.graph(tf.cast(p, tf.float32), {}))(tf.constant(x)).numpy()
    assert graph.shape == (4, 1024) and np.abs(graph - out).max() <= 16 * 2 ** -24 * np.abs(out).max()
