"""A stochastic run's ±1 network with its BatchNorm statistics re-estimated under the ±1 weights.

Diagnostic (docs/CNN_CHECK.md): a network trained with stochastic binarization keeps running
BatchNorm statistics of its *sampled* weights, whose pre-activations have the mean of the real
weights; deployed with sign(w), each layer's pre-activations have other statistics whenever the
latent weights are far from ±1. This module evaluates the selected weights (best.npz) on the test
split three ways: real weights with the trained statistics (the paper's figure), sign(w) with the
trained statistics (what `bcexport onnx --bn-restat-images 0` deploys) and sign(w) with every layer's mean and std
re-estimated, layer by layer, on the first --images training images (batch statistics, as
BatchNorm computes them in training): `bcexport.bn_restat`, the computation `bcexport onnx` deploys
a stochastic run with. The data are read as export reads them (the run's dataset, preprocess.npz,
data.json). NumPy, float32; TensorFlow-free.

Usage: python -m benchmarks.bn_restat RUN_DIR [--data-dir DIR] [--images 2000]
"""
import argparse
import sys

import numpy as np

from bcexport import bn_restat as restat

CHUNK = 250  # test images per forward pass


def forward(specs, z, x, binary: bool, eps: float, stats=None, record=None):
    """Scores of `x`. `stats`: [(mean, std)] per layer instead of the trained running ones; `record`:
    a list that receives each layer's (mean, std) re-estimated on `x` under the ±1 weights
    (`bcexport.bn_restat.restat`), which the layers then normalise with."""
    if record is not None:
        found = restat.restat(specs, z, x, eps)
        record.extend((found[f"{i}/mean"], found[f"{i}/std"]) for i in range(len(specs)))
        stats = record
    for i, spec in enumerate(specs):
        w = restat.deployed_product_weights(spec, z[f"{i}/w"]) if binary else z[f"{i}/w"]
        x = restat.pre_activation(spec, w, z[f"{i}/b"], x)
        mean, std = (z[f"{i}/mean"], z[f"{i}/std"]) if stats is None else stats[i]
        x = restat.normalize(spec, x, z[f"{i}/gamma"], z[f"{i}/beta"], np.asarray(mean), np.asarray(std), eps)
    return x


def error(specs, z, x, y, binary, eps, stats=None, chunk=CHUNK) -> float:
    pred = [forward(specs, z, x[i:i + chunk], binary, eps, stats).argmax(1) for i in range(0, len(x), chunk)]
    return float(np.mean(np.concatenate(pred) != y))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bn_restat", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--data-dir", help="the dataset directory the run trained on (default: the one "
                                           "metrics.json records, else the cache)")
    parser.add_argument("--images", type=int, default=restat.DEFAULT_IMAGES, help="training images for the statistics")
    args = parser.parse_args(argv)
    import math

    from bcexport import ExportError
    from bcexport.rundir import load_best, load_preprocess, read_data_json, require_finished, run_splits
    from bctrain.config import ConfigError
    from bctrain.data import DataError
    from bctrain.data.preprocess import KINDS
    from bctrain.paper.arch import layer_specs
    try:
        cfg = require_finished(args.run_dir)
        splits = run_splits(args.run_dir, args.data_dir)
        kind, params = load_preprocess(args.run_dir, math.prod(cfg.input_shape))
        x_train = restat.training_inputs(cfg, args.images, splits, kind, params, read_data_json(args.run_dir))
        z = load_best(args.run_dir, cfg)
    except (ExportError, ConfigError, DataError, OSError) as exc:
        print(f"bn_restat: error: {exc}", file=sys.stderr)
        return 2
    x = KINDS[kind].apply(splits.x_test, params).reshape((-1, *cfg.input_shape))
    y = splits.y_test
    specs, eps = layer_specs(cfg), cfg.bn_eps
    record = []
    forward(specs, z, x_train, True, eps, record=record)
    print(f"{args.run_dir} ({cfg.binarize}): test error, real weights {100 * error(specs, z, x, y, False, eps):.2f} %; "
          f"±1 weights {100 * error(specs, z, x, y, True, eps):.2f} %; ±1 weights with BatchNorm statistics "
          f"re-estimated on {args.images} training images {100 * error(specs, z, x, y, True, eps, record):.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
