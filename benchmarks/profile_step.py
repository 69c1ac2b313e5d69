"""Where one training step's time goes: TensorFlow's profiler over a few steps, the median one shown.

Profiles --steps steps of the `mnist` step (as bctrain.step.build makes it, fed one constant batch, op
determinism on) and prints, for the step of median length:
- with --timeline, every kernel of at least --min-ms on a compute thread: start within the step,
  duration, thread, name (XLA's kernels are named after the fusion or the TensorFlow op they came
  from: `MatMul_1.8` is a product, `compare_select_fusion.3` an elementwise fusion);
- by kind, the time during which some kernel of that kind ran: matrix products, the fused update
  (BcAdamUpdate), other kernels (binarization, BatchNorm, the loss, their gradients, the XLA
  update); kernels of different kinds may run at once, so these may add up to more than the step;
- the time during which some kernel ran on some thread (their union), and the rest of the step,
  with no kernel event on any thread: dispatch, launching the XLA computation, waits, and any
  work the profiler does not record as a kernel (the gaps the timeline shows).
Profiling slows a step a little; compare kinds within one run rather than with `make bench-train`.

Usage: python -m benchmarks.profile_step [--precision float32] [--steps 10] [--timeline]
"""
import argparse
import glob
import os
import tempfile

import numpy as np

from benchmarks.quiet_tf import VERBOSE_FLAG, VERBOSE_HELP, tf  # first: TensorFlow loads quietly
from benchmarks.bench_train import synthetic
from bctrain import choices
from bctrain.config import with_overrides
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step, plan_for

STEP_NAMES = ("fused_train_step", "train_step", "reference_step")  # outermost tf.functions (bctrain.step.build)
KINDS = ("products", "update", "other kernels")
FRAMEWORK = ("BlockUntilReady",)  # framework events whose names have no "::"


def is_kernel(name: str) -> bool:
    """False for the profiler's framework events (executors, thread pools, waits, allocation markers)."""
    return not ("::" in name or name in FRAMEWORK or name.startswith(("end: ", "Memory")))


def kind_of(name: str) -> str:
    op, _, op_type = name.partition(":")
    if "BcAdamUpdate" in op_type or op.startswith("BcAdamUpdate"):
        return "update"
    if "MatMul" in name or op.startswith("dot"):
        return "products"
    return "other kernels"


def union_seconds(intervals) -> float:
    """Length of the union of [start, end) intervals."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def leaf_kernels(events):
    """Kernel events (start, end, thread, name) that contain no other kernel of their thread.

    A thread's events nest (each is a scope on that thread), so in order of start (the longer first)
    an event contains another exactly when the next one starts inside it."""
    out = []
    by_thread = {}
    for e in events:
        by_thread.setdefault(e[2], []).append(e)
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e[0], -e[1]))
        for here, after in zip(evs, evs[1:] + [None]):
            if after is None or not (after[0] < here[1] and after[1] <= here[1] and after[:2] != here[:2]):
                out.append(here)
    return sorted(out)


def summarize(kernels, step_start, step_end) -> dict:
    """Seconds during which some kernel of each kind ran, some kernel at all, and none, in one step."""
    inside = [(max(s, step_start), min(e, step_end), th, n) for s, e, th, n in kernels
              if e > step_start and s < step_end]
    out = {kind: union_seconds([(s, e) for s, e, _, n in inside if kind_of(n) == kind]) for kind in KINDS}
    out["step"] = step_end - step_start
    out["some kernel running"] = union_seconds([(s, e) for s, e, _, _ in inside])
    out["no kernel event"] = out["step"] - out["some kernel running"]
    return out


def read_trace(logdir):
    """(steps [(start, end)], kernel events [(start, end, thread, name)]) in seconds, from the host plane."""
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as exc:
        raise SystemExit(f"profile_step: this TensorFlow has no profiler protobufs ({exc})")
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise SystemExit(f"profile_step: the profiler wrote no trace under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as fh:
        space.ParseFromString(fh.read())
    steps, events = [], []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "?")
                start = (line.timestamp_ns * 1000 + ev.offset_ps) * 1e-12
                end = start + ev.duration_ps * 1e-12
                if name in STEP_NAMES and line.name == "python":
                    steps.append((start, end))
                elif line.name != "python" and is_kernel(name):
                    events.append((start, end, line.name, name))
    return sorted(steps), leaf_kernels(events)


def profile(precision, kernel, steps, hidden=None, warmup=5):
    cfg = with_overrides("mnist", precision=precision, hidden=hidden, update_kernel=kernel)
    plan = plan_for(cfg)
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start,
                    loss_scale=net.precision.loss_scaling)
    step = make_train_step(net, opt, plan)
    x, y_pm1 = synthetic(cfg.batch_size, 1, n_in=net.specs[0].n_in)
    x, y_pm1 = tf.constant(x), tf.constant(y_pm1)
    for _ in range(warmup):
        float(step(x, y_pm1)[0])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            loss, _ = step(x, y_pm1)
        float(loss)
        tf.profiler.experimental.stop()
        return (plan.update,) + read_trace(logdir)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--update-kernel", default="auto", choices=tuple(choices.UPDATE_KERNELS))
    parser.add_argument("--steps", type=int, default=10, help="profiled steps (after 5 untimed ones)")
    parser.add_argument("--hidden", type=lambda t: tuple(int(v) for v in t.split(",")), default=None,
                        help="hidden layers instead of the preset's 2048,2048,2048 (smoke tests)")
    parser.add_argument("--timeline", action="store_true", help="print the median step's kernels")
    parser.add_argument("--min-ms", type=float, default=0.05, help="shortest kernel the timeline shows")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    tf.config.experimental.enable_op_determinism()
    update_kernel, steps, kernels = profile(args.precision, args.update_kernel, args.steps, args.hidden)
    if not steps:
        raise SystemExit("profile_step: no training step found in the trace")
    start, end = sorted(steps, key=lambda s: s[1] - s[0])[len(steps) // 2]
    threads = {th: f"t{i}" for i, th in enumerate(sorted({k[2] for k in kernels}))}
    print(f"{args.precision}, update kernel {update_kernel}: median of {len(steps)} profiled steps")
    if args.timeline:
        print("\n| start ms | ms | thread | kernel |\n|---|---|---|---|")
        for s, e, th, name in kernels:
            if start <= s < end and e - s >= args.min_ms * 1e-3:
                print(f"| {1e3 * (s - start):.2f} | {1e3 * (e - s):.2f} | {threads[th]} | {name} |")
    print("\n| | ms |\n|---|---|")
    for key, value in summarize(kernels, start, end).items():
        print(f"| {key} | {1e3 * value:.2f} |")


if __name__ == "__main__":
    main()
