"""A stochastic run's ±1 network with its BatchNorm statistics re-estimated under the ±1 weights.

Diagnostic (docs/CNN_CHECK.md): a network trained with stochastic binarization keeps running
BatchNorm statistics of its *sampled* weights, whose pre-activations have the mean of the real
weights; deployed with sign(w), each layer's pre-activations have other statistics whenever the
latent weights are far from ±1. This module evaluates the selected weights (best.npz) on the test
split three ways: real weights with the trained statistics (the paper's figure), sign(w) with the
trained statistics (what `bcexport` deploys today) and sign(w) with every layer's mean and std
re-estimated, layer by layer, on the first --images training images (batch statistics, as
BatchNorm computes them in training). NumPy and TensorFlow's conv op, eager, float32.

Usage: python -m benchmarks.bn_restat RUN_DIR [--data-dir DIR] [--images 2000]
"""
import argparse
import sys

import numpy as np

from benchmarks.quiet_tf import tf  # first: TensorFlow loads quietly


def product(spec, x, w):
    if spec.kind == "dense":
        return x.reshape(len(x), -1) @ w
    return np.asarray(tf.nn.conv2d(x, w, 1, "SAME"))


def forward(specs, z, x, binary: bool, eps: float, stats=None, record=None):
    """Scores of `x`. `stats`: [(mean, std)] per layer instead of the trained running ones; `record`:
    a list that receives each layer's batch (mean, std) and makes the layer normalise with them."""
    for i, spec in enumerate(specs):
        w = z[f"{i}/w"]
        w = np.where(w >= 0, 1.0, -1.0).astype(np.float32) if binary else w  # sign(0) = +1
        x = product(spec, x, w) + z[f"{i}/b"]
        if spec.pool:
            x = np.asarray(tf.nn.max_pool2d(x, 2, 2, "VALID"))
        if record is not None:
            axes = tuple(range(x.ndim - 1))
            record.append((x.mean(axes), x.std(axes)))
            mean, std = record[-1]
        else:
            mean, std = (z[f"{i}/mean"], z[f"{i}/std"]) if stats is None else stats[i]
        x = (x - mean) * (z[f"{i}/gamma"] / (std + eps)) + z[f"{i}/beta"]
        if spec.relu:
            x = np.maximum(x, 0)
    return x


def error(specs, z, x, y, binary, eps, stats=None, chunk=500) -> float:
    pred = [forward(specs, z, x[i:i + chunk], binary, eps, stats).argmax(1) for i in range(0, len(x), chunk)]
    return float(np.mean(np.concatenate(pred) != y))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bn_restat", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data-dir", help="the dataset directory the run trained on (default: the cache)")
    parser.add_argument("--images", type=int, default=2000, help="training images for the statistics")
    args = parser.parse_args(argv)
    from bctrain.config import ConfigError, load_config
    from bctrain.paper.arch import layer_specs
    from bctrain.train import load_data
    try:
        cfg = load_config(args.run_dir)
        _, arrays, _ = load_data(cfg, args.data_dir)
        z = dict(np.load(f"{args.run_dir}/best.npz"))
    except (ConfigError, OSError, ValueError) as exc:
        print(f"bn_restat: error: {exc}", file=sys.stderr)
        return 2
    specs, eps = layer_specs(cfg), cfg.bn_eps
    record = []
    forward(specs, z, arrays["train"][0][:args.images], True, eps, record=record)
    x, y = arrays["test"]
    print(f"{args.run_dir} ({cfg.binarize}): test error, real weights {100 * error(specs, z, x, y, False, eps):.2f} %; "
          f"±1 weights {100 * error(specs, z, x, y, True, eps):.2f} %; ±1 weights with BatchNorm statistics "
          f"re-estimated on {args.images} training images {100 * error(specs, z, x, y, True, eps, record):.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
