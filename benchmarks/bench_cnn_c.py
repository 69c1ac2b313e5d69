"""The generated C of the full CNN presets (cifar10, svhn): export, verify, sizes, compile cost and
the cost of the preprocessing in C (paper §6, §9).

For each preset: tiny data files in the official formats (the writers of tests/dataset_files.py)
holding smooth images (8x8 blocks plus noise, so that the ZCA fitted on them cancels as one fitted
on photographs does), one epoch of `bctrain train` at batch 10 on them (the preset's whole network,
barely trained: nothing measured here depends on how well), then `bcexport onnx`, `bcexport c` and
`bcexport verify`, each timed. Then:
  - compile time, object size and source size of c/bcnn_model.c (gcc -O2 -march=native -c),
  - scratch bytes, im2col rows per product of each conv, weight bytes, Cortex-M4 sizes (c/export.json),
  - the pixel entry point against the float one, one thread, at batch 1 and at one tile (16): the
    difference is the preprocessing in C (median of interleaved calls),
  - for GCN+ZCA: how far a float32 ZCA would move the logits, relative to verify's tolerance for
    the raw-pixel feed (network in float64, so only the preprocessing differs): NumPy's float32
    product (BLAS order) and a sequential float32 sum (a plain C loop), beside the C's double.

Usage: make bench-cnn-c   (or: python -m benchmarks.bench_cnn_c [--presets cifar10,svhn] [--keep DIR])
Takes about 4 minutes on 2 cores; --keep DIR keeps the run directories (for `make bench-infer RUN_DIR=...`).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bccommon import machine
from benchmarks import provenance
from benchmarks.tables.ckernels import render_cnn_c

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the official-format writers are test helpers

PRESETS = ("cifar10", "svhn")
TRAIN_FLAGS = ("--epochs", "1", "--batch-size", "10", "--jit", "false")
CALLS = 15  # interleaved timed calls per entry point and batch size


def smooth_images(n, seed) -> np.ndarray:
    """uint8 [n, 32, 32, 3]: 4x4 random blocks of 8x8 pixels plus noise in [0, 16)."""
    rng = np.random.default_rng(seed)
    base = np.kron(rng.integers(0, 240, (n, 4, 4, 3)), np.ones((1, 8, 8, 1)))
    return (base + rng.integers(0, 16, (n, 32, 32, 3))).astype(np.uint8)


def write_data(preset, directory: Path):
    from dataset_files import cifar_arrays, svhn_arrays, write_cifar_archive, write_svhn_dir
    from bctrain.data import cifar10
    if preset == "cifar10":
        arrays = cifar_arrays(n_per_batch=20, n_test=30)
        arrays = {name: (smooth_images(len(x), i), y) for i, (name, (x, y)) in enumerate(arrays.items())}
        directory.mkdir(parents=True)
        write_cifar_archive(directory / cifar10.ARCHIVE, arrays)
    else:
        arrays = svhn_arrays(n_train=60, n_extra=40, n_test=30)
        write_svhn_dir(directory, {name: (smooth_images(len(x), i), y)
                                   for i, (name, (x, y)) in enumerate(arrays.items())})


def timed(cmd, env) -> float:
    """Seconds of a command; a failure raises with the last lines of its output."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-5:])
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{tail}")
    return time.perf_counter() - start


def compile_cost(c_dir: str) -> dict:
    """Seconds, object sections and source bytes of bcnn_model.c built natively (-c)."""
    from bcexport.c.build import NATIVE, STRICT, find_cc, size_of
    source = os.path.join(c_dir, "bcnn_model.c")
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "model.o")
        start = time.perf_counter()
        subprocess.run([find_cc(), *STRICT, *NATIVE, f"-I{c_dir}", "-c", source, "-o", obj], check=True)
        seconds = time.perf_counter() - start
        sections = size_of(obj, "size")
    return {"compiler": find_cc(), "seconds": seconds, "source_bytes": os.path.getsize(source), **sections}


def entry_times(run_dir: str, dep) -> dict:
    """Median ms per call of the float and the pixel entry points (one thread), at batch 1 and 16."""
    from bcexport.backends import c_model
    model = c_model(run_dir)
    rng = np.random.default_rng(0)
    out = {}
    for batch in (1, 16):
        pixels = rng.integers(0, 256, (batch, *dep.input_shape), dtype=np.uint8)
        x = rng.standard_normal((batch, *dep.input_shape)).astype(np.float32)
        scratch = model.new_scratch()
        times = {"x": [], "pixels": []}
        for _ in range(CALLS):
            for feed, inputs in (("x", x), ("pixels", pixels)):
                start = time.perf_counter()
                model.predict(inputs, feed, scratch)
                times[feed].append(1e3 * (time.perf_counter() - start))
        out[f"batch{batch}"] = {f"{feed}_ms": float(np.median(t)) for feed, t in times.items()}
        out[f"batch{batch}"]["preprocessing_ms_per_image"] = (out[f"batch{batch}"]["pixels_ms"]
                                                             - out[f"batch{batch}"]["x_ms"]) / batch
    return out


def zca_float32(run_dir: str, dep) -> dict:
    """max over samples of max_j |logits(x') - logits(x64)| / tol for float32 ZCA variants x'."""
    from bctrain.data import gcn
    from bctrain.data.preprocess import CIFAR_GCN_SCALE, KINDS
    from bcexport import reference, verify
    pixels, _, _ = verify.load_test_data(run_dir)
    probes = np.random.default_rng(0).integers(0, 256, (verify.N_PROBES,) + pixels.shape[1:], dtype=np.uint8)
    pixels = np.concatenate([pixels, probes])
    kind = KINDS[dep.preprocess]
    x32 = kind.apply(pixels, dep.params)
    ref = reference.forward(dep, kind.apply(pixels, dep.params, np.float64))
    tol = verify.tolerance(ref, verify.noise_level(dep, x32, ref))
    g = gcn.gcn(pixels, CIFAR_GCN_SCALE, np.float32) - dep.params["zca_mean"]
    p = np.asarray(dep.params["zca_p"], np.float32)
    sequential = np.zeros_like(g)
    for i in range(g.shape[1]):            # acc = acc + g_i * P_i, each operation rounded to float32
        sequential += g[:, i:i + 1] * p[i]
    out = {}
    for name, x in (("float32_blas", g @ p), ("float32_sequential", sequential)):
        dev = np.abs(reference.forward(dep, x) - ref).max(axis=1) / tol
        out[name] = {"max_over_tol": float(dev.max()), "samples_over_tol": int(np.sum(dev > 1))}
    return out


def measure(preset: str, work: Path, env) -> dict:
    from bcexport.pack import load_deployment
    data, run = work / f"{preset}-data", work / f"{preset}-run"
    write_data(preset, data)
    py = [sys.executable, "-m"]
    seconds = {"train": timed([*py, "bctrain.cli", "train", "--preset", preset, *TRAIN_FLAGS, "--data-dir",
                               str(data), "--run-dir", str(run)], env)}
    for step in ("onnx", "c", "verify"):
        seconds[f"bcexport {step}"] = timed([*py, "bcexport.cli", step, str(run)], env)
    report = json.loads((run / "verify.json").read_text())
    summary = json.loads((run / "c" / "export.json").read_text())
    dep = load_deployment(str(run))
    from bcexport.c.plan import make_plan
    result = {
        "preset": preset, "network": summary["network"], "binary_weights": summary["binary_weights"],
        "preprocess": dep.preprocess, "seconds": seconds, "verify_passed": report["passed"],
        "verify": {name: {k: b[k] for k in ("max_diff_over_tol", "passed")} for name, b in report["backends"].items()},
        "rtol": report["tolerance"]["rtol"], "rtol_pixels": report["tolerance"].get("rtol_pixels"),
        "weight_bytes": summary["weight_bytes"], "native": summary["native"],
        "microcontroller": summary["microcontroller"],
        "conv_rows": [s.rows for s in make_plan(dep).conv_steps],
        "compile": compile_cost(str(run / "c")), "entry_points": entry_times(str(run), dep),
    }
    if dep.preprocess == "gcn_zca":
        result["zca_float32"] = zca_float32(str(run), dep)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated (default: cifar10,svhn)")
    parser.add_argument("--keep", help="keep the run directories in this (new) directory")
    parser.add_argument("--out", default="benchmarks/results/bench_cnn_c.json", help="JSON results file")
    args = parser.parse_args(argv)
    presets = args.presets.split(",")
    if not set(presets) <= set(PRESETS):
        parser.error(f"--presets {args.presets!r}: expected some of {', '.join(PRESETS)}")
    if args.keep and os.path.exists(args.keep):
        parser.error(f"--keep {args.keep}: already exists")
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-cnn-c-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BCNN_CACHE": str(work / "cache"), "PYTHONPATH": str(ROOT)}
    try:
        results = [measure(p, work, env) for p in presets]
    except RuntimeError as exc:
        print(f"bench_cnn_c: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result = {"cpu": machine.cpu_model(), "results": results}
    print(render_cnn_c(provenance.write(args.out, result, "benchmarks.bench_cnn_c", argv)))
    return 0 if all(r["verify_passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
