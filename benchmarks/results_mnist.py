"""The `mnist` recipe on the bundled MNIST sample, in det, stoch and none: README's MNIST results.

For each binarization mode, `bctrain train --preset mnist --dataset mnist-sample --binarize MODE
--epochs E` in its own run directory ROOT/sample-MODE-eE (E: the preset's 250 unless --epochs). A
finished run (metrics.json) is read, not trained again; an interrupted one is resumed (--resume),
so the same command can be re-run until every mode is done; a run directory is never replaced
(bctrain refuses one that holds another run). Once every mode has finished, the results file is
written atomically: benchmarks/results/mnist_sample.json for the preset's schedule, another file
(mnist_sample_<E>epochs.json) for a shorter one, so that a short check never replaces the full
results. Each row: selected epoch, validation and test errors (stoch: with the real weights, as the
paper reports, and with the ±1 weights, as deployed), epochs run and seconds per epoch.

The sample is 6,000 training digits, not MNIST's 50,000: these are not MNIST results.

Usage: make results-mnist [EPOCHS=E]   (or: python -m benchmarks.results_mnist [--epochs E])
"""
import argparse
import json
import os
import subprocess
import sys

from benchmarks import provenance
from benchmarks.tables.mnist import render_sample
from bccommon import runfiles
from bctrain.config import PRESETS

PRESET, DATASET = "mnist", "mnist-sample"
MODES = ("det", "stoch", "none")
ROW_KEYS = ("best_epoch", "epochs_run", "val_error", "test_error", "test_error_binary", "seconds_per_epoch",
            "dataset", "n_train", "n_val", "n_test", "device", "binary_weights")


def run_dir_of(root: str, mode: str, epochs: int) -> str:
    return os.path.join(root, f"sample-{mode}-e{epochs}")


def default_out(epochs: int) -> str:
    name = "mnist_sample.json" if epochs == PRESETS[PRESET].epochs else f"mnist_sample_{epochs}epochs.json"
    return os.path.join(provenance.RESULTS_DIR, name)


def train_command(mode: str, epochs: int, run_dir: str, verbose: bool) -> list:
    """The `bctrain train` arguments of one row (without --resume)."""
    return ["--preset", PRESET, "--dataset", DATASET, "--binarize", mode, "--epochs", str(epochs),
            "--run-dir", run_dir, *(["--verbose"] if verbose else [])]


def read_json(path: str):
    with open(path) as fh:
        return json.load(fh)


def run_mode(mode: str, epochs: int, root: str, verbose: bool) -> dict:
    """Train, resume or read the mode's run; its row. A failed run raises SystemExit with its code."""
    run_dir = run_dir_of(root, mode, epochs)
    args = train_command(mode, epochs, run_dir, verbose)
    metrics_path = os.path.join(run_dir, runfiles.METRICS_JSON)
    if os.path.isfile(metrics_path):
        print(f"{mode}: finished ({run_dir}), read", flush=True)
    else:
        resume = os.path.isfile(os.path.join(run_dir, runfiles.CONFIG_JSON))
        print(f"{mode}: {'resuming' if resume else 'training'} in {run_dir}", flush=True)
        code = subprocess.run([sys.executable, "-m", "bctrain.cli", "train", *args,
                               *(["--resume"] if resume else [])]).returncode
        if code != 0:
            print(f"results_mnist: error: bctrain train --binarize {mode} exited with {code}; "
                  "its message is above (run the same command again to continue)", file=sys.stderr)
            raise SystemExit(code)
    metrics = read_json(metrics_path)
    return {"binarize": mode, "run_dir": run_dir, "train_command": "bctrain train " + " ".join(args),
            **{key: metrics.get(key) for key in ROW_KEYS}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=PRESETS[PRESET].epochs,
                        help=f"epochs of every run (default: the preset's {PRESETS[PRESET].epochs})")
    parser.add_argument("--root-dir", default="runs/results-mnist", help="where the run directories go")
    parser.add_argument("--out", help="JSON results file (default: benchmarks/results/mnist_sample.json for the "
                                      "preset's epochs, mnist_sample_<E>epochs.json otherwise)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up lines")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: expected at least 1")
    rows = [run_mode(mode, args.epochs, args.root_dir, args.verbose) for mode in MODES]
    result = {"preset": PRESET, "dataset": DATASET, "epochs": args.epochs, "rows": rows,
              "train_command": "bctrain train " + " ".join(
                  train_command("MODE", args.epochs, run_dir_of(args.root_dir, "MODE", args.epochs), False))}
    devices = sorted({row["device"] for row in rows if row["device"]})
    out = args.out or default_out(args.epochs)
    print(render_sample(provenance.write(out, result, "benchmarks.results_mnist", argv, "; ".join(devices) or None)))
    print(f"(written to {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
