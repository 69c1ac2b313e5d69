"""Tiny finished run directories and synthetic test data for the bcexport tests (paper §9).

`make_run_dir` writes what training leaves behind (config.json, best.npz, preprocess.npz,
metrics.json) for a small network with random weights: some latent w exactly 0 (sign(0) = +1), BN
statistics calibrated on synthetic images so activations have realistic scales, gamma with some
negative values. Test modules import the pytest fixtures by name.
"""
import dataclasses
import json
import os

import numpy as np
import pytest

from bctrain.config import with_overrides
from bctrain.arch import layer_specs
from bcexport.reference import conv3, max_pool2

N_TEST = 300


def mlp_config(**overrides):
    return with_overrides("mnist", hidden=(32, 16), epochs=1, **overrides)


def cnn_config():
    return dataclasses.replace(mlp_config(), input_shape=(8, 8, 3), conv=(4, 8), pool=(0, 1),
                               hidden=(16,))


def synthetic_pixels(shape, n=N_TEST, seed=0) -> np.ndarray:
    """uint8 images, mostly zero like MNIST digits."""
    rng = np.random.default_rng(seed)
    on = rng.random((n, *shape)) < 0.25
    return (rng.integers(1, 256, (n, *shape)) * on).astype(np.uint8)


def synthetic_test_data(cfg, n=N_TEST, seed=1):
    """(pixels uint8 [N, 28, 28] or [N, *input_shape], labels int64 [N], name)."""
    shape = (28, 28) if cfg.input_shape == (784,) else cfg.input_shape
    labels = np.random.default_rng(seed).integers(0, cfg.n_classes, n).astype(np.int64)
    return synthetic_pixels(shape, n, seed), labels, "synthetic"


def random_weights(cfg, mean, seed=0) -> dict:
    """best.npz-style weights; BN mean/std near the statistics of synthetic inputs."""
    rng = np.random.default_rng(seed)
    pixels = synthetic_pixels(cfg.input_shape, 200, seed + 7)
    x = (pixels.reshape(200, -1).astype(np.float32) / 255 - mean).reshape(200, *cfg.input_shape)
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
        x = np.maximum(y, 0) if s.relu else y
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def make_run_dir(path, cfg, seed=0) -> str:
    """A finished run directory for `cfg` with random weights; returns its path."""
    os.makedirs(path, exist_ok=True)
    n_in = int(np.prod(cfg.input_shape))
    mean = synthetic_pixels((n_in,), 500, seed + 3).astype(np.float32).mean(axis=0) / 255
    mean = mean.astype(np.float32)
    with open(os.path.join(path, "config.json"), "w") as fh:
        fh.write(cfg.to_json())
    np.savez(os.path.join(path, "best.npz"), **random_weights(cfg, mean, seed))
    np.savez(os.path.join(path, "preprocess.npz"), kind=np.array("mean"), mean=mean)
    with open(os.path.join(path, "metrics.json"), "w") as fh:
        json.dump({"dataset": "synthetic", "data_dir": None, "preset": cfg.preset,
                   "binarize": cfg.binarize, "best_epoch": 1, "test_error": 0.9}, fh)
    return str(path)


@pytest.fixture
def tiny_run_dir(tmp_path):
    """Finished run directory of a 784-32-16-10 MLP."""
    return make_run_dir(tmp_path / "mlp", mlp_config())


@pytest.fixture
def tiny_cnn_run_dir(tmp_path):
    """Finished run directory of an 8x8x3 conv(4)-conv(8)+pool-16-10 CNN."""
    return make_run_dir(tmp_path / "cnn", cnn_config())


def synthetic_loader(cfg, n=N_TEST):
    """A `load_test` for bcexport.verify.verify_run that ignores the run's dataset."""
    return lambda run_dir, data_dir: synthetic_test_data(cfg, n)


def _exported(tmp_path_factory, name, cfg):
    from bcexport.onnx_export import export_run
    path = make_run_dir(tmp_path_factory.mktemp(name) / "run", cfg)
    export_run(path)
    return path


@pytest.fixture(scope="module")
def exported_mlp_dir(tmp_path_factory):
    """The MLP run directory after `bcexport onnx` (shared by a module: copy it before changing it)."""
    return _exported(tmp_path_factory, "mlp", mlp_config())


@pytest.fixture(scope="module")
def exported_cnn_dir(tmp_path_factory):
    """The CNN run directory after `bcexport onnx` (shared by a module: copy it before changing it)."""
    return _exported(tmp_path_factory, "cnn", cnn_config())
