"""BinaryNet in C against its BinaryConnect twin and onnxruntime, one thread (issue 21 §4).

Two run directories of the full-width `mnist-bnn` network (784 → 3 × 4096 → 10), one epoch each on
the bundled sample (nothing measured here depends on how well they learned): BinaryNet (±1 weights
and activations) and its BinaryConnect twin (`--binarize-act none`: ±1 weights, ReLU; the same
recipe and shape). Each is exported (`bcexport onnx`, `bcexport c`) and verified (`bcexport
verify`: for BinaryNet every hidden bit of the C equal to the reference's). Then, alternating the
two runs over --rounds rounds, each round one process per run: `python -m benchmarks.bench_infer
RUN --threads 1 --backends ORT,C --clock cpu` (onnxruntime on model.onnx and the generated C
interleaved; CPU time, so that a shared machine's waits are not counted); the median over rounds
of each figure is reported. Last, `benchmarks.bench_xnor` (the binary blocks alone against their
popcount roofline, on the same 4096 × 4096 shape).

With --cnn, the same for the full-width `cifar10-bnn` CNN (conv 128-128-256-256-512-512, dense
1024-1024, binary activations after every hidden block) and its twin, one epoch on tiny CIFAR-10
files (`benchmarks.bench_cnn_c.write_data`): the issue asks for their gate and their batch-1
latency against onnxruntime and the twin, with no target.

Targets of the issue: BinaryNet C batch-1 latency ≥ 5× lower than the BinaryConnect C of the same
shape and ≥ 30× lower than onnxruntime; the binary blocks at ≥ 50 % of their roofline.

Writes benchmarks/results/bench_bnn_c.json (rendered into docs/BINARYNET.md and README by `make
docs`). About 10 minutes on one core for the MLP pair, 15 more with --cnn; --keep DIR keeps (and
re-uses, where they already verify) the run directories.

Usage: make bench-bnn-c   (or: python -m benchmarks.bench_bnn_c [--rounds 3] [--cnn] [--keep DIR])
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bccommon import machine
from benchmarks import bench_xnor, provenance
from benchmarks.tables.bnnc import render

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"binarynet": (), "binaryconnect": ("--binarize-act", "none")}
NETWORKS = {  # name -> the `bctrain train` flags of its one epoch, and the CIFAR-10 files it needs (or None)
    "mlp": (("--preset", "mnist-bnn", "--dataset", "mnist-sample", "--epochs", "1"), None),
    "cnn": (("--preset", "cifar10-bnn", "--epochs", "1", "--batch-size", "10", "--jit", "false"), "cifar10"),
}


def run(cmd, env) -> str:
    """stdout of a command; a failure raises RuntimeError with the last lines of its output."""
    proc = subprocess.run([sys.executable, "-m", *map(str, cmd)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-5:])
        raise RuntimeError(f"python -m {' '.join(map(str, cmd))} failed:\n{tail}")
    return proc.stdout


def prepare(net: str, name: str, work: Path, env) -> dict:
    """Train, export and verify one variant (skipped where its verify.json already says PASSED)."""
    flags, data = NETWORKS[net]
    run_dir = work / (name if net == "mlp" else f"{net}-{name}")
    report = run_dir / "verify.json"
    if not (report.is_file() and json.loads(report.read_text()).get("passed")):
        if data and not (work / f"{data}-data").is_dir():
            from benchmarks.bench_cnn_c import write_data   # tiny official-format files, smooth images
            write_data(data, work / f"{data}-data")
        if not (run_dir / "metrics.json").is_file():
            run(["bctrain.cli", "train", *flags, *VARIANTS[name], "--run-dir", run_dir,
                 *(["--data-dir", work / f"{data}-data"] if data else [])], env)
        for step in ("onnx", "c", "verify"):
            run(["bcexport.cli", step, run_dir], env)
    verify = json.loads(report.read_text())
    c_export = json.loads((run_dir / "c" / "export.json").read_text())
    return {"run_dir": str(run_dir), "verify_passed": verify["passed"], "network": c_export["network"],
            "binary_weights": c_export["binary_weights"], "weight_bytes": c_export["weight_bytes"],
            "kernel_path": c_export["native"].get("kernel_path"),
            "microcontroller": {k: c_export["microcontroller"].get(k) for k in ("flash", "ram")},
            "verified_samples": verify["n_test"] + verify["n_random_probes"],
            "hidden_bits_differing": {b: sum(layer["mismatches"] for layer in v["hidden"].get("layers", []))
                                      for b, v in verify["backends"].items() if "hidden" in v}}


def time_round(run_dir: str, args, env, tmp: Path) -> dict:
    out = tmp / "infer.json"
    run(["benchmarks.bench_infer", run_dir, "--threads", "1", "--backends", "ORT,C", "--clock", "cpu",
         "--no-numpy", "--calls", args.calls, "--rounds", "2", "--batches", "2", "--warmup", "10",
         "--out", out], env)
    r = json.loads(out.read_text())
    return {"c_code_version": r.get("c_code_version"), "c_build": r.get("c_build"),
            **{f"{b}_{k}": r["results"][b][k] for b in ("C", "ORT")
               for k in ("batch1_ms_median", "batch256_samples_per_s")}}


def measure(net: str, work: Path, args, env) -> dict:
    """One network's two variants: prepared, timed alternately, with their ratios."""
    variants = {}
    for name in VARIANTS:
        print(f"{net} {name}: train 1 epoch, export, verify", flush=True)
        variants[name] = prepare(net, name, work, env)
    timings = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-bnn-c-") as tmp:
        for i in range(args.rounds):
            for name in VARIANTS:
                timings[name].append(time_round(variants[name]["run_dir"], args, env, Path(tmp)))
            print(f"{net}: round {i + 1} of {args.rounds} timed", flush=True)
    for name in VARIANTS:
        variants[name].update(median_rows(timings[name]))
    bnn, bc = variants["binarynet"], variants["binaryconnect"]
    return {"variants": variants,
            "ratios": {"bc_c_over_bnn_c_batch1": bc["C_batch1_ms_median"] / bnn["C_batch1_ms_median"],
                       "ort_over_bnn_c_batch1": bnn["ORT_batch1_ms_median"] / bnn["C_batch1_ms_median"],
                       "bnn_c_over_bc_c_batch256": bnn["C_batch256_samples_per_s"] / bc["C_batch256_samples_per_s"],
                       "bnn_c_over_ort_batch256": bnn["C_batch256_samples_per_s"] / bnn["ORT_batch256_samples_per_s"]}}


def median_rows(rounds: list) -> dict:
    keys = [k for k, v in rounds[0].items() if isinstance(v, float)]
    return {**rounds[0], **{k: statistics.median(r[k] for r in rounds) for k in keys},
            "rounds": rounds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated timing rounds (default 3)")
    parser.add_argument("--calls", type=int, default=100, help="timed batch-1 calls per back end and round")
    parser.add_argument("--cnn", action="store_true", help="also the full-width cifar10-bnn CNN and its twin, "
                                                             "on tiny CIFAR-10 files (about 15 more minutes)")
    parser.add_argument("--keep", help="keep the run directories here (re-used when they already verify)")
    parser.add_argument("--out", default=os.path.join(provenance.RESULTS_DIR, "bench_bnn_c.json"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.calls < 1:
        parser.error("--rounds and --calls must be >= 1")
    if args.keep and os.path.exists(args.keep) and not os.path.isdir(args.keep):
        parser.error(f"--keep {args.keep}: exists and is not a directory")
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-bnn-c-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        result = {"cpu": machine.cpu_model(), **measure("mlp", work, args, env)}
        if args.cnn:
            result["cnn"] = measure("cnn", work, args, env)
        with tempfile.TemporaryDirectory(prefix="bench-bnn-c-") as tmp:
            xnor_out = Path(tmp) / "xnor.json"
            bench_xnor.main(["--rounds", "5", "--out", str(xnor_out)])
            result["xnor"] = json.loads(xnor_out.read_text())
    except RuntimeError as exc:
        print(f"bench_bnn_c: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(render(provenance.write(args.out, result, "benchmarks.bench_bnn_c", argv)))
    nets = [result, *([result["cnn"]] if args.cnn else [])]
    return 0 if all(v["verify_passed"] for r in nets for v in r["variants"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
