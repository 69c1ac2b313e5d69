"""Learning with binary activations, side by side (issue 21 §4; PAPER.md §10): the `mnist-bnn` recipe
reduced to a width that trains in minutes, as BinaryNet (binary weights and activations),
BinaryConnect (binary weights, ReLU: `--binarize-act none`) and float (`--binarize none
--binarize-act none`), everything else the same: the same net shape, inputs 2x/255 − 1, dropout
(input .2, hidden .5), Adam with the preset's learning rates spread over the given epochs, batch 100,
selection at the best validation epoch (paper §5).

Writes benchmarks/results/bnn_check.json: per variant the selected test error, its epoch, the
per-epoch curves (train loss and error, validation and test error) and the seconds, with its
provenance (benchmarks.provenance); `make docs` renders it into docs/BINARYNET.md. At equal width BinaryNet usually trails BinaryConnect; the paper's
0.96 % comes from 3 × 4096 units, 1000 epochs and the full MNIST.

Usage: make bnn-check   (or: python -m benchmarks.bnn_check [--width 256] [--epochs 30] [--seeds 3]
       [--dataset mnist-sample|mnist] [--data-dir D] [--keep DIR]); about 7 minutes per seed on 2
       loaded cores (AMD EPYC) at the defaults.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks import provenance
from benchmarks.tables.bnn import render

VARIANTS = {  # name -> the fields that make it (everything else: the mnist-bnn preset)
    "binarynet": {},
    "binaryconnect": {"binarize_act": "none"},
    "float": {"binarize": "none", "binarize_act": "none"},
}
OUT = os.path.join(provenance.RESULTS_DIR, "bnn_check.json")


def config(name, width, epochs, seed, dataset):
    from bctrain.config import with_overrides
    return with_overrides("mnist-bnn", dataset=dataset, hidden=(width,) * 3, epochs=epochs, seed=seed,
                          **VARIANTS[name])


def curves(run_dir) -> dict:
    import json
    with open(os.path.join(run_dir, "history.jsonl")) as fh:
        history = [json.loads(line) for line in fh]
    mode = next(k for k in history[0] if k.startswith("val_error_"))[len("val_error_"):]
    return {"train_loss": [r["train_loss"] for r in history], "train_error": [r["train_error"] for r in history],
            "val_error": [r[f"val_error_{mode}"] for r in history],
            "test_error": [r[f"test_error_{mode}"] for r in history]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=256, help="units of each of the 3 hidden layers")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3, help="seeds per variant (1, 2, ...)")
    parser.add_argument("--dataset", default="mnist-sample", help="mnist-sample (the bundled sample) or mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--keep", default=None, help="keep the run directories under this directory")
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args(argv)

    from bctrain.run.startup import load_tensorflow
    load_tensorflow(False)
    from bctrain.train import device_name
    with tempfile.TemporaryDirectory(prefix="bnn_check_") as tmp:
        results = run_all(args, args.keep or tmp)
    report = {
        "recipe": "mnist-bnn with hidden=(width,)*3 and the given epochs (learning rate 3e-3 -> 3e-7 over them)",
        "width": args.width, "epochs": args.epochs, "seeds": args.seeds, "dataset": args.dataset,
        "variants": results,
    }
    print(render(provenance.write(args.out, report, "benchmarks.bnn_check", argv, device=device_name())))
    return 0


def run_all(args, root) -> dict:
    """{variant: test errors, runs with their curves} of every variant and seed, trained in `root`."""
    from bctrain.train import train
    results = {}
    for name in VARIANTS:
        runs = []
        for seed in range(1, args.seeds + 1):
            cfg = config(name, args.width, args.epochs, seed, args.dataset)
            run_dir = os.path.join(root, f"{name}-seed{seed}")
            start = time.perf_counter()
            metrics = train(cfg, run_dir, data_dir=args.data_dir, out=open(os.devnull, "w"))
            runs.append({"seed": seed, "test_error": metrics["test_error"], "val_error": metrics["val_error"],
                         "best_epoch": metrics["best_epoch"], "seconds": time.perf_counter() - start,
                         "curves": curves(run_dir)})
            print(f"{name:14s} seed {seed}: test {100 * metrics['test_error']:.2f}% (epoch {metrics['best_epoch']}), "
                  f"{runs[-1]['seconds']:.0f} s", flush=True)
        errors = [r["test_error"] for r in runs]
        results[name] = {"fields": VARIANTS[name], "test_error_mean": float(np.mean(errors)),
                         "test_error_std": float(np.std(errors, ddof=1)) if len(errors) > 1 else None, "runs": runs}
    return results


if __name__ == "__main__":
    sys.exit(main())
