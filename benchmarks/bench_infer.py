"""Inference speed of an exported run: TensorFlow, onnxruntime and the generated C, 1 and 2 threads.

Measures, for each back end, the latency of one batch-1 call (median and p90 over --calls timed
calls, in ms), the throughput at batch 256 (samples/s, median over --rounds repeats of --batches
consecutive calls) and the bytes of weights it holds once loaded (benchmarks.resident). Back ends:
    TF            the folded ±1 inference tf.function (bcexport.tfmodel) as a concrete function
    ORT           onnxruntime on model.onnx          (float32 ±1 initializers)
    ORT packed    onnxruntime on model.packed.onnx   (1-bit weights unpacked in-graph)
    C             the generated C of RUN_DIR/c (`bcexport c`), built with -O2 -march=native, called
                  through ctypes; with T threads a batch is split into T parts run in parallel, one
                  scratch each (a single sample is not split: batch 1 runs on one thread)
    NumPy f32     the NumPy reference pass in float32, ±1 weights unpacked once (context only)
Every call goes from a NumPy array to NumPy logits (input conversion and output copy included).
All back ends of one measurement use the same thread count: TF intra- and inter-op threads,
onnxruntime intra- and inter-op threads, OpenBLAS threads (read once, at NumPy import), C threads.
TF fixes its thread count once per process, so with several counts (--threads 1,2, the default)
each runs in its own process and the tables are merged. Inputs are random float32 of the
preprocessed shape, not test images: the kernels do the same work whatever the values. Back ends
are interleaved over rounds, so a slow spell of the machine hits every row alike, and each block of
calls starts with a few untimed calls (a thread pool left spinning by the previous back end is not
charged to the next one).

Usage: make bench-infer RUN_DIR=runs/mnist-det
   (or: python -m benchmarks.bench_infer RUN_DIR [--threads 1,2] [--calls N] [--out PATH])
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

# stdlib only: NumPy is imported after OPENBLAS_NUM_THREADS is set
from bctrain.config import ConfigError
from bcexport import ExportError
from benchmarks import provenance
from benchmarks.tables.infer import BATCH, ratios, render

# Wall time (the default), or with --clock cpu the CPU time of this process (time.process_time):
# on a machine shared with other jobs, time spent waiting for a core is then not counted.
CLOCK = time.perf_counter


def _import_libraries(threads, verbose=False):
    """Import the numeric libraries with `threads` BLAS threads (no effect if NumPy is already in),
    TensorFlow as quietly as the CLIs load it unless `verbose` (bctrain.run.startup)."""
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    global np, tf, ort, session, runfiles, reference, load_deployment, inference_function
    global device_name, c_model, read_c_export, resident
    import numpy as np
    import onnxruntime as ort
    from bctrain.run.startup import load_tensorflow
    tf = load_tensorflow(verbose)
    from bctrain.train import device_name
    from bccommon import runfiles
    from bcexport import reference
    from bcexport.onnx.export import session
    from bcexport.pack import load_deployment
    from bcexport.tfmodel import inference_function
    from bcexport.backends import c_model
    from bcexport.c.export import read_c_export
    from benchmarks import resident


def set_tf_threads(threads):
    """Must run before any TF op; a process whose TF runtime already started is refused."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        raise ExportError("TensorFlow is already initialised in this process: "
                          "run the benchmark in a fresh one") from None


def ort_runner(path, threads):
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


def c_runner(model, threads):
    """The C model on a batch split into `threads` contiguous parts, one thread and scratch each."""
    scratches = [model.new_scratch() for _ in range(threads)]
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def run(x):
        if pool is None or len(x) == 1:
            return model.predict(x, "x", scratches[0])
        bounds = np.linspace(0, len(x), min(threads, len(x)) + 1).astype(int)
        parts = [pool.submit(model.predict, x[a:b], "x", s) for a, b, s in zip(bounds, bounds[1:], scratches)]
        return np.concatenate([p.result() for p in parts])
    return run


def runners(run_dir, dep, threads, with_numpy):
    """{back end: (function NumPy float32 [N, *input_shape] -> NumPy logits, weight bytes held)}."""
    infer = inference_function(dep).get_concrete_function()
    out = {"TF": (lambda x: infer(tf.constant(x)).numpy(), resident.tf_weight_bytes(infer))}
    for name, file in (("ORT", runfiles.MODEL_ONNX), ("ORT packed", runfiles.MODEL_PACKED_ONNX)):
        path = os.path.join(run_dir, file)
        out[name] = (ort_runner(path, threads), resident.ort_weight_bytes(path))
    if os.path.isdir(os.path.join(run_dir, runfiles.C_DIR)):
        model = c_model(run_dir)
        out["C"] = (c_runner(model, threads), resident.c_weight_bytes(model.library))
    if with_numpy:
        weights = [(b.wb, b.a, b.c) for b in dep.blocks]  # unpacked once, as a deployment would
        out["NumPy f32"] = (lambda x: reference.forward_unpacked(dep.blocks, weights, x),
                            resident.numpy_weight_bytes(weights))
    return out


def latencies(fn, x, calls, warmup):
    """Seconds of each of `calls` timed calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(calls):
        start = CLOCK()
        fn(x)
        times.append(CLOCK() - start)
    return times


def throughput(fn, x, batches, warmup):
    """Samples/s over `batches` consecutive calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn(x)
    start = CLOCK()
    for _ in range(batches):
        fn(x)
    return batches * len(x) / (CLOCK() - start)


def measure(fns, x1, xb, args):
    """Interleaved rounds: every back end gets its share of batch-1 calls and one throughput repeat."""
    lat = {name: [] for name in fns}
    rates = {name: [] for name in fns}
    per_round = [args.calls // args.rounds + (r < args.calls % args.rounds) for r in range(args.rounds)]
    for calls in per_round:
        for name, (fn, _) in fns.items():
            lat[name] += latencies(fn, x1, calls, args.warmup)
            rates[name].append(throughput(fn, xb, args.batches, max(1, args.warmup // 5)))
    return {name: {"batch1_ms_median": 1e3 * float(np.median(lat[name])),
                   "batch1_ms_p90": 1e3 * float(np.percentile(lat[name], 90)),
                   "batch1_ms_min": 1e3 * float(np.min(lat[name])),
                   f"batch{BATCH}_samples_per_s": float(np.median(rates[name])),
                   f"batch{BATCH}_samples_per_s_rounds": rates[name],
                   "weight_bytes": fns[name][1]} for name in fns}


def measure_run(args, threads) -> dict:
    """One process, one thread count: the result dict (ExportError/ConfigError for unusable input)."""
    numpy_preloaded = "numpy" in sys.modules
    _import_libraries(threads, args.verbose)
    dep = load_deployment(args.run_dir)
    for name in (runfiles.MODEL_ONNX, runfiles.MODEL_PACKED_ONNX):
        if not os.path.isfile(os.path.join(args.run_dir, name)):
            raise ExportError(f"{args.run_dir}: no {name}; run `bcexport onnx {args.run_dir}` first")
    set_tf_threads(threads)
    fns = runners(args.run_dir, dep, threads, args.numpy)
    if args.backends:
        keep = [b.strip() for b in args.backends.split(",")]
        unknown = [b for b in keep if b not in fns]
        if unknown:
            raise ExportError(f"--backends: no back end {unknown[0]!r} here (have: {', '.join(fns)})")
        fns = {name: fn for name, fn in fns.items() if name in keep}
    rng = np.random.default_rng(args.seed)
    xb = rng.standard_normal((BATCH, *dep.input_shape)).astype(np.float32)
    x1 = np.ascontiguousarray(xb[:1])
    rows = measure(fns, x1, xb, args)
    c_build = c_model(args.run_dir).build if "C" in fns else None
    return {"run_dir": args.run_dir, "preset": dep.cfg.preset, "input_shape": list(dep.input_shape),
            "binary_weights": dep.n_binary_weights, "inputs": "random float32 N(0, 1), preprocessed shape",
            "device": device_name(), "threads": threads,
            "blas_threads": "OpenBLAS default, NumPy imported first" if numpy_preloaded else threads,
            "versions": {"tensorflow": tf.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
            "c_build": c_build, "c_kernel_path": c_model(args.run_dir).kernel_path if c_build else None,
            "c_code_version": (read_c_export(args.run_dir) or {}).get("code_version") if c_build else None,
            "clock": args.clock, "calls": args.calls, "rounds": args.rounds, "batches": args.batches, "warmup": args.warmup,
            "batch_size": BATCH, "results": rows}


def child_run(args, threads) -> dict:
    """measure_run in a fresh process (TF fixes its thread count once per process)."""
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as tmp:
        out = os.path.join(tmp, "run.json")
        cmd = [sys.executable, "-m", "benchmarks.bench_infer", args.run_dir, "--threads", str(threads),
               "--calls", str(args.calls), "--rounds", str(args.rounds), "--batches", str(args.batches),
               "--warmup", str(args.warmup), "--seed", str(args.seed), "--out", out,
               "--numpy" if args.numpy else "--no-numpy", *(["--verbose"] if args.verbose else []),
               *(["--backends", args.backends] if args.backends else []), "--clock", args.clock]
        if subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode != 0:
            raise ExportError(f"the {threads}-thread measurement failed (its error is above)")
        with open(out) as fh:
            return json.load(fh)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory exported with `bcexport onnx` "
                                                           "(and `bcexport c` for the C row)")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated (default: 1,2)")
    parser.add_argument("--calls", type=int, default=300, help="timed batch-1 calls per back end")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (throughput repeats)")
    parser.add_argument("--batches", type=int, default=10, help=f"batch-{BATCH} calls per throughput repeat")
    parser.add_argument("--warmup", type=int, default=10, help="untimed batch-1 calls before each block")
    parser.add_argument("--numpy", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the NumPy float32 reference")
    parser.add_argument("--backends", default="", help="comma-separated back ends to time (default: all), "
                                                        "e.g. 'ORT,C' for C against onnxruntime alone")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or this process's CPU time (a loaded machine; --threads 1 only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--out", help="JSON results file (default: benchmarks/results/bench_infer_PRESET.json)")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up lines (hidden by default, as in bctrain and bcexport)")
    args = parser.parse_args(argv)
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
    try:
        counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads {args.threads!r}: expected comma-separated integers")
    if args.clock == "cpu" and counts != [1]:
        parser.error("--clock cpu measures one thread: use it with --threads 1")
    if min(counts + [args.calls, args.rounds, args.batches]) < 1 or args.warmup < 0:
        parser.error("--threads, --calls, --rounds and --batches must be >= 1, --warmup >= 0")
    try:
        runs = [measure_run(args, counts[0])] if len(counts) == 1 else [child_run(args, t) for t in counts]
    except (ExportError, ConfigError) as exc:
        print(f"bench_infer: error: {exc}", file=sys.stderr)
        return 2
    result = runs[0] if len(counts) == 1 else {"threads": counts, "runs": runs}
    result["ratios"] = {str(run["threads"]): ratios(run) for run in runs}
    out = args.out or os.path.join(provenance.RESULTS_DIR, f"bench_infer_{runs[0]['preset']}.json")
    print(render(provenance.write(out, result, "benchmarks.bench_infer", argv, runs[0]["device"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
