"""CNN learning check (issue 20 §1): the cifar10 architecture, narrowed, trained on real images in each
official format the CNN loaders read, float against binary (paper §2, §6: CIFAR-10 and SVHN).

The 10,000 real MNIST digits bundled in data/mnist_sample.npz, written as CIFAR-10 python batches
and as SVHN format-2 .mat files (benchmarks/cnn_check_data.py: 32x32, three channels, a test split
disjoint from training), go through the real `bctrain train --data-dir` path with each preset's own
preprocessing (cifar10: GCN + ZCA; svhn: GCN + LCN) and settings (batch 50, BatchNorm alpha 0.1,
learning rates), on the cifar10 layout narrowed 4x: 2x(3x3 conv 32), pool, 2x(conv 64), pool,
2x(conv 128), pool, dense 256, dense 256, dense 10 (ARCH). Each preset trains float
(`--binarize none`), det and stoch over the same schedule, and det again in each further precision
(`--precisions`, default also mixed_bfloat16). The learning rate decays geometrically from the
preset's lr_start to its lr_end over `--epochs` (the paper's schedule, compressed).

Runs go to OUT/<preset>-<mode>[-<precision>] (OUT: --out-dir, default runs/cnn-check), each logged
to OUT/<run>.log; a finished run is kept and reused, an interrupted one resumed (bctrain train
--resume), and a run directory holding other settings is refused before anything trains, so the
same command can be re-run until every run is done and never overwrites an earlier result.
It then writes the JSON (per preset and run: selected epoch, validation and test errors, the
±1-weight test error of stoch, seconds per epoch, the per-epoch curve from history.jsonl), the
figure (cnn_check_plot.py) and prints a table.

Usage: make cnn-check [CNN_CHECK_DIR=runs/cnn-check] [CNN_CHECK_EPOCHS=...]
   or: python -m benchmarks.cnn_check [--epochs N] [--presets cifar10,svhn] [--out-dir DIR] ...
"""
import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bccommon import atomic, runfiles
from benchmarks import cnn_check_data, provenance
from benchmarks.tables import cnn_check as tables

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("cifar10", "svhn")
ARCH = {"conv": (32, 32, 64, 64, 128, 128), "hidden": (256, 256)}  # the cifar10 preset's widths / 4
BINARIZE = ("none", "det", "stoch")
PRECISIONS = ("float32", "mixed_bfloat16")
EPOCHS = 10  # docs/CNN_CHECK.md: why 10
MODE_NAMES = {"none": "float"}
EXIT_INTERRUPTED = 130  # as bctrain's
EXIT_TERMINATED = 143  # bctrain stopped by SIGTERM: resumable, like an interrupt


@dataclass(frozen=True)
class Run:
    preset: str
    binarize: str
    precision: str

    @property
    def name(self) -> str:
        suffix = "" if self.precision == "float32" else f"-{self.precision}"
        return f"{self.preset}-{MODE_NAMES.get(self.binarize, self.binarize)}{suffix}"


def plan(presets, binarize, precisions) -> list:
    """The runs, preset by preset: each binarization in float32, then det in each other precision."""
    runs = []
    for preset in presets:
        runs += [Run(preset, b, "float32") for b in binarize if "float32" in precisions]
        runs += [Run(preset, "det", q) for q in precisions if q != "float32"]
    return runs


def base_dir(args) -> Path:
    """Where the runs, their logs, the data files and the preprocessing cache go: --out-dir, or a
    directory of its own inside it for --images (a run trained on fewer digits is another run)."""
    return Path(args.out_dir) / (f"images-{args.images}" if args.images else "")


def overrides(run: Run, args) -> dict:
    """The Config fields the check sets on top of the preset (bctrain.config.with_overrides)."""
    out = {"binarize": run.binarize, "precision": run.precision, "epochs": args.epochs, **ARCH}
    if args.lr_start is not None:
        out["lr_start"] = args.lr_start
    if args.lr_end is not None:
        out["lr_end"] = args.lr_end
    return out


def train_command(run: Run, args, data_dir: Path, run_dir: Path, resume: bool) -> list:
    flags = []
    for key, value in overrides(run, args).items():
        flags += [f"--{key.replace('_', '-')}", ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    return [sys.executable, "-m", "bctrain.cli", "train", "--preset", run.preset, *flags,
            "--data-dir", str(data_dir), "--run-dir", str(run_dir), *(["--resume"] if resume else [])]


def state(run_dir: Path, cfg) -> str:
    """"new", "resume" or "finished"; a directory holding other settings is refused (ConfigError)."""
    from bctrain.run import rundir
    if not (run_dir / runfiles.CONFIG_JSON).is_file():
        return "new"
    rundir.check_same_run(str(run_dir), cfg, advice="choose another --out-dir or the same settings")
    return "finished" if (run_dir / runfiles.METRICS_JSON).is_file() else "resume"


def train(run: Run, args, data_dir: Path, run_dir: Path, resume: bool) -> int:
    """bctrain train for one run, its output shown with the run's name and appended to OUT/<run>.log."""
    cmd = train_command(run, args, data_dir, run_dir, resume)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           "BCNN_CACHE": str(base_dir(args) / "cache")}  # the preprocessed digits stay beside the runs
    with open(base_dir(args) / f"{run.name}.log", "a") as log:
        log.write(f"$ {shlex.join(cmd)}\n")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # A SIGTERM to the check goes to the training (which stops after writing what a resume
        # needs, exit 143) instead of ending the check and leaving the training running alone.
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
        try:
            for line in proc.stdout:
                log.write(line)
                log.flush()
                print(f"[{run.name}] {line}", end="", flush=True)
        except KeyboardInterrupt:  # bctrain got it too: it stops after writing what a resume needs
            proc.wait()
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        return proc.wait()


def curve(history: list) -> list:
    """The per-epoch numbers of history.jsonl that the figure and the README need."""
    keys = ("epoch", "lr", "train_loss", "train_error", "seconds")
    return [{k: r[k] for k in sorted(r) if k in keys or k.startswith(("val_error_", "test_error_"))}
            for r in history]


def result(run: Run, run_dir: Path) -> dict:
    """One finished run: its selected errors (metrics.json) and its curve (history.jsonl)."""
    from bctrain.run import rundir
    metrics = json.loads((run_dir / runfiles.METRICS_JSON).read_text())
    history = rundir.read_history(str(run_dir))
    seconds = [r["seconds"] for r in history]
    return {"binarize": run.binarize, "precision": run.precision, "run_dir": str(run_dir),
            "epochs": len(history), "selected_epoch": metrics["best_epoch"], "val_error": metrics["val_error"],
            "test_error": metrics["test_error"], "test_error_binary": metrics["test_error_binary"],
            "seconds_per_epoch": statistics.median(seconds), "seconds_first_epoch": seconds[0],
            "seconds_total": sum(seconds), "n_train": metrics["n_train"], "n_val": metrics["n_val"],
            "n_test": metrics["n_test"], "binary_weights": metrics["binary_weights"],
            "tensorflow_version": metrics["tensorflow_version"], "curve": curve(history)}


def gaps(runs: dict) -> dict:
    """Test-error differences in percentage points that the issue asks about (where both runs exist)."""
    pairs = {"det_minus_float_pp": ("det", "float"), "stoch_minus_det_pp": ("stoch", "det"),
             "det_mixed_bfloat16_minus_det_pp": ("det-mixed_bfloat16", "det")}
    return {k: 100 * (runs[a]["test_error"] - runs[b]["test_error"]) for k, (a, b) in pairs.items()
            if a in runs and b in runs}


def collect(args, argv, runs, load_at_start) -> dict:
    """The results file: the command, the machine, the schedule, and every finished run per preset."""
    from bctrain.config import with_overrides
    out = base_dir(args)
    results = {**provenance.stamp("benchmarks.cnn_check", argv), "load_average": [load_at_start, os.getloadavg()[0]],
               "data": "the real MNIST digits of data/mnist_sample.npz as 32x32x3 images in each preset's "
                       "official format (benchmarks/cnn_check_data.py)",
               "images": args.images or cnn_check_data.N_SAMPLE, "epochs": args.epochs, "presets": {}}
    for preset in args.presets:
        cfg = with_overrides(preset, **ARCH)
        done = {r.name.split("-", 1)[1]: result(r, out / r.name) for r in runs
                if r.preset == preset and (out / r.name / runfiles.METRICS_JSON).is_file()}
        results["presets"][preset] = {
            "conv": cfg.conv, "pool": cfg.pool, "hidden": cfg.hidden, "preprocess": cfg.preprocess,
            "batch_size": cfg.batch_size, "lr_start": args.lr_start or cfg.lr_start,
            "lr_end": args.lr_end or cfg.lr_end, "runs": done, "gaps": gaps(done)}
    return results


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cnn_check", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs of every run (default: {EPOCHS})")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated (default: cifar10,svhn)")
    parser.add_argument("--modes", default=",".join(BINARIZE), help="binarizations trained in float32 "
                        "(default: none,det,stoch)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="precisions; each one other than "
                        "float32 trains det (default: float32,mixed_bfloat16)")
    parser.add_argument("--lr-start", type=float, help="learning rate of the first epoch (default: the preset's)")
    parser.add_argument("--lr-end", type=float, help="learning rate after the last epoch (default: the preset's)")
    parser.add_argument("--images", type=int, help="use only this many of the 10,000 digits, the same "
                        "fraction of each split (a smoke run; default: all)")
    parser.add_argument("--out-dir", default="runs/cnn-check", help="runs, logs and data (default: runs/cnn-check)")
    parser.add_argument("--json", default="benchmarks/results/cnn_check.json", help="results file")
    parser.add_argument("--figure", default="docs/cnn_check.png", help="figure of the curves")
    args = parser.parse_args(argv)
    for flag, choices in (("presets", PRESETS), ("modes", BINARIZE), ("precisions", PRECISIONS)):
        values = getattr(args, flag).split(",")
        if not values or not set(values) <= set(choices) or len(set(values)) != len(values):
            parser.error(f"--{flag} {getattr(args, flag)!r}: expected some of {', '.join(choices)}, each once")
        setattr(args, flag, tuple(values))
    if args.images is not None and not 200 <= args.images <= 10_000:
        parser.error(f"--images {args.images}: expected 200 to 10,000 (each split needs every digit)")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from bctrain.config import ConfigError, with_overrides
    out = base_dir(args)
    runs = plan(args.presets, args.modes, args.precisions)
    try:  # every run directory is checked before anything trains
        todo = {run: state(out / run.name, with_overrides(run.preset, **overrides(run, args))) for run in runs}
    except ConfigError as exc:
        print(f"cnn_check: error: {exc}", file=sys.stderr)
        return 2
    failed, load_at_start = [], os.getloadavg()[0]
    for run, how in todo.items():
        if how == "finished":
            print(f"[{run.name}] finished earlier: {out / run.name}", flush=True)
            continue
        data = cnn_check_data.write_data(run.preset, out / "data" / run.preset, args.images)
        code = train(run, args, data, out / run.name, resume=how == "resume")
        if code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            print("cnn_check: interrupted; run the same command again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        if code:
            failed.append(run.name)
    results = collect(args, argv, runs, load_at_start)
    print(f"\n{tables.render(results)}")
    if not any(p["runs"] for p in results["presets"].values()):
        print(f"cnn_check: error: no run finished (see {out}/<run>.log); {args.json} left as it was", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    atomic.write_json(args.json, results)
    from benchmarks.cnn_check_plot import save_figure
    save_figure(results, args.figure)
    print(f"wrote {args.json} and {args.figure}")
    if failed:
        print(f"cnn_check: error: {', '.join(failed)} failed (see {out}/<run>.log)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
