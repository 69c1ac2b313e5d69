"""Where one training step's time goes: TensorFlow's profiler over a few steps, the median one shown.

Profiles --steps steps of a preset's step (`mnist` by default; `cifar10`, `svhn`; as
bctrain.step.build makes it for the plan `bctrain train` would run, or the one --form/--jit/
--update-kernel ask for; fed one constant batch, op determinism on) and prints, for the step of
median length:
- with --timeline, every kernel of at least --min-ms on a compute thread: start within the step,
  duration, thread, part, name (XLA's kernels are named after the fusion or the TensorFlow op they
  came from: `MatMul_1.8` is a product, `compare_select_fusion.3` an elementwise fusion);
- by part of the step (benchmarks.trace_parts: conv and dense products, bias and casts,
  binarization, pooling, BatchNorm, ReLU, loss, update, layout copies, other kernels), the time
  during which some kernel of that part ran; kernels of different parts may run at once, so these
  may add up to more than the step;
- the time during which some kernel ran on some thread (their union), and the rest of the step,
  with no kernel event on any thread. XLA's CPU runtime runs a convolution or dot asynchronously
  (the kernel event ends at the launch; the work on the thread pool has no event), so a stretch
  with no event that starts where an XLA product's event ends is counted in that product's part and
  shown as "launched products"; the rest is dispatch, launching the XLA computation, waits, and
  any work the profiler does not record as a kernel (the gaps the timeline shows);
- the TensorFlow kernels of the products (op types: e.g. `Conv2DBackpropInput` is TensorFlow's own
  kernel, `_MklConv2D...` oneDNN's), and the dtypes XLA's convolutions and dots run in.
Profiling slows a step a little; compare parts within one run rather than with `make bench-train`.

Usage: python -m benchmarks.profile_step [--preset cifar10] [--precision float32] [--steps 10] [--timeline]
"""
import argparse
import collections
import dataclasses
import glob
import os
import sys
import tempfile

import numpy as np

from benchmarks.quiet_tf import VERBOSE_FLAG, VERBOSE_HELP, tf  # first: TensorFlow loads quietly
from benchmarks.trace_parts import PARTS, hlo_parts, part_of_kernel
from bctrain import choices
from bctrain.config import PRESETS, with_overrides
from bctrain.data import pipeline
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step, plan_for

STEP_NAMES = ("fused_train_step", "train_step", "reference_step")  # outermost tf.functions (bctrain.step.build)
ASYNC_PARTS = ("conv products", "dense products")  # what XLA's CPU runtime launches asynchronously
FRAMEWORK = ("BlockUntilReady", "ParallelFor", "ExecutorDoneCallback")  # framework events without "::"


def is_kernel(name: str) -> bool:
    """False for the profiler's framework events (executors, thread pools, waits, allocation markers)."""
    return not ("::" in name or name in FRAMEWORK or name.startswith(("end: ", "Memory")))


def union_seconds(intervals) -> float:
    """Length of the union of [start, end) intervals."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def leaf_kernels(events):
    """Kernel events (start, end, thread, name, part) that contain no other kernel of their thread.

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


def gaps(intervals, start, end) -> list:
    """The parts of [start, end) that no interval covers, in order."""
    out, reach = [], start
    for s, e in sorted(intervals):
        if s > reach:
            out.append((reach, min(s, end)))
        reach = max(reach, e)
        if reach >= end:
            break
    if reach < end:
        out.append((reach, end))
    return [(s, e) for s, e in out if e > s]


def summarize(kernels, step_start, step_end) -> dict:
    """Seconds during which some kernel of each part ran, some kernel at all, and none, in one step.

    XLA's CPU runtime launches a convolution or dot on its thread pool and returns: the work then runs
    with no kernel event until the next kernel starts. So a stretch with no kernel event that begins
    where an XLA product's event ended is counted in that product's part ("launched products")."""
    inside = [(max(s, step_start), min(e, step_end), name, part) for s, e, _, name, part in kernels
              if e > step_start and s < step_end]
    spans = {part: [(s, e) for s, e, _, p in inside if p == part] for part in PARTS}
    launched = []
    for gap_start, gap_end in gaps([(s, e) for s, e, _, _ in inside], step_start, step_end):
        last = max(((e, name, p) for s, e, name, p in inside if e <= gap_start), default=None)
        if last is not None and last[2] in ASYNC_PARTS and ":" not in last[1]:  # XLA's, not `op:Type`
            spans[last[2]].append((gap_start, gap_end))
            launched.append((gap_start, gap_end))
    out = {part: union_seconds(spans[part]) for part in PARTS}
    out["step"] = step_end - step_start
    out["some kernel running"] = union_seconds([(s, e) for s, e, _, _ in inside])
    out["launched products (no event)"] = union_seconds(launched)
    out["no kernel event"] = out["step"] - out["some kernel running"] - out["launched products (no event)"]
    return out


def _protos():
    try:
        from tensorflow.compiler.xla.service import hlo_pb2
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError as exc:
        raise SystemExit(f"profile_step: this TensorFlow has no profiler protobufs ({exc})")
    return hlo_pb2, xplane_pb2


def module_protos(space) -> dict:
    """{HLO module name: its serialized HloProto} of the XLA modules the trace stores. The
    profiler keeps every module the process ever compiled, so they are parsed only when a
    profiled kernel names them."""
    out = {}
    for plane in space.planes:
        if plane.name != "/host:metadata":
            continue
        for md in plane.event_metadata.values():
            for stat in md.stats:
                if plane.stat_metadata[stat.metadata_id].name == "Hlo Proto":
                    name = md.name.rsplit("(", 1)[0] if md.name.endswith(")") else md.name  # "NAME(program id)"
                    out[name] = stat.bytes_value
    return out


def read_trace(logdir):
    """(steps [(start, end)], kernel events [(start, end, thread, name, part)] in seconds, the XLA
    modules its kernels name {name: (parts, HloModuleProto)}), from the host plane."""
    hlo_pb2, xplane_pb2 = _protos()
    paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise SystemExit(f"profile_step: the profiler wrote no trace under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[0], "rb") as fh:
        space.ParseFromString(fh.read())
    protos, modules = module_protos(space), {}

    def parts_of(module) -> dict:
        """{instruction: part} of a module a kernel names (parsed once), {} for TensorFlow's."""
        if module not in modules and module in protos:
            proto = hlo_pb2.HloProto()
            proto.ParseFromString(protos[module])
            modules[module] = (hlo_parts(proto.hlo_module), proto.hlo_module)
        return modules.get(module, ({}, None))[0]

    steps, events = [], []
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        names = {k: v.name for k, v in plane.event_metadata.items()}
        stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "?")
                start = (line.timestamp_ns * 1000 + ev.offset_ps) * 1e-12
                end = start + ev.duration_ps * 1e-12
                if name in STEP_NAMES and line.name == "python":
                    steps.append((start, end))
                elif line.name != "python" and is_kernel(name):
                    module = next((st.str_value or stat_names.get(st.ref_value) for st in ev.stats
                                   if stat_names.get(st.metadata_id) == "hlo_module"), None)
                    events.append((start, end, line.name, name, part_of_kernel(name, parts_of(module).get(name))))
    return sorted(steps), leaf_kernels(events), modules


def product_kernels(kernels, modules) -> list:
    """What runs the products: TensorFlow's kernel op types, and XLA's conv/dot operand dtypes."""
    seen = collections.Counter()
    for _, _, _, name, part in kernels:
        if part in ("conv products", "dense products") and ":" in name:
            seen[f"TensorFlow {name.partition(':')[2]}"] += 1
    for _, module in modules.values():
        for comp in module.computations:
            for ins in comp.instructions:
                if ins.opcode in ("convolution", "dot"):
                    dtype = _dtype_name(ins.shape.element_type)
                    seen[f"XLA {ins.opcode} ({dtype})"] += 1
    return sorted(seen)


def _dtype_name(element_type: int) -> str:
    from tensorflow.compiler.xla import xla_data_pb2
    return xla_data_pb2.PrimitiveType.Name(element_type).lower()


def profile(cfg, plan, steps, warmup=3):
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start,
                    loss_scale=net.precision.loss_scaling)
    step = make_train_step(net, opt, plan)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((cfg.batch_size, *cfg.input_shape)).astype(np.float32))
    y_pm1 = tf.constant(pipeline.to_pm1(rng.integers(0, cfg.n_classes, cfg.batch_size), cfg.n_classes))
    for _ in range(warmup):
        float(step(x, y_pm1)[0])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            loss, _ = step(x, y_pm1)
        float(loss)
        tf.profiler.experimental.stop()
        return read_trace(logdir)


def chosen_plan(cfg, form):
    """The run's plan, or the same with the step `form` asked for (caches as that form keeps them)."""
    plan = dataclasses.replace(plan_for(cfg), per_call=1)
    if form in (None, plan.form):
        return plan
    cached = plan.cached if plan.cached == "none" else {"whole": "first", "split": "all"}[form]
    return dataclasses.replace(plan, form=form, cached=cached, why=())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="mnist", choices=tuple(PRESETS))
    parser.add_argument("--binarize", default=None, choices=tuple(choices.BINARIZE))
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--update-kernel", default="auto", choices=tuple(choices.UPDATE_KERNELS))
    parser.add_argument("--jit", default=None, choices=("true", "false"), help="XLA on or off (default: the preset's)")
    parser.add_argument("--form", default=None, choices=("whole", "split"), help="the step's form (default: the plan's)")
    parser.add_argument("--steps", type=int, default=10, help="profiled steps (after 3 untimed ones)")
    parser.add_argument("--hidden", type=lambda t: tuple(int(v) for v in t.split(",")), default=None,
                        help="hidden layers instead of the preset's (smoke tests)")
    parser.add_argument("--conv", type=lambda t: tuple(int(v) for v in t.split(",")), default=None,
                        help="conv channels instead of the preset's (smoke tests; pools after every second)")
    parser.add_argument("--timeline", action="store_true", help="print the median step's kernels")
    parser.add_argument("--min-ms", type=float, default=0.05, help="shortest kernel the timeline shows")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(1)
    overrides = dict(precision=args.precision, hidden=args.hidden, update_kernel=args.update_kernel,
                     binarize=args.binarize, jit=None if args.jit is None else args.jit == "true")
    if args.conv:
        overrides.update(conv=args.conv, pool=tuple(i % 2 for i in range(len(args.conv))))
    cfg = with_overrides(args.preset, **overrides)
    plan = chosen_plan(cfg, args.form)
    steps, kernels, modules = profile(cfg, plan, args.steps)
    if not steps:
        raise SystemExit("profile_step: no training step found in the trace")
    start, end = sorted(steps, key=lambda s: s[1] - s[0])[len(steps) // 2]
    if not any(start <= k[0] < end for k in kernels):
        print(f"profile_step: notice: the trace holds no kernel event inside the profiled steps, so their time "
              f"cannot be attributed below (seen when the process may use one CPU core: it may use "
              f"{len(os.sched_getaffinity(0))})", file=sys.stderr)
    threads = {th: f"t{i}" for i, th in enumerate(sorted({k[2] for k in kernels}))}
    print(f"`{args.preset}` {cfg.binarize}, {args.precision}, {plan.describe()}: median of {len(steps)} "
          f"profiled steps")
    if args.timeline:
        print("\n| start ms | ms | thread | part | kernel |\n|---|---|---|---|---|")
        for s, e, th, name, part in kernels:
            if start <= s < end and e - s >= args.min_ms * 1e-3:
                print(f"| {1e3 * (s - start):.2f} | {1e3 * (e - s):.2f} | {threads[th]} | {part} | {name} |")
    print("\n| | ms |\n|---|---|")
    for key, value in summarize(kernels, start, end).items():
        print(f"| {key} | {1e3 * value:.2f} |")
    print("\nproducts run by: " + ", ".join(product_kernels(kernels, modules)))


if __name__ == "__main__":
    main()
