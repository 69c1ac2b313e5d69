"""Tiny finished run directories and synthetic test data for the bcexport tests (paper §9).

`make_run_dir` writes what training leaves behind (config.json, best.npz, preprocess.npz,
metrics.json) for a small network with random weights: some latent w exactly 0 (sign(0) = +1), BN
statistics calibrated on synthetic images preprocessed with the config's kind so activations have
realistic scales, gamma with some negative values. Runs on 32x32x3 images (the CNN presets, cut
down) get preprocessing parameters of the right form: a symmetric positive definite ZCA matrix
for gcn_zca (fitting one over 3,072 dimensions takes ~10 s; the fit is tested in test_zca.py).
The pytest fixtures built from these helpers are in conftest.py.
"""
import dataclasses
import json
import os

import numpy as np

from bctrain.config import with_overrides
from bctrain.paper.arch import layer_specs
from bctrain.data.preprocess import KINDS
from bcexport.reference import conv3, max_pool2

N_TEST = 300


def mlp_config(**overrides):
    return with_overrides("mnist", hidden=(32, 16), epochs=1, **overrides)


def cnn_config():
    return dataclasses.replace(mlp_config(), input_shape=(8, 8, 3), conv=(4, 8), pool=(0, 1),
                               hidden=(16,))


def small_preset(preset, **overrides):
    """The preset's dataset, input and preprocessing with a small network (two convs, one pool)."""
    return with_overrides(preset, **{"conv": (4, 8), "pool": (0, 1), "hidden": (16,), "epochs": 1, **overrides})


def preprocess_params(cfg, seed=0) -> dict:
    """Fitted-parameter stand-ins of the config's kind, for synthetic run directories."""
    rng = np.random.default_rng(seed + 3)
    d = int(np.prod(cfg.input_shape))
    if cfg.preprocess == "gcn_zca":
        a = rng.normal(0, 0.02, (d, d))
        return {"zca_mean": rng.normal(0, 0.3, d).astype(np.float32),
                "zca_p": (np.eye(d) * 2.0 + (a + a.T) / 2).astype(np.float32)}
    return KINDS[cfg.preprocess].fit(synthetic_pixels(image_shape(cfg), 500, seed + 3))


def image_shape(cfg):
    return (28, 28) if cfg.input_shape == (784,) else cfg.input_shape


def synthetic_pixels(shape, n=N_TEST, seed=0) -> np.ndarray:
    """uint8 images, mostly zero like MNIST digits."""
    rng = np.random.default_rng(seed)
    on = rng.random((n, *shape)) < 0.25
    return (rng.integers(1, 256, (n, *shape)) * on).astype(np.uint8)


def synthetic_test_data(cfg, n=N_TEST, seed=1):
    """(pixels uint8 [N, 28, 28] or [N, *input_shape], labels int64 [N], name)."""
    labels = np.random.default_rng(seed).integers(0, cfg.n_classes, n).astype(np.int64)
    return synthetic_pixels(image_shape(cfg), n, seed), labels, "synthetic"


def random_weights(cfg, params, seed=0) -> dict:
    """best.npz-style weights; BN mean/std near the statistics of synthetic preprocessed inputs."""
    rng = np.random.default_rng(seed)
    pixels = synthetic_pixels(image_shape(cfg), 200, seed + 7)
    x = KINDS[cfg.preprocess].apply(pixels, params).reshape(200, *cfg.input_shape)
    out = {}
    for i, s in enumerate(layer_specs(cfg)):
        shape = (3, 3, s.n_in, s.n_out) if s.kind == "conv" else (s.n_in, s.n_out)
        w = rng.uniform(-s.h, s.h, shape).astype(np.float32)
        w.reshape(-1)[rng.choice(w.size, max(1, w.size // 20), replace=False)] = 0.0
        b = rng.normal(0, 0.1, s.n_out).astype(np.float32)
        wb = np.where(w >= 0, s.h, -s.h)
        z = conv3(x, wb) if s.kind == "conv" else x.reshape(len(x), -1) @ wb
        z = (max_pool2(z) if s.pool else z) + b
        axes = tuple(range(z.ndim - 1))
        gamma = rng.normal(1.0, 0.5, s.n_out)
        gamma[0] = -abs(gamma[0])
        out.update({f"{i}/w": w, f"{i}/b": b, f"{i}/gamma": gamma,
                    f"{i}/beta": rng.normal(0, 0.3, s.n_out),
                    f"{i}/mean": z.mean(axis=axes) + rng.normal(0, 0.05, s.n_out),
                    f"{i}/std": z.std(axis=axes) * rng.uniform(0.8, 1.2, s.n_out) + 1e-3})
        y = (z - out[f"{i}/mean"]) * gamma / (out[f"{i}/std"] + cfg.bn_eps) + out[f"{i}/beta"]
        x = np.where(y >= 0, 1.0, -1.0) if s.act == "sign" else np.maximum(y, 0) if s.relu else y
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def make_run_dir(path, cfg, seed=0, params=None) -> str:
    """A finished run directory for `cfg` with random weights and the preprocessing parameters
    `params` (default: `preprocess_params`); returns its path."""
    os.makedirs(path, exist_ok=True)
    params = preprocess_params(cfg, seed) if params is None else params
    with open(os.path.join(path, "config.json"), "w") as fh:
        fh.write(cfg.to_json())
    np.savez(os.path.join(path, "best.npz"), **random_weights(cfg, params, seed))
    np.savez(os.path.join(path, "preprocess.npz"), kind=np.array(cfg.preprocess), **params)
    with open(os.path.join(path, "metrics.json"), "w") as fh:
        json.dump({"dataset": "synthetic", "data_dir": None, "preset": cfg.preset,
                   "binarize": cfg.binarize, "best_epoch": 1, "test_error": 0.9}, fh)
    return str(path)


def synthetic_train_loader(cfg, n=N_TEST, seed=5):
    """A `load_train` for bcexport.onnx.export.export_run: Splits of synthetic images, whatever the
    run's dataset (the training split `n` images, the others empty)."""
    from bctrain.data.splits import Splits
    pixels, labels, _ = synthetic_test_data(cfg, n, seed)
    empty = (pixels[:0], labels[:0])
    return lambda run_dir, data_dir: Splits("synthetic", pixels, labels, *empty, *empty, "synthetic")


def synthetic_loader(cfg, n=N_TEST):
    """A `load_test` for bcexport.verify.verify_run that ignores the run's dataset."""
    return lambda run_dir, data_dir: synthetic_test_data(cfg, n)
