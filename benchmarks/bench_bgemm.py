"""Speed of the binary product kernel bcnn_bgemm (bcexport/c/csrc/bcnn_bgemm.h, paper §9), per path.

On the dense layers of the `mnist` preset (K x N = 784x2048, 2048x2048, 2048x2048, 2048x10), at
M = 1 (batch-1 latency) and M = --batch (256: throughput), one thread. Every path this CPU runs (portable, AVX2,
AVX-512) is built with gcc -O2 into benchmarks/bench_bgemm.c; paths are interleaved over rounds (one
process per path and round, every shape timed for --seconds), the median round is reported.
Reported per path and shape: µs per call, weight bits per ns (M·K·N / time: each weight bit is used
once per row), and instructions per weight bit: counted by callgrind on one 2048x2048 product at
M = 1 and M = 8 (where valgrind runs the path: not AVX-512), and read from the compiled inner loops
(instructions of each loop that does table lookups, divided by the weight bits one pass covers).
Context, on the same shapes, single-threaded: onnxruntime MatMul with float32 ±1 weights, and
NumPy float32 matmul (OpenBLAS, 1 thread if NumPy was not imported before this module).

Usage: make bench-bgemm   (or: python -m benchmarks.bench_bgemm [--seconds S] [--rounds N] [--out PATH])
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from bctrain.paper.arch import layer_specs  # noqa: E402
from bctrain.config import with_overrides  # noqa: E402
from bccommon import machine  # noqa: E402
from benchmarks import provenance  # noqa: E402
from benchmarks.tables.ckernels import render_bgemm  # noqa: E402
from bcexport.c.csrc import CSRC, PATHS, cpu_features  # noqa: E402

SOURCE = Path(__file__).with_name("bench_bgemm.c")
CC = "gcc"
OPT = ("-std=c99", "-O2")
BATCH = 256
COUNT_SHAPE = (2048, 2048)   # the callgrind product
LOOKUP = re.compile(r"\bvperm(ps|d)\b")


def mnist_layers() -> list:
    """[(K, N)] of the mnist preset's blocks (bctrain.paper.arch, the one description)."""
    return [(s.n_in * s.kernel * s.kernel, s.n_out) for s in layer_specs(with_overrides("mnist"))]


def runnable_paths() -> list:
    have = cpu_features()
    return [name for name, p in PATHS.items() if name != "neon" and set(p.cpu) <= have]


def build(path: str, out_dir: Path) -> Path:
    exe = out_dir / f"bench_{path}"
    subprocess.run([CC, *OPT, *PATHS[path].flags, f"-I{CSRC}", str(SOURCE), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    return exe


def time_round(exe: Path, shapes, seconds: float) -> dict:
    """{(M, K, N): seconds per call} from one process."""
    out = subprocess.run([str(exe), "time", str(seconds), *(f"{m}x{k}x{n}" for m, k, n in shapes)],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    rows = [line.split() for line in out[1:] if line]
    return {(int(r[0]), int(r[1]), int(r[2])): float(r[4]) for r in rows}


def callgrind_instructions(exe: Path, shape) -> float | None:
    """Instructions of one call, callgrind's count of 3 calls minus 1 call, halved; None without valgrind."""
    if not shutil.which("valgrind"):
        return None
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for calls in (1, 3):
            out = Path(tmp) / f"cg.{calls}"
            proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe),
                                   "count", str(calls), "x".join(map(str, shape))], capture_output=True, text=True)
            if proc.returncode != 0 or not out.exists():
                return None   # e.g. an instruction set valgrind does not emulate (AVX-512)
            totals = [line for line in out.read_text().splitlines() if line.startswith(("summary:", "totals:"))]
            counts.append(int(totals[0].split()[1]))
    return (counts[1] - counts[0]) / 2


def loop_instructions(path: str, out_dir: Path) -> list:
    """[(lookups, instructions, instructions per weight bit)] of the compiled inner loops that look
    tables up: a zmm vperm covers 16 outputs x 4 inputs, a ymm one 8 x 4."""
    asm = out_dir / f"bench_{path}.s"
    subprocess.run([CC, *OPT, *PATHS[path].flags, f"-I{CSRC}", "-S", str(SOURCE), "-o", str(asm)],
                   check=True, capture_output=True, text=True)
    lines = [ln.split("#")[0].strip() for ln in asm.read_text().splitlines()]
    labels = {ln[:-1]: i for i, ln in enumerate(lines) if re.fullmatch(r"\.L\w+:", ln)}
    loops = []
    for i, ln in enumerate(lines):
        jump = re.fullmatch(r"j\w+\s+(\.L\w+)", ln)
        start = labels.get(jump.group(1)) if jump else None
        if start is None or start > i:
            continue
        span = lines[start + 1:i + 1]
        body = [b for b in span if b and not b.startswith(".")]
        perms = [b for b in body if LOOKUP.search(b)]
        if perms and not any(b.endswith(":") for b in span):   # innermost: no label inside
            bits = sum(64 if "zmm" in b else 32 for b in perms)
            loops.append((len(perms), len(body), len(body) / bits))
    return sorted(set(loops))


def clock_ghz(exe: Path) -> float | None:
    """Clock of this core while busy, from a chain of dependent integer additions (1 cycle each)."""
    proc = subprocess.run([str(exe), "clock"], capture_output=True, text=True)
    return float(proc.stdout.split()[-1]) if proc.returncode == 0 else None


def time_fn(fn, seconds: float) -> float:
    fn()
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls


def context_runners(shapes, seed: int) -> dict:
    """{back end: {(M, K, N): call}}: float32 products with ±1 weights, one thread."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    out = {"onnxruntime": {}, "numpy": {}}
    for m, k, n in shapes:
        w = np.where(rng.random((k, n)) < 0.5, -1.0, 1.0).astype(np.float32)
        x = rng.uniform(-1, 1, (m, k)).astype(np.float32)
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "matmul",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
                                  [numpy_helper.from_array(w, "w")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        out["onnxruntime"][(m, k, n)] = lambda sess=sess, x=x: sess.run(None, {"x": x})
        out["numpy"][(m, k, n)] = lambda x=x, w=w: x @ w
    return out


def summarize(rounds: list, layers, batch: int) -> dict:
    """Median over rounds per shape, and the whole network: batch-1 latency, batch throughput."""
    shapes = list(rounds[0])
    med = {s: float(np.median([r[s] for r in rounds])) for s in shapes}
    return {"shapes": {f"{m}x{k}x{n}": {"us_per_call": 1e6 * med[(m, k, n)],
                                       "weight_bits_per_ns": m * k * n / med[(m, k, n)] * 1e-9}
                       for m, k, n in shapes},
            "network_batch1_us": 1e6 * sum(med[(1, k, n)] for k, n in layers),
            "network_batch_samples_per_s": batch / sum(med[(batch, k, n)] for k, n in layers)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.1, help="timed seconds per shape and round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    parser.add_argument("--batch", type=int, default=BATCH, help="M of the batch rows (the other is M = 1)")
    parser.add_argument("--callgrind", action=argparse.BooleanOptionalAction, default=True,
                        help="count instructions with callgrind")
    parser.add_argument("--context", action=argparse.BooleanOptionalAction, default=True,
                        help="also time onnxruntime and NumPy float32 on the same shapes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the context back ends' inputs")
    parser.add_argument("--out", default="benchmarks/results/bench_bgemm.json", help="JSON results file")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.batch < 2:
        parser.error("--seconds must be > 0, --rounds >= 1 and --batch >= 2")
    if not shutil.which(CC):
        print(f"bench_bgemm: error: no C compiler {CC} on PATH", file=sys.stderr)
        return 2
    layers = mnist_layers()
    shapes = list(dict.fromkeys((m, k, n) for m in (1, args.batch) for k, n in layers))
    paths = runnable_paths()
    context = context_runners(shapes, args.seed) if args.context else {}
    timed = {name: [] for name in [*paths, *context]}
    instructions = {}
    with tempfile.TemporaryDirectory() as tmp:
        exes = {p: build(p, Path(tmp)) for p in paths}
        clock = clock_ghz(exes["portable"])
        for _ in range(args.rounds):
            for p in paths:
                timed[p].append(time_round(exes[p], shapes, args.seconds))
            for name, fns in context.items():
                timed[name].append({s: time_fn(fn, args.seconds) for s, fn in fns.items()})
        for p in paths:
            per_bit = {}
            for m in (1, 8):
                count = callgrind_instructions(exes[p], (m, *COUNT_SHAPE)) if args.callgrind else None
                per_bit[f"M={m}"] = count / (m * COUNT_SHAPE[0] * COUNT_SHAPE[1]) if count else None
            instructions[p] = {"callgrind_per_weight_bit_2048x2048": per_bit,
                               "inner_loops": [{"lookups": a, "instructions": b, "per_weight_bit": c}
                                               for a, b, c in loop_instructions(p, Path(tmp))]}
    results = {name: summarize(rounds, layers, args.batch) for name, rounds in timed.items()}
    for p in paths:
        results[p]["instructions"] = instructions[p]
        if clock:
            results[p]["cycles_per_weight_bit"] = {k: clock / v["weight_bits_per_ns"]
                                                   for k, v in results[p]["shapes"].items()}
    cc_version = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {"device": machine.describe(), "clock_ghz_under_load": clock,
              "compiler": cc_version, "flags": {p: [*OPT, *PATHS[p].flags] for p in paths},
              "layers": layers, "batch": args.batch, "rounds": args.rounds, "seconds": args.seconds,
              "threads": 1, "results": results}
    print(render_bgemm(provenance.write(args.out, result, "benchmarks.bench_bgemm", argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
