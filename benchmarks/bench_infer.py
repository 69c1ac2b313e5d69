"""Inference speed of an exported run: TensorFlow vs onnxruntime on model.onnx and model.packed.onnx.

Measures, for each back end, the latency of one batch-1 call (median and p90 over --calls timed
calls, in ms) and the throughput at batch 256 (samples/s, median over --rounds repeats of --batches
consecutive calls). Back ends:
    TF            the folded ±1 inference tf.function (bcexport.tfmodel) as a concrete function
    ORT           onnxruntime on model.onnx          (float32 ±1 initializers)
    ORT packed    onnxruntime on model.packed.onnx   (1-bit weights unpacked in-graph)
    NumPy f32     the NumPy reference pass in float32, ±1 weights unpacked once (context only)
Every call goes from a NumPy array to NumPy logits (input conversion and output copy included).
All back ends use the same thread count (--threads, default os.cpu_count()): TF intra- and inter-op
threads, onnxruntime intra- and inter-op threads, OpenBLAS threads (read once, at NumPy import).
Inputs are random float32 of the preprocessed shape, not test images: the dense and convolution
kernels do the same work whatever the values. Back ends are interleaved over rounds, so a slow spell
of the machine hits every row alike, and each block of calls starts with a few untimed calls (a
thread pool left spinning by the previous back end is not charged to the next one).

Usage: make bench-infer RUN_DIR=runs/mnist-det
   (or: python -m benchmarks.bench_infer RUN_DIR [--threads N] [--calls N] [--out PATH])
"""
import argparse
import os
import sys
import time

from bcexport import ExportError  # stdlib only: NumPy is imported after OPENBLAS_NUM_THREADS is set

BATCH = 256


def _import_libraries(threads):
    """Import the numeric libraries with `threads` BLAS threads (no effect if NumPy is already in)."""
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    global np, tf, ort, session, ConfigError, runfiles, reference, load_deployment, inference_function
    global atomic_write_json, device_name
    import numpy as np
    import onnxruntime as ort
    import tensorflow as tf
    from bctrain.config import ConfigError
    from bctrain.rundir import atomic_write_json
    from bctrain.train import device_name
    from bctrain import runfiles
    from bcexport import reference
    from bcexport.onnx_export import session
    from bcexport.pack import load_deployment
    from bcexport.tfmodel import inference_function


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


def runners(run_dir, dep, threads, with_numpy):
    """{back end: function NumPy float32 [N, *input_shape] -> NumPy logits}."""
    infer = inference_function(dep).get_concrete_function()
    out = {"TF": lambda x: infer(tf.constant(x)).numpy(),
           "ORT": ort_runner(os.path.join(run_dir, runfiles.MODEL_ONNX), threads),
           "ORT packed": ort_runner(os.path.join(run_dir, runfiles.MODEL_PACKED_ONNX), threads)}
    if with_numpy:
        weights = [(b.wb, b.a, b.c) for b in dep.blocks]  # unpacked once, as a deployment would
        out["NumPy f32"] = lambda x: reference.forward_unpacked(dep.blocks, weights, x)
    return out


def latencies(fn, x, calls, warmup):
    """Seconds of each of `calls` timed calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return times


def throughput(fn, x, batches, warmup):
    """Samples/s over `batches` consecutive calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn(x)
    start = time.perf_counter()
    for _ in range(batches):
        fn(x)
    return batches * len(x) / (time.perf_counter() - start)


def measure(fns, x1, xb, args):
    """Interleaved rounds: every back end gets its share of batch-1 calls and one throughput repeat."""
    lat = {name: [] for name in fns}
    rates = {name: [] for name in fns}
    per_round = [args.calls // args.rounds + (r < args.calls % args.rounds) for r in range(args.rounds)]
    for calls in per_round:
        for name, fn in fns.items():
            lat[name] += latencies(fn, x1, calls, args.warmup)
            rates[name].append(throughput(fn, xb, args.batches, max(1, args.warmup // 5)))
    return {name: {"batch1_ms_median": 1e3 * float(np.median(lat[name])),
                   "batch1_ms_p90": 1e3 * float(np.percentile(lat[name], 90)),
                   "batch1_ms_min": 1e3 * float(np.min(lat[name])),
                   f"batch{BATCH}_samples_per_s": float(np.median(rates[name])),
                   f"batch{BATCH}_samples_per_s_rounds": rates[name]} for name in fns}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory exported with `bcexport onnx`")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every back end")
    parser.add_argument("--calls", type=int, default=300, help="timed batch-1 calls per back end")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (throughput repeats)")
    parser.add_argument("--batches", type=int, default=10, help=f"batch-{BATCH} calls per throughput repeat")
    parser.add_argument("--warmup", type=int, default=10, help="untimed batch-1 calls before each block")
    parser.add_argument("--numpy", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the NumPy float32 reference")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--out", default="benchmarks/results/bench_infer.json", help="JSON results file")
    args = parser.parse_args(argv)
    if min(args.threads, args.calls, args.rounds, args.batches) < 1 or args.warmup < 0:
        parser.error("--threads, --calls, --rounds and --batches must be >= 1, --warmup >= 0")
    numpy_preloaded = "numpy" in sys.modules
    _import_libraries(args.threads)
    try:
        dep = load_deployment(args.run_dir)
        for name in (runfiles.MODEL_ONNX, runfiles.MODEL_PACKED_ONNX):
            if not os.path.isfile(os.path.join(args.run_dir, name)):
                raise ExportError(f"{args.run_dir}: no {name}; run `bcexport onnx {args.run_dir}` first")
        set_tf_threads(args.threads)
        fns = runners(args.run_dir, dep, args.threads, args.numpy)
    except (ExportError, ConfigError) as exc:
        print(f"bench_infer: error: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    xb = rng.standard_normal((BATCH, *dep.input_shape)).astype(np.float32)
    x1 = np.ascontiguousarray(xb[:1])
    rows = measure(fns, x1, xb, args)
    blas = "OpenBLAS default, NumPy imported first" if numpy_preloaded else args.threads
    print(f"device: {device_name()}; TensorFlow {tf.__version__}, onnxruntime {ort.__version__}, "
          f"NumPy {np.__version__}")
    print(f"run: {args.run_dir} ({dep.cfg.preset}, input {dep.input_shape}, "
          f"{dep.n_binary_weights:,} binary weights); threads: {args.threads} (BLAS: {blas}); "
          f"random float32 inputs")
    print(f"batch 1: {args.calls} timed calls; batch {BATCH}: median of {args.rounds} x {args.batches} calls")
    print(f"{'back end':12s} {'b1 median ms':>13s} {'b1 p90 ms':>10s} {f'b{BATCH} samples/s':>16s}")
    for name, r in rows.items():
        print(f"{name:12s} {r['batch1_ms_median']:13.3f} {r['batch1_ms_p90']:10.3f} "
              f"{r[f'batch{BATCH}_samples_per_s']:16,.0f}")
    result = {"run_dir": args.run_dir, "preset": dep.cfg.preset, "input_shape": list(dep.input_shape),
              "binary_weights": dep.n_binary_weights, "inputs": "random float32 N(0, 1), preprocessed shape",
              "device": device_name(), "threads": args.threads, "blas_threads": blas,
              "versions": {"tensorflow": tf.__version__, "onnxruntime": ort.__version__,
                           "numpy": np.__version__},
              "calls": args.calls, "rounds": args.rounds, "batches": args.batches, "warmup": args.warmup,
              "batch_size": BATCH, "results": rows}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
